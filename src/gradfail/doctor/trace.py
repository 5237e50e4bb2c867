"""What one measured step's forward and loss computation did, seen through a TorchFunctionMode.

The doctor cannot rely on activations being modules: users write `F.relu(x)` or `torch.tanh(h)`
inside `forward()`, Transformer layers call their activation function, a hand-written RNN calls
`torch.tanh` once per time step. While the watched model runs forward on a measured step, a
`StepTrace` sees every torch function call. Each elementwise nonlinearity ("site") is
summarised at once (its derivative, by one forward-mode product, on a few samples) and a hook
on its output keeps the gradient that reaches it, so the depth profile of the backward pass
is read where the activations are, whatever wrote them.

After the forward, until the loss is differentiated, the trace keeps a tape of the calls that
depend on the model's output: the loss computation, however it is written. `Tape.replay`
evaluates it again on another output (the model at a sub-batch for curvature, or an
input-independent prediction for the loss baseline), which is how `gradfail doctor SCRIPT.py`
measures curvature without a loss function given to it. The calls of torch's log-losses are
inspected on the way: probabilities where logits or log-probabilities belong are counted.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

TORCH_DIR = os.path.dirname(torch.__file__)
FLAT_FUNCTIONS = (torch.sign, torch.Tensor.sign, torch.round, torch.Tensor.round, torch.floor,
                  torch.Tensor.floor, torch.ceil, torch.Tensor.ceil, torch.trunc,
                  torch.Tensor.trunc, torch.heaviside)
SMOOTH_OR_ONE_SIDED = (
    F.relu, torch.relu, torch.Tensor.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu,
    F.silu, F.mish, F.softplus, F.hardtanh, F.hardsigmoid, F.hardswish, F.softsign,
    F.logsigmoid, F.tanhshrink, F.threshold, torch.tanh, torch.Tensor.tanh, F.tanh,
    torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid, torch.clamp, torch.Tensor.clamp, torch.clip,
    torch.Tensor.clip)
ACTIVATIONS = frozenset(FLAT_FUNCTIONS + SMOOTH_OR_ONE_SIDED)
LOG_LOSSES = {F.cross_entropy: "cross_entropy", F.nll_loss: "nll_loss",
              F.binary_cross_entropy_with_logits: "binary_cross_entropy_with_logits"}
SQUASHING = frozenset((F.softmax, torch.softmax, torch.Tensor.softmax, torch.sigmoid,
                       torch.Tensor.sigmoid, F.sigmoid))
SHAPE_ONLY = frozenset((torch.Tensor.squeeze, torch.squeeze, torch.Tensor.unsqueeze,
                        torch.Tensor.view, torch.Tensor.reshape, torch.reshape,
                        torch.Tensor.flatten, torch.flatten, torch.Tensor.__getitem__,
                        torch.Tensor.contiguous, torch.Tensor.float, torch.Tensor.to,
                        torch.Tensor.transpose, torch.Tensor.permute, torch.Tensor.view_as,
                        torch.Tensor.reshape_as))
SAMPLES = 32  # rows of the batch whose derivatives are summarised
TINY = 0.01  # a derivative below 1% of the function's typical one (at N(0, 1)) is tiny


def function_name(func: Callable) -> str:
    return getattr(func, "__name__", type(func).__name__).rstrip("_")


def derivative(func: Callable, x: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    """An elementwise function's derivative at x, by one backward pass of its sum (reverse
    mode: forward mode's first use costs a fifth of a second); zeros where autograd has no
    derivative for it (a step function)."""
    kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}
    args = tuple(a for a in args if not isinstance(a, bool))  # F.relu(x, True): in place
    x = x.detach().requires_grad_(True)
    try:
        with torch.enable_grad():
            derivative = torch.autograd.grad(func(x, *args, **kwargs).sum(), x,
                                             allow_unused=True)[0]
    except RuntimeError:
        derivative = None
    return torch.zeros_like(x) if derivative is None else derivative


@dataclass
class Site:
    """One nonlinearity in the forward pass: where it is, what kind of function it is, and what
    it did on this step (summed over its calls: a loop calls it once per time step)."""

    name: str
    function: str
    kind: str  # one of KINDS
    typical: float  # median |derivative| at a standard normal probe
    order: int  # position of its first call in the forward pass
    summaries: list[torch.Tensor] = field(default_factory=list)  # see `summarise`
    peaks: list[torch.Tensor] = field(default_factory=list)  # see `unit_peaks`, per call
    gradients: list[torch.Tensor | None] = field(default_factory=list)  # mean square, per call
    final: bool = False  # its result is the model's output (an output link, not a hidden unit)

    @property
    def reached(self) -> list[torch.Tensor]:
        return [g for g in self.gradients if g is not None]


KINDS = ("flat", "one-sided", "saturating", "open")
TAIL = 16.0  # where a function's tails are probed


def classify(func: Callable, x: torch.Tensor, args: tuple, kwargs: dict) -> tuple[str, float]:
    """(kind, typical |derivative|) of an elementwise function: its typical derivative is the
    median nonzero one at a standard normal probe, and its kind comes from where the derivative
    is tiny (below 1% of the typical one): almost everywhere (flat: a step, a rounding), at
    -16 only (one-sided: ReLU, GELU, ELU), at both -16 and 16 (saturating: tanh, sigmoid,
    hardtanh, softsign, relu6), or nowhere (open: leaky ReLU, a linear map)."""
    dtype = x.dtype if x.is_floating_point() else None
    probe = torch.randn(min(x.numel(), 4096), generator=torch.Generator(x.device).manual_seed(0),
                        device=x.device, dtype=dtype)
    magnitude = derivative(func, probe, args, kwargs).abs()
    zero = float((magnitude == 0).float().mean())
    if zero > 0.9:
        return "flat", 0.0
    typical = float(magnitude[magnitude > 0].median())
    tails = derivative(func, torch.tensor([-TAIL, TAIL], device=x.device, dtype=dtype), args,
                       kwargs).abs() < TINY * typical
    low, high = bool(tails[0]), bool(tails[1])
    return ("saturating" if low and high else "one-sided" if low or high else "open"), typical


def unit_peaks(d: torch.Tensor) -> torch.Tensor:
    """Each unit's largest |derivative| over the samples (units: the channel axis of an image,
    the feature axis of a flat or sequence activation)."""
    magnitude = d.detach().abs()
    unit_axis = 1 if magnitude.dim() in (2, 4, 5) else magnitude.dim() - 1
    others = tuple(i for i in range(magnitude.dim()) if i != unit_axis)
    return magnitude.amax(dim=others) if others else magnitude


def summarise(d: torch.Tensor, x: torch.Tensor, typical: float) -> torch.Tensor:
    """(fraction of derivatives exactly 0, fraction below TINY·typical (0 included), mean
    square of the input, mean |derivative| over the typical one: the share of gradient the
    function passes) as one vector. Counted by signs of float tensors: bool comparisons are
    slower on a CPU."""
    magnitude = d.detach().abs()
    zero = 1 - magnitude.sign().mean()
    tiny = (TINY * typical - magnitude).clamp_(min=0).sign_().mean() if typical > 0 \
        else zero
    passing = magnitude.mean() / typical if typical > 0 else 1 - zero
    return torch.stack([zero, tiny, x.detach().float().square().mean(), passing.to(zero.dtype)])


_PAUSED = [0]  # depth of `paused()` blocks: while above 0 no trace records anything


@contextmanager
def paused():
    """No trace sees the calls made inside: one doctor's measurements (a replayed loss, a
    forward on a sub-batch) are not the step of another doctor whose trace is still open (two
    models trained on one loss)."""
    _PAUSED[0] += 1
    try:
        yield
    finally:
        _PAUSED[0] -= 1


class Tape:
    """The calls that turned the model's output into the loss, to evaluate them again."""

    def __init__(self, output):
        self.calls: list[tuple[Callable, tuple, dict, object]] = []
        self.derived = {id(t) for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)}
        self.output = output
        self.keep = [output]  # references, so that no id is reused during the step

    def record(self, func: Callable, args: tuple, kwargs: dict, result) -> None:
        made = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor)]
        if made and any(isinstance(t, torch.Tensor) and id(t) in self.derived
                        for t in tree_flatten((args, kwargs))[0]):
            self.calls.append((func, args, kwargs, result))
            self.derived |= {id(t) for t in made}
            self.keep.append(result)

    def replay(self, output, loss: torch.Tensor, rows: int | None = None
               ) -> torch.Tensor | None:
        """The loss again, computed from `output` in place of the recorded one (None when the
        loss did not come from the model's output). With `rows`, `output` is the model's on the
        first rows of the batch, and every other recorded tensor with the batch's length (the
        targets) is cut to them too."""
        if id(loss) not in self.derived:
            return None
        replayed = dict(zip((id(t) for t in tree_flatten(self.output)[0]),
                            tree_flatten(output)[0], strict=True))
        batch = batch_size(self.output)

        def substitute(value):
            if not isinstance(value, torch.Tensor):
                return value
            if id(value) in replayed:
                return replayed[id(value)]
            return value[:rows] if rows and value.dim() and value.shape[0] == batch else value
        for func, args, kwargs, result in self.calls:
            again = func(*tree_map(substitute, args), **tree_map(substitute, kwargs))
            replayed |= dict(zip((id(t) for t in tree_flatten(result)[0]),
                                 tree_flatten(again)[0], strict=False))
        return replayed.get(id(loss))


def batch_size(tree) -> int | None:
    """The length of the first axis shared by every tensor of a tree (None if they differ)."""
    lengths = {t.shape[0] if t.dim() else None for t in tree_flatten(tree)[0]
               if isinstance(t, torch.Tensor)}
    return lengths.pop() if len(lengths) == 1 else None


class StepTrace(TorchFunctionMode):
    """Entered when the watched model's forward begins on a measured step; `forward_done`
    switches from watching activations to taping the loss; `close` leaves the mode."""

    def __init__(self, kinds: dict[tuple, tuple[str, float]]):
        super().__init__()
        self.kinds = kinds  # (module path, function, caller) -> (kind, typical), kept across steps
        self.sites: dict[tuple, Site] = {}
        self.log_losses: list[dict] = []
        self.tape: Tape | None = None
        self.squashed: dict[int, str] = {}  # ids of softmax/sigmoid outputs (and their views)
        self.made: dict[int, tuple] = {}  # ids of activation results (and views) -> site key
        self._kept: list[torch.Tensor] = []  # so that no id in `squashed` is reused
        self.paths: list[str] = []  # the module-path stack during the forward
        self.names: dict[nn.Module, str] = {}
        self._hooks = []
        self.open = False

    # -- entering and leaving -------------------------------------------------------------------
    def start(self, model: nn.Module) -> None:
        self.names = {m: name for name, m in model.named_modules()}
        self._hooks = [nn.modules.module.register_module_forward_pre_hook(self._enter_module),
                       nn.modules.module.register_module_forward_hook(self._leave_module)]
        self.__enter__()
        self.open = True

    def forward_done(self, output) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        for tensor in tree_flatten(output)[0]:
            if isinstance(tensor, torch.Tensor) and id(tensor) in self.made:
                self.sites[self.made[id(tensor)]].final = True
        self.tape = Tape(output)

    def close(self) -> None:
        if self.open:
            for hook in self._hooks:
                hook.remove()
            self.__exit__(None, None, None)
            self.open = False

    def _enter_module(self, module, inputs) -> None:
        if module in self.names:
            self.paths.append(self.names[module])

    def _leave_module(self, module, inputs, output) -> None:
        if module in self.names and self.paths:
            self.paths.pop()

    # -- every torch call -----------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _PAUSED[0]:
            return func(*args, **kwargs)
        if self.tape is None and func in ACTIVATIONS and args and isinstance(
                args[0], torch.Tensor) and args[0].is_floating_point() and \
                torch.is_grad_enabled():
            return self._activation(func, args, kwargs)
        if func in LOG_LOSSES and args and isinstance(args[0], torch.Tensor):
            self.log_losses.append(inspect_log_loss(LOG_LOSSES[func], args, kwargs,
                                                    self.squashed.get(id(args[0]))))
        result = func(*args, **kwargs)
        if isinstance(result, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            if func in SQUASHING:
                self._squash(result, function_name(func))
            elif func in SHAPE_ONLY:
                if id(args[0]) in self.squashed:
                    self._squash(result, self.squashed[id(args[0])])
                if id(args[0]) in self.made:
                    self.made[id(result)] = self.made[id(args[0])]
                    self._kept.append(result)
        if self.tape is not None:
            self.tape.record(func, args, kwargs, result)
        return result

    def _squash(self, result: torch.Tensor, how: str) -> None:
        self.squashed[id(result)] = how
        self._kept.append(result)

    def _activation(self, func, args, kwargs):
        x = args[0]
        path = self.paths[-1] if self.paths else ""
        key = (path, function_name(func), caller())
        if key not in self.kinds:
            self.kinds[key] = classify(func, x, args[1:], kwargs)
        kind, typical = self.kinds[key]
        sample = x.detach()[:SAMPLES].clone()
        slope = derivative(func, sample, args[1:], kwargs)
        summary = summarise(slope, sample, typical)
        result = func(*args, **kwargs)
        if func in SQUASHING and isinstance(result, torch.Tensor):
            self._squash(result, function_name(func))
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = Site(self.site_name(key), key[1], kind, typical,
                                          len(self.sites))
        site.summaries.append(summary)
        site.peaks.append(unit_peaks(slope))
        site.gradients.append(None)
        self.made[id(result)] = key
        self._kept.append(result)
        if isinstance(result, torch.Tensor) and result.requires_grad:
            call = len(site.gradients) - 1

            def keep(grad: torch.Tensor) -> None:
                site.gradients[call] = grad.detach().float().square().mean()
            result.register_hook(keep)
        return result

    def site_name(self, key: tuple) -> str:
        path, function, _ = key
        module = next((m for m, name in self.names.items() if name == path), None)
        if module is not None and path and not any(True for _ in module.parameters(False)) \
                and type(module).__module__ == "torch.nn.modules.activation":
            return path  # an activation module: its own path names it
        twins = sum(1 for p, f, _ in self.sites if (p, f) == (path, function))
        return f"{path or 'model'}:{function}" + (f"#{twins + 1}" if twins else "")


def caller() -> tuple[str, int]:
    """(file, line) of the first frame outside torch: where the user's code made the call."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("", 0)


def batch_classes(target: torch.Tensor) -> dict:
    """The share of a batch that belongs to its most common class, and that class: the
    targets of a classification loss (class indices, or 0/1 labels)."""
    labels = target.detach().reshape(-1)
    if labels.is_floating_point():
        if not bool(((labels == 0) | (labels == 1)).all()):
            return {}
        labels = labels.long()
    counts = torch.bincount(labels - labels.min())
    top = int(counts.argmax())
    return {"purity": float(counts[top]) / labels.numel(), "majority": top + int(labels.min())}


def inspect_log_loss(name: str, args: tuple, kwargs: dict, squashed: str | None) -> dict:
    """Whether a log-loss was given probabilities: 1 when its input was made by a softmax or a
    sigmoid (or a view of one), else, for cross-entropy and NLL (which expect logits and
    log-probabilities), the fraction of input rows that are probability vectors (entries in
    [0, 1] summing to 1: no logits by chance); and, for class targets, the batch's accuracy."""
    x = args[0].detach()
    target = args[1] if len(args) > 1 else kwargs.get("target")
    inspected = {"loss": name, "probabilities": 1.0 if squashed else 0.0}
    with torch.no_grad():
        if name != "binary_cross_entropy_with_logits" and x.dim() >= 2:
            rows = x.movedim(1, -1).reshape(-1, x.shape[1]).float()
            inside = ((rows >= 0) & (rows <= 1)).all(1)
            sums_to_one = (rows.sum(1) - 1).abs() < 1e-3
            if not squashed:
                inspected["probabilities"] = float((inside & sums_to_one).float().mean())
            if isinstance(target, torch.Tensor) and not target.is_floating_point() \
                    and target.shape == x.argmax(1).shape:
                inspected["accuracy"] = float((x.argmax(1) == target).float().mean())
        if isinstance(target, torch.Tensor) and target.numel() > 1:
            inspected |= batch_classes(target)
    return {k: v for k, v in inspected.items() if not (isinstance(v, float) and math.isnan(v))}
