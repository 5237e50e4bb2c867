"""Deep MLPs with a leading seed axis, built from named parts: activation, initialisation,
batch norm and residual connections (the remedies of Glorot & Bengio 2010, He et al. 2015 and
2016, Ioffe & Szegedy 2015, Saxe et al. 2013).

As in `gradfail.nets.batched`, every tensor carries the models (seeds) first, so summing the models'
mean losses gives each its own gradient and one element-wise optimiser step trains them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gradfail.errors import ConfigError, require_known

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z,
}
INITS = {
    "normal": "N(0, 1): the naive unit-variance draw",
    "small": "N(0, 0.01²): 'small random numbers'",
    "glorot": "U[±√(6/(n_in + n_out))]: Glorot & Bengio 2010's normalised init",
    "lecun": "N(0, 1/n_in): the scaled Gaussian (LeCun et al. 1998)",
    "he": "N(0, 2/n_in): He et al. 2015",
    "orthogonal": "a random (semi-)orthogonal matrix times the activation's gain: Saxe et al. 2013",
}


def initial_weights(init: str, activation: str, n_models: int, n_in: int, n_out: int,
                    generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n_models, n_in, n_out) weights drawn by the named scheme (see `INITS`)."""
    require_known("init", init, INITS)
    shape = (n_models, n_in, n_out)
    if init == "orthogonal":
        gain = nn.init.calculate_gain(activation)
        weights = torch.empty(shape, device=device)
        for model in weights:
            nn.init.orthogonal_(model, gain, generator=generator)
        return weights
    if init == "glorot":
        bound = math.sqrt(6 / (n_in + n_out))
        return torch.empty(shape, device=device).uniform_(-bound, bound, generator=generator)
    std = {"normal": 1.0, "small": 0.01, "lecun": n_in**-0.5, "he": math.sqrt(2 / n_in)}[init]
    return std * torch.randn(shape, generator=generator, device=device)


def batch_normalise(z: torch.Tensor) -> torch.Tensor:
    """Each model's units standardised over its batch (Ioffe & Szegedy 2015, training mode):
    instance norm of (models, units, batch) is exactly that, in one fused kernel."""
    return nn.functional.instance_norm(z.transpose(1, 2)).transpose(1, 2)


class DeepMLP(nn.Module):
    """`depth` weight layers: n_in → width → … → width → n_out, per model.

    A hidden layer is a = act(γ·BN(hW + b) + β) (BN when `batch_norm`); with `residual`, every
    hidden layer after the first adds its input: h ← h + a. The output layer is linear.
    """

    def __init__(self, n_models: int, n_in: int, width: int, depth: int, n_out: int,
                 activation: str, init: str, generator: torch.Generator, device: torch.device,
                 batch_norm: bool = False, residual: bool = False):
        super().__init__()
        require_known("activation", activation, ACTIVATIONS)
        if depth < 1 or width < 1:
            raise ConfigError(f"a network needs depth ≥ 1 and width ≥ 1, got {depth}, {width}")
        sizes = [n_in] + [width] * (depth - 1) + [n_out]
        self.activation, self.batch_norm, self.residual = activation, batch_norm, residual
        self.weights = nn.ParameterList(
            initial_weights(init, activation, n_models, a, b, generator, device)
            for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        self.biases = nn.ParameterList(torch.zeros(n_models, 1, b, device=device)
                                       for b in sizes[1:])
        hidden = depth - 1 if batch_norm else 0
        self.scales = nn.ParameterList(torch.ones(n_models, 1, width, device=device)
                                       for _ in range(hidden))
        self.shifts = nn.ParameterList(torch.zeros(n_models, 1, width, device=device)
                                       for _ in range(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        h = x
        for layer in range(len(self.weights) - 1):
            z = torch.baddbmm(self.biases[layer], h, self.weights[layer])
            if self.batch_norm:
                z = torch.addcmul(self.shifts[layer], self.scales[layer], batch_normalise(z))
            h = h + act(z) if self.residual and layer > 0 else act(z)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def weight_gradient_norms(self) -> torch.Tensor:
        """(n_models, depth): ‖∂L/∂W_l‖ per model and layer, after a backward pass."""
        return torch.stack([w.grad.flatten(1).norm(dim=1) for w in self.weights], dim=1)


def expand_models(x: torch.Tensor, n_models: int) -> torch.Tensor:
    """The same batch for every model: (batch, n) → (n_models, batch, n), no copy."""
    return x.expand(n_models, *x.shape)
