"""From measured quantities to named failures: a pure function of the history (`diagnose`), and
the `Timeline` that raises a verdict only when it persists.

Each rule measures the thing its verdict names (a gradient held over from the last step, a
log-loss given probabilities, activation derivatives that are zero or tiny, the gradient's
growth through depth, the step against the curvature's stability limit, ...) and states what it
read. Mechanisms explain symptoms: a run whose gradients vanish also learns slowly and has a
noisy gradient, so the slow-learning and noise verdicts are named only when no mechanism
explains them. The thresholds are the fields of a `DoctorConfig` (gradfail.doctor.config):
those that are fractions of a definition (half of a layer's units dead) come from the
definition; the others were set on the development half of the doctor's benchmark
(gradfail.doctor.bench), never on its held-out half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gradfail.doctor import evidence as ev
from gradfail.doctor.config import DoctorConfig
from gradfail.doctor.window import Window

VERDICTS = ("diverged", "gradients accumulate", "probabilities fed to a log-loss",
            "unnormalised inputs", "flat activations", "dead units", "saturated activations",
            "vanishing gradients", "exploding gradients", "step too large", "oscillating loss",
            "ill-conditioned", "learning rate too small", "no gradient signal", "low SNR",
            "healthy")

REMEDIES = {
    "diverged": "find the cause in the evidence: lower the learning rate or clip the gradient "
                "norm if the step or the gradient grew first; use the stable built-in loss "
                "(log_softmax / BCEWithLogits) or add an eps if a log or a division blew up",
    "gradients accumulate": "clear the gradients every step (optimizer.zero_grad() before "
                            "backward, or once every k micro-batches when accumulating on "
                            "purpose)",
    "probabilities fed to a log-loss": "feed logits: drop the final Softmax/Sigmoid before "
                                       "CrossEntropyLoss / BCEWithLogitsLoss, or use "
                                       "log_softmax before NLLLoss",
    "unnormalised inputs": "standardise each input feature (zero mean, unit variance) or put a "
                           "normalisation layer at the input",
    "flat activations": "the function's derivative is zero almost everywhere (Shalev-Shwartz "
                        "et al. 2017, §5): use a smooth surrogate or a straight-through "
                        "estimator",
    "dead units": "use LeakyReLU/ELU, initialise biases at zero (He init), or lower the "
                  "learning rate",
    "saturated activations": "use a variance-preserving initialisation (Xavier/Glorot) or a "
                             "normalisation layer before the activation",
    "vanishing gradients": "ReLU with He initialisation, residual connections, normalisation "
                           "layers, or gated recurrent cells (LSTM/GRU)",
    "exploding gradients": "clip the gradient norm and use a smaller (orthogonal, "
                           "variance-preserving) initialisation; check that normalisation "
                           "layers are in training mode",
    "step too large": "lower the learning rate below 2/λ_max, or warm it up",
    "oscillating loss": "lower the learning rate or the momentum, add a decaying schedule; "
                        "shuffle the data if it is ordered",
    "ill-conditioned": "precondition: whiten or decorrelate the inputs, or use an adaptive or "
                       "second-order method (Adam, L-BFGS) (Shalev-Shwartz et al. 2017, §4)",
    "learning rate too small": "raise the learning rate (by 10× or more; an LR range test "
                               "finds the largest stable one)",
    "no gradient signal": "the gradient carries no information about the target "
                          "(Shalev-Shwartz et al. 2017, §2): check that labels match their "
                          "inputs, change the representation or add intermediate supervision; "
                          "more steps will not help",
    "low SNR": "the gradient is mostly noise (Shalev-Shwartz et al. 2017, §3): use a larger "
               "batch or accumulate gradients, or decompose the loss",
    "healthy": "nothing to fix",
}

@dataclass(frozen=True)
class Context:
    """What the rules know besides the history: the layers (module paths, in order) and the
    optimizer's kind and settings."""

    layers: tuple[str, ...] = ()
    optimizer: str = ""
    lr: float = math.nan
    momentum: float = 0.0

    @classmethod
    def of(cls, optimizer, layers) -> Context:
        """The optimizer's settings of its param group with the largest learning rate, whose
        step the stability limit bounds first."""
        group = max(optimizer.param_groups, key=lambda g: float(g.get("lr", 0.0))
                    ) if optimizer is not None else {}
        betas = group.get("betas", (math.nan, math.nan))
        return cls(layers=tuple(layers), optimizer=type(optimizer).__name__
                   if optimizer is not None else "", lr=float(group.get("lr", math.nan)),
                   momentum=float(group.get("momentum", betas[0] if group else 0.0)))


@dataclass(frozen=True)
class Finding:
    """One rule firing at one check."""

    name: str
    strength: float  # how far past its threshold the evidence lies (1 = at it)
    evidence: str
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    name: str
    confidence: float
    onset_step: int | None
    evidence: str
    remedy: str
    layers: tuple[str, ...] = ()


def confidence(strength: float) -> float:
    """0.5 at a threshold (strength 1), 1.0 at ten times past it."""
    if not math.isfinite(strength):
        return 1.0
    return float(np.clip(0.5 + 0.5 * math.log10(max(strength, 1.0)), 0.5, 1.0))


def diagnose(history: list[dict], context: Context, config: DoctorConfig = DoctorConfig()
             ) -> list[Finding]:
    """Every rule that fires on the last `config.window` steps of the history at the
    thresholds of `config`, less the findings a deeper one explains (a pure function). In
    order: a run that diverged is only that; a bug (gradients never cleared, probabilities
    given to a log-loss) explains everything it causes; raw-scale inputs explain the
    saturation, sharpness and conditioning they cause; an unstable step (past the stability
    limit, or a loss that gave back its progress) explains the saturated and dead units it
    makes; saturated or dead units explain vanishing gradients; and slow or noisy learning is
    named only when no mechanism explains it, on a full window."""
    if not history:
        return []
    w = Window(history, context, config)
    diverged = ev.diverged(w)
    if diverged is not None:
        return [diverged]
    bugs = [f for f in (ev.accumulating(w), ev.probabilities_to_log_loss(w)) if f]
    if bugs:
        return bugs
    findings = {f.name: f for f in (ev.unnormalised_inputs(w), ev.step_too_large(w),
                                    ev.oscillating(w), ev.flat_activations(w), ev.dead_units(w),
                                    ev.saturated_activations(w), ev.vanishing(w), ev.exploding(w))
                if f}
    explains = {"unnormalised inputs": ("saturated activations", "step too large"),
                "step too large": ("saturated activations", "dead units"),
                "oscillating loss": ("saturated activations", "dead units"),
                "saturated activations": ("vanishing gradients",),
                "exploding gradients": ("step too large",),
                "dead units": ("vanishing gradients",)}
    for cause in list(findings):
        for effect in explains.get(cause, ()):
            if cause in findings:
                findings.pop(effect, None)
    if not findings and w.full:
        findings = {f.name: f for f in (ev.ill_conditioned(w), ev.learning_rate_too_small(w),
                                        ev.no_signal(w), ev.low_snr(w)) if f}
        findings = dict(list(findings.items())[:1])
    return list(findings.values())


@dataclass
class Timeline:
    """Verdicts over a run: a finding is raised once it has fired at `config.persist`
    consecutive checks (its onset is the first of them) and stands until it has missed as many
    in a row. A finding that needs no confirmation (diverged) is raised at once."""

    config: DoctorConfig = field(default_factory=DoctorConfig)
    streaks: dict[str, list] = field(default_factory=dict)  # name -> [first step, count]
    raised: dict[str, int] = field(default_factory=dict)  # name -> onset step
    misses: dict[str, int] = field(default_factory=dict)
    latest: dict[str, Finding] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)  # the standing verdicts at each check
    firing: set[str] = field(default_factory=set)  # the findings of the last check
    last_step: int | None = None

    def check(self, step: int, findings: list[Finding]) -> None:
        firing = {f.name: f for f in findings}
        for name, finding in firing.items():
            streak = self.streaks.setdefault(name, [step, 0])
            streak[1] += 1
            self.latest[name] = finding
            self.misses.pop(name, None)
            if name not in self.raised and (streak[1] >= self.config.persist
                                            or name == "diverged"):
                self.raised[name] = streak[0]
        for name in list(self.streaks):
            if name not in firing:
                del self.streaks[name]
        for name in list(self.raised):
            if name not in firing:
                self.misses[name] = self.misses.get(name, 0) + 1
                if self.misses[name] >= self.config.persist:
                    del self.raised[name], self.misses[name]
        self.checks.append({"step": step, "raised": sorted(self.raised)})
        self.firing, self.last_step = set(firing), step

    def standing(self, steps: int) -> list[Verdict]:
        """The raised verdicts that still fire, most confident first (all raised ones if none
        fires at the last check, within their grace of `config.persist` misses), or "healthy"."""
        current = [name for name in self.raised if name in self.firing] or list(self.raised)
        standing = [Verdict(name, confidence(self.latest[name].strength), self.raised[name],
                            self.latest[name].evidence, REMEDIES[name], self.latest[name].layers)
                    for name in current]
        if not standing:
            return [Verdict("healthy", 0.5, None, f"no failure persisted over {steps} steps",
                            REMEDIES["healthy"])]
        return sorted(standing, key=lambda v: (-v.confidence, VERDICTS.index(v.name)))


def coverage(history: list[dict], failures: dict[str, str], loss_given: bool,
             curvature_every: int | None) -> dict:
    """What was and was not measured: the share of parameters with per-sample gradient norms,
    the activation sites watched, curvature or the reason it is missing, and every quantity
    that failed with its error."""
    sites = sorted({k.split("/", 1)[1] for r in history for k in r if k.startswith("kind/")})
    noise = [r["noise_coverage"] for r in history if "noise_coverage" in r]
    curvature_steps = sum("lambda_max" in r for r in history)
    if curvature_steps:
        curvature = f"measured at {curvature_steps} steps"
    elif curvature_every is None:
        curvature = "not measured: turned off (curvature_every=None)"
    elif "curvature" in failures:
        curvature = f"not measured: {failures['curvature']}"
    elif len(history) <= (curvature_every or 0):
        curvature = f"not measured: the run ended before step {curvature_every}"
    else:
        curvature = ("not measured: the loss could not be evaluated again (no loss function "
                     "given, and the loss was not computed from the model's output)"
                     if not loss_given else "not measured: no batch was given to step()")
    return {"per_sample_norms": float(np.median(noise)) if noise else 0.0,
            "activations": sites, "curvature": curvature, "failures": dict(failures)}
