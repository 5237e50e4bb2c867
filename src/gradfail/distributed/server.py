"""The parameter server's core, with no engine: flat parameters, a version counter, a ring buffer
of recent versions and the update rules. The simulator (`simulator`)
and the Ray actors (`ray_server`) both drive it.

The server holds the flat parameters (one row per seed: seeds train as a batch under one shared
schedule of delays), a version counter and a ring buffer of recent versions. Workers get the
parameters with every call, so a worker keeps no state. The update rules are small pure
functions of (gradient, staleness τ, the parameters now and as the worker read them):

- `async`: Downpour's plain step (Dean et al. 2012);
- `adagrad`: Downpour with Adagrad's per-parameter step (Dean et al. 2012);
- `staleness`: the step α₀/max(τ, 1) (Zhang et al. 2016);
- `dc`: delay compensation g + λ·g⊙g⊙(w_now − w_read) with a constant λ, DC-ASGD-c (Zheng et
  al. 2017; λ = 0 is `async`);
- `dc-a`: DC-ASGD-a, the same with an adaptive λ_t = λ₀/√(MeanSquare_t), MeanSquare_t =
  m·MeanSquare_{t−1} + (1 − m)·g⊙g a running mean over the gradients the server receives,
  element-wise (Zheng et al. 2017, §5; λ₀ = 2 and m = 0.95 as in public ports of it).

Staleness is measured, never assumed: τ = the version a gradient is applied to minus the
version its worker read, logged per gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from gradfail.errors import ConfigError

RULES = ("async", "adagrad", "staleness", "dc", "dc-a")
GradientFn = Callable[[torch.Tensor, int, int], torch.Tensor]  # (params, worker, seq) → grad


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# --------------------------------------------------------------------------------------------
# The server.


@dataclass
class ServerLogic:
    """Flat parameters (seeds, P), their version and the last `history` versions. `dc_lambda`
    is λ for `dc` and λ₀ for `dc-a`; `dc_momentum` is `dc-a`'s m."""

    params: torch.Tensor
    rule: str
    lr: float
    dc_lambda: float = 0.04
    history: int = 64
    eps: float = 1e-8
    dc_momentum: float = 0.95
    version: int = 0
    staleness: list[int] = field(default_factory=list)
    _buffer: dict[int, torch.Tensor] = field(default_factory=dict)
    _squares: torch.Tensor | None = None  # Adagrad's sum of g⊙g, or DC-ASGD-a's running mean

    def __post_init__(self) -> None:
        require(self.rule in RULES, f"unknown update rule {self.rule!r}; choose one of "
                                    f"{', '.join(RULES)}")
        require(self.lr > 0, f"the step must be positive; got {self.lr}")
        require(self.history >= 1, f"the version history must hold at least 1; got "
                                   f"{self.history}")
        self._buffer[0] = self.params

    def restore(self, params: torch.Tensor, version: int, staleness: list[int]) -> None:
        """Back to a checkpoint: its parameters become the only version in the history."""
        self.params, self.version, self.staleness = params, version, staleness
        self._buffer = {version: params}

    def held(self, version: int) -> int:
        """`version` clamped to those the history holds (after a restore, a worker's read may
        be older than the checkpoint, or newer)."""
        return min(max(version, min(self._buffer)), self.version)

    def read(self) -> tuple[torch.Tensor, int]:
        """What a worker gets: the parameters (never modified in place) and their version."""
        return self.params, self.version

    def at(self, version: int) -> torch.Tensor:
        require(version in self._buffer, f"version {version} is older than the server's "
                                         f"history of {self.history}")
        return self._buffer[version]

    def step(self, gradient: torch.Tensor, read_version: int) -> torch.Tensor:
        """The update the rule makes for one gradient computed at `read_version`."""
        tau = self.version - read_version
        if self.rule == "staleness":
            return self.lr / max(tau, 1) * gradient
        if self.rule == "adagrad":
            self._squares = gradient**2 + (0 if self._squares is None else self._squares)
            return self.lr * gradient / (self._squares.sqrt() + self.eps)
        if self.rule in ("dc", "dc-a"):
            drift = self.params - self.at(read_version)
            return self.lr * (gradient + self.compensation(gradient) * gradient * gradient * drift)
        return self.lr * gradient

    def compensation(self, gradient: torch.Tensor) -> torch.Tensor | float:
        """DC-ASGD's λ for this gradient: constant (`dc`), or λ₀ over the root of the running
        mean square, updated with this gradient first (`dc-a`)."""
        if self.rule == "dc":
            return self.dc_lambda
        m = self.dc_momentum
        self._squares = (1 - m) * gradient**2 + (0 if self._squares is None else m * self._squares)
        return self.dc_lambda / (self._squares + self.eps).sqrt()

    def apply(self, gradients: list[tuple[torch.Tensor, int]]) -> None:
        """One update from one or more (gradient, read version) pairs, averaged (n-softsync and
        sync average; async applies one at a time); logs each gradient's staleness."""
        update = sum(self.step(g, v) for g, v in gradients) / len(gradients)
        self.staleness += [self.version - v for _, v in gradients]
        self.params = self.params - update
        self.version += 1
        self._buffer[self.version] = self.params
        self._buffer.pop(self.version - self.history - 1, None)


def staleness_summary(staleness: list[int]) -> dict:
    values = np.asarray(staleness, dtype=float)
    return {"mean": float(values.mean()), "p99": float(np.percentile(values, 99)),
            "max": int(values.max()), "histogram": np.bincount(values.astype(int)).tolist()}
