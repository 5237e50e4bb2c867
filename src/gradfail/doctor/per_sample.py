"""Per-sample squared gradient norms without materialising per-sample gradients where avoidable.

For a Linear layer z = W a + b seen on a batch, sample i's weight gradient is δᵢ aᵢᵀ (δ = ∂L/∂z),
so its squared norm is ‖δᵢ‖²‖aᵢ‖² ("ghost norms", Goodfellow 2015); with a sequence axis it is
Σₜₜ′ (aₜ·aₜ′)(δₜ·δₜ′), or the materialised gradient when that is smaller. A convolution's
per-sample weight gradient costs no more than its batch weight gradient, so it is formed, by
vmap over torch's own weight-gradient function (faster than unfold and a batched product). The
inputs a come from forward hooks, the δ from hooks on the outputs. `functional_norms` is the
general path for any module, by torch.func `vmap(grad)` of a per-sample loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

WEIGHT_GRADIENT = {nn.Conv1d: torch.nn.grad.conv1d_weight, nn.Conv2d: torch.nn.grad.conv2d_weight,
                   nn.Conv3d: torch.nn.grad.conv3d_weight}


def hookable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (type(module) in WEIGHT_GRADIENT and module.padding_mode == "zeros"
            and not isinstance(module.padding, str))


class GradientCapture:
    """Hooks on a model's Linear and Conv layers that keep each layer's input and output grad for
    the current step; `norms()` turns them into per-sample squared norms."""

    def __init__(self, model: nn.Module, hooked: bool = True):
        self.layers = [m for m in model.modules() if hookable(m)
                       and any(p.requires_grad for p in m.parameters(recurse=False))
                       ] if hooked else []
        self.seen: dict[nn.Module, list[dict]] = {}
        self.active = True
        self.micro = 0  # the micro-batch of the step (gradient accumulation)
        self.handles = [m.register_forward_hook(self._forward) for m in self.layers]

    def _forward(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if not (self.active and torch.is_grad_enabled() and isinstance(output, torch.Tensor)
                and output.requires_grad):
            return
        entry = {"a": inputs[0].detach(), "d": None, "micro": self.micro}
        self.seen.setdefault(module, []).append(entry)

        def keep(grad: torch.Tensor) -> None:
            entry["d"] = grad.detach()
        output.register_hook(keep)

    def clear(self) -> None:
        self.seen.clear()
        self.micro = 0

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.clear()

    def norms(self, rows: int | None = None
              ) -> tuple[torch.Tensor, list[nn.Module], int] | None:
        """(per-sample squared norms of the first `rows` samples' contributions to the gradient,
        summed over the layers seen once with a gradient; those layers; the batch size), or None
        when no layer qualifies. The micro-batches of an accumulated step are one batch: their
        samples' contributions add up to the step's gradient."""
        total, used, batch = None, [], None
        for module, entries in self.seen.items():
            if len({e["micro"] for e in entries}) != len(entries) or any(
                    e["d"] is None for e in entries):
                continue  # used twice in a forward, or no gradient reached it
            a = torch.cat([e["a"] for e in entries]) if len(entries) > 1 else entries[0]["a"]
            d = torch.cat([e["d"] for e in entries]) if len(entries) > 1 else entries[0]["d"]
            squared = layer_norms(module, a[:rows], d[:rows])
            if total is not None and (squared.shape != total.shape or a.shape[0] != batch):
                continue  # a layer that does not see the batch as its first axis
            total = squared if total is None else total + squared
            used.append(module)
            batch = a.shape[0]
        return None if total is None else (total, used, batch)


def layer_norms(module: nn.Module, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Squared norms (B,) of one layer's per-sample gradients (weight and bias)."""
    batch = a.shape[0]
    if isinstance(module, nn.Linear):
        a, d = a.reshape(batch, -1, a.shape[-1]), d.reshape(batch, -1, d.shape[-1])
        if a.shape[1] == 1:
            squared = a.square().sum((1, 2)) * d.square().sum((1, 2))
        elif a.shape[1] ** 2 <= a.shape[2] * d.shape[2]:
            squared = ((a @ a.transpose(1, 2)) * (d @ d.transpose(1, 2))).sum((1, 2))
        else:
            squared = (d.transpose(1, 2) @ a).square().sum((1, 2))
        bias_grad = d.sum(1)
    else:
        squared = conv_weight_norms(module, a, d)
        bias_grad = d.flatten(2).sum(2)
    if not module.weight.requires_grad:
        squared = torch.zeros_like(squared)
    if module.bias is not None and module.bias.requires_grad:
        squared = squared + bias_grad.square().sum(1)
    return squared


def conv_weight_norms(module: nn.Module, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Squared norms (B,) of a convolution's per-sample weight gradients."""
    weight_gradient = WEIGHT_GRADIENT[type(module)]

    def one(a_i: torch.Tensor, d_i: torch.Tensor) -> torch.Tensor:
        return weight_gradient(a_i[None], module.weight.shape, d_i[None], module.stride,
                               module.padding, module.dilation, module.groups)
    return torch.func.vmap(one)(a, d).flatten(1).square().sum(1)


def functional_norms(model: nn.Module, loss_fn: Callable, inputs: torch.Tensor,
                     targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample squared gradient norms (B,), squared norm of their mean) of
    loss_fn(model(xᵢ), yᵢ) over every parameter that requires grad, by vmap(grad)."""
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())

    def loss_of_one(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (x[None],))
        return loss_fn(out, y[None])
    grads = vmap(grad(loss_of_one), in_dims=(None, 0, 0), randomness="different")(
        params, inputs, targets)
    flat = torch.cat([g.flatten(1) for g in grads.values()], 1)
    return flat.square().sum(1), flat.mean(0).square().sum()
