"""The failure zoo: gradfail's failing and healthy configurations as small labelled PyTorch
runs, on which the doctor is validated (confusion matrix, precision and recall per verdict,
detection delay in steps).

A case is registered with `@case(label, source, split)`: a function of a seed that returns a
`Setup` (an nn.Module, its optimizer, the loss function and a batch sampler). New cases join
the validation by being registered; every case runs on the CPU in seconds. The zoo is held out
by configuration: the rules may be set on the "dev" cases only; the "heldout" cases (and the
benchmark of independent programs, gradfail.doctor.bench) judge them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gradfail.data.curves import kink_vectors, ramp_matrix
from gradfail.data.lines import line_labels, random_lines, rasterise
from gradfail.data.parity import random_signs
from gradfail.doctor.monitor import Doctor
from gradfail.doctor.rules import VERDICTS
from gradfail.nets.batched import hinge_loss


@dataclass
class Setup:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable
    batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    steps: int = 300


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    source: str
    split: str
    build: Callable[[int], Setup]


CASES: dict[str, Case] = {}


def case(label: str, source: str, split: str):
    if label not in VERDICTS:
        raise ValueError(f"unknown verdict {label!r}")
    if split not in ("dev", "heldout"):
        raise ValueError(f"unknown split {split!r}")

    def register(build: Callable[[int], Setup]) -> Callable[[int], Setup]:
        CASES[build.__name__] = Case(build.__name__, label, source, split, build)
        return build
    return register


def mlp(sizes: list[int], activation: Callable[[], nn.Module], gain: float | None = None,
        bias: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out)
        if gain is not None:
            nn.init.normal_(linear.weight, std=gain / math.sqrt(fan_in))
        nn.init.constant_(linear.bias, bias if i < len(sizes) - 2 else 0.0)
        layers += [linear, activation()] if i < len(sizes) - 2 else [linear]
    return nn.Sequential(*layers)


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.squeeze(-1) - y).square().mean()


def hinge(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return hinge_loss(out.squeeze(-1), y).mean()


# --------------------------------------------------------------------------------------------
# §2: parity.


def parity_setup(seed: int, d: int) -> Setup:
    torch.manual_seed(seed)
    subset = torch.zeros(d, dtype=torch.bool)
    subset[torch.randperm(d)[: d // 2 + 1]] = True

    def batch(generator: torch.Generator):
        x = random_signs((128, d), generator)
        return x, x[:, subset].prod(1)
    model = mlp([d, 10 * d, 1], nn.ReLU)
    return Setup(model, torch.optim.SGD(model.parameters(), lr=0.05), hinge, batch)


@case("healthy", "§2, parity at small d", "dev")
def parity_small_d(seed: int) -> Setup:
    return parity_setup(seed, 3)


@case("no gradient signal", "§2, parity at large d", "dev")
def parity_large_d(seed: int) -> Setup:
    return parity_setup(seed, 40)


# --------------------------------------------------------------------------------------------
# §3: line images, end to end vs decomposed.


class Scorer(nn.Module):
    """One shared image scorer applied to each of k images; the parity of the k scores' signs
    is approximated by their product (end to end), or each score trained on its own label."""

    def __init__(self, end_to_end: bool):
        super().__init__()
        self.end_to_end = end_to_end
        self.score = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 50), nn.ReLU(),
                                   nn.Linear(50, 1), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores = self.score(images.flatten(0, 1)).view(images.shape[:2])
        return scores.prod(1, keepdim=True) if self.end_to_end else scores


def lines_setup(seed: int, end_to_end: bool, k: int = 3) -> Setup:
    torch.manual_seed(seed)

    def batch(generator: torch.Generator):
        lines = random_lines((64, k), generator)
        labels = line_labels(lines)
        return rasterise(lines), labels.prod(1) if end_to_end else labels
    model = Scorer(end_to_end)

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return hinge_loss(out, y if y.dim() == out.dim() else y[:, None]).mean()
    return Setup(model, torch.optim.Adam(model.parameters(), lr=1e-3), loss_fn, batch)


@case("low SNR", "§3, end to end at k = 3", "heldout")
def lines_end_to_end(seed: int) -> Setup:
    return lines_setup(seed, True)


@case("healthy", "§3, decomposition at k = 3", "heldout")
def lines_decomposed(seed: int) -> Setup:
    return lines_setup(seed, False)


# --------------------------------------------------------------------------------------------
# §4: regression on piecewise-linear curves, raw (ill-conditioned) vs whitened.


def curves_setup(seed: int, whiten: bool, n: int = 32) -> Setup:
    torch.manual_seed(seed)
    ramp = ramp_matrix(n, torch.float32)
    pool = kink_vectors(4_096, n, 3, "paper", torch.Generator().manual_seed(seed)).float()
    curves = pool @ ramp.T
    mixing = torch.eye(n)
    if whiten:
        values, vectors = torch.linalg.eigh(torch.cov(curves.T) + 1e-6 * torch.eye(n))
        mixing = vectors @ torch.diag(values.rsqrt()) @ vectors.T
    inputs = curves @ mixing
    teacher = torch.randn(n, generator=torch.Generator().manual_seed(seed + 1))
    targets = pool @ teacher  # recover a linear functional of the kinks

    def batch(generator: torch.Generator):
        pick = torch.randint(len(pool), (128,), generator=generator)
        return inputs[pick], targets[pick]
    model = nn.Linear(n, 1)
    scale = float(torch.linalg.eigvalsh(torch.cov(inputs.T)).max())
    return Setup(model, torch.optim.SGD(model.parameters(), lr=0.5 / scale), mse, batch)


@case("ill-conditioned", "§4, raw curves (Figure 6)", "dev")
def curves_raw(seed: int) -> Setup:
    return curves_setup(seed, False)


@case("healthy", "§4, whitened curves", "dev")
def curves_whitened(seed: int) -> Setup:
    return curves_setup(seed, True)


# --------------------------------------------------------------------------------------------
# §5: a flat (piecewise-constant) link vs its smooth surrogate.


class StepLink(nn.Module):
    """u(z) = round(z·5)/5 clipped to [−1, 1]: derivative zero almost everywhere (§5)."""

    elementwise = True

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z * 5).round().clamp(-5, 5) / 5


class SmoothLink(nn.Module):
    elementwise = True

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z)


def link_setup(seed: int, link: type[nn.Module]) -> Setup:
    torch.manual_seed(seed)
    teacher = torch.randn(20, generator=torch.Generator().manual_seed(seed))

    def batch(generator: torch.Generator):
        x = torch.randn(128, 20, generator=generator)
        return x, (StepLink()(x @ teacher / math.sqrt(20)))
    model = nn.Sequential(nn.Linear(20, 1), link())
    return Setup(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, batch)


@case("flat activations", "§5, the piecewise-constant link", "heldout")
def flat_link(seed: int) -> Setup:
    return link_setup(seed, StepLink)


@case("healthy", "§5, a smooth link", "heldout")
def smooth_link(seed: int) -> Setup:
    return link_setup(seed, SmoothLink)


# --------------------------------------------------------------------------------------------
# Depth, initialisation and step size (the depth and exploding_rnn experiments).


def teacher_batch(d: int, seed: int):
    teacher = mlp([d, 32, 1], nn.Tanh)
    torch.manual_seed(seed)
    for p in teacher.parameters():
        p.requires_grad_(False)

    def batch(generator: torch.Generator):
        x = torch.randn(128, d, generator=generator)
        return x, teacher(x).squeeze(-1)
    return batch


def regression(seed: int, model: nn.Module, lr: float, optimizer=torch.optim.SGD) -> Setup:
    return Setup(model, optimizer(model.parameters(), lr=lr), mse, teacher_batch(16, seed))


@case("vanishing gradients", "depth: a 12-layer sigmoid net", "dev")
def deep_sigmoid(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16] + [64] * 12 + [1], nn.Sigmoid), 0.05)


@case("healthy", "depth: a 12-layer ReLU net, He init", "dev")
def deep_relu_he(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16] + [64] * 12 + [1], nn.ReLU, gain=math.sqrt(2)), 0.01)


@case("exploding gradients", "depth: a 32-layer tanh net at init gain 4 (the chaotic phase)",
      "heldout")
def deep_chaotic_tanh(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16] + [64] * 32 + [1], nn.Tanh, gain=4.0), 1e-4)


@case("dead units", "ReLU units pushed off by a bias of −3", "dev")
def dead_relu(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16, 128, 128, 1], nn.ReLU, gain=1.0, bias=-3.0), 0.01)


@case("diverged", "gradient descent far past 2/λ_max", "heldout")
def large_step(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16, 64, 1], nn.Tanh), 1.2)


@case("healthy", "the same net at a stable step", "heldout")
def stable_step(seed: int) -> Setup:
    torch.manual_seed(seed)
    return regression(seed, mlp([16, 64, 1], nn.Tanh), 0.05)


# --------------------------------------------------------------------------------------------
# Running the doctor on the zoo.


def run_case(zoo_case: Case, seed: int, steps: int | None = None, check_every: int = 10
             ) -> dict:
    """Train one case under the doctor; the final verdict and the first step at which the
    doctor named the case's label."""
    setup = zoo_case.build(seed)
    steps = steps or setup.steps
    generator = torch.Generator().manual_seed(seed)
    doctor = Doctor(setup.model, setup.optimizer, setup.loss_fn, name=zoo_case.name)
    detected = None
    try:
        for step in range(1, steps + 1):
            x, y = setup.batch(generator)
            setup.optimizer.zero_grad()
            loss = setup.loss_fn(setup.model(x), y)
            loss.backward()
            setup.optimizer.step()
            doctor.step(loss, x, y)
            if step % check_every == 0 and detected is None and \
                    doctor.diagnose()[0].name == zoo_case.label:
                detected = step
    finally:
        doctor.close()
    verdict = doctor.diagnose()[0]
    return {"case": zoo_case.name, "label": zoo_case.label, "split": zoo_case.split,
            "seed": seed,
            "verdict": verdict.name, "confidence": verdict.confidence,
            "evidence": verdict.evidence, "detected_at": detected}


def validate(seeds: int = 2, steps: int | None = None, progress=None, first_seed: int = 0
             ) -> dict:
    """Every case at seeds first_seed, first_seed + 1, ...: the confusion matrix (label ×
    verdict), precision, recall and the median detection delay per verdict."""
    results = []
    for zoo_case in CASES.values():
        for seed in range(first_seed, first_seed + seeds):
            results.append(run_case(zoo_case, seed, steps))
            if progress:
                progress(1)
    return score(results)


def score(results: list[dict]) -> dict:
    """The confusion matrix (label × named verdict), and precision, recall and the median
    detection delay per label, of `run_case` results."""
    labels = [v for v in VERDICTS if any(r["label"] == v for r in results)]
    named = sorted({r["verdict"] for r in results} - set(labels), key=VERDICTS.index)
    columns = labels + named
    matrix = [[sum(r["label"] == row and r["verdict"] == col for r in results)
               for col in columns] for row in labels]
    scores = {}
    for verdict in labels:
        hits = sum(r["label"] == verdict == r["verdict"] for r in results)
        called = sum(r["verdict"] == verdict for r in results)
        actual = sum(r["label"] == verdict for r in results)
        delays = [r["detected_at"] for r in results if r["label"] == verdict and
                  r["detected_at"] is not None]
        scores[verdict] = {"precision": hits / called if called else math.nan,
                           "recall": hits / actual, "delay": float(np.median(delays))
                           if delays else math.nan, "cases": actual}
    return {"rows": labels, "columns": columns, "matrix": matrix, "scores": scores,
            "results": results}
