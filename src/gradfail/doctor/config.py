"""The doctor's thresholds, one typed field each: `watch(model, config=DoctorConfig(dead=0.8))`,
or a dict of the fields to change (`config={"dead": 0.8}`).

Each rule (gradfail.doctor.evidence) measures what its verdict names, and a threshold says how
far the measurement must go. The thresholds are of two kinds, and each field's description says
which. A definition follows from the verdict's own meaning: half of a layer's units dead; a
gradient held over from the last step at all; a log-loss given the outputs of a softmax or
sigmoid, or rows that are probability vectors; a layer whose gradient is exactly zero below a
flat function; a step whose loss rose above where it began (the stability edge of ρ); lr·λ_max
measured against the stability limit 2(1 + momentum). A setting "set on dev" was chosen on the
development half of the doctor's benchmark programs and of the zoo's cases
(gradfail.doctor.bench, gradfail.doctor.zoo), never on the held-out ones: the defaults are the
values that benchmark validated. A bad value is one DoctorError naming the field (an unknown
one with the nearest known name).
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Fraction = Annotated[float, Field(gt=0, le=1)]  # a share, or a cosine, in (0, 1]
Positive = Annotated[float, Field(gt=0)]
Growth = Annotated[float, Field(gt=1)]  # a ratio of a quantity to a smaller one
Steps = Annotated[int, Field(ge=10)]  # a loss's trend needs 10 steps (gradfail.doctor.window)


def definition(default, meaning: str):
    """A field whose default follows from its verdict's definition."""
    return Field(default, description=f"{meaning} (a definition)")


def set_on_dev(default, meaning: str):
    """A field whose default was chosen on the development half of the benchmark."""
    return Field(default, description=f"{meaning} (set on the development half of the doctor's "
                                      "benchmark)")


class DoctorConfig(BaseModel):
    """Every threshold of the doctor's rules and of its timeline (gradfail.doctor.rules), with
    the defaults its benchmark validated. Frozen; unknown fields, values out of range and values
    of the wrong type (strict: no strings for numbers, no booleans) are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    # -- definitions ------------------------------------------------------------------------------
    stale: Fraction = definition(
        0.01, "gradients accumulate: the gradient held over from the last step is more than this "
        "share of the one stepped with (cleared gradients give exactly 0)")
    probabilities: Fraction = definition(
        0.9, "probabilities fed to a log-loss: the share of its inputs that came from a softmax "
        "or sigmoid, or are rows summing to 1, exceeds this")
    flat: Fraction = definition(
        0.9, "flat activations: the share of a function's derivatives that are exactly zero on "
        "the gradient's path exceeds this")
    dead: Fraction = definition(
        0.5, "dead units: the share of a one-sided (ReLU-like) function's units never active on "
        "any recent sample exceeds this")
    linear: Fraction = definition(
        0.9, "ρ, a step's share of the decrease its slope promised: above this, the step is in "
        "the loss's linear regime (learning rate too small)")
    overshot: Fraction = definition(
        0.2, "ρ below this: the step landed close to as high as it started (a step 2× past the "
        "minimum gives ρ = 0)")
    pure: Fraction = definition(
        0.9, "ordered data: batches are more than this share one class, the class changing "
        "between batches")
    regressed: Positive = definition(
        0.5, "oscillating loss: the loss climbed back more than this share of its (log-)progress "
        "from its best (above 1: past where it started) …")
    progressed: Growth = definition(
        1.5, "… after its best had come to at most 1/this of where it started (1.5: 2/3)")
    # -- set on dev -------------------------------------------------------------------------------
    saturated: Fraction = set_on_dev(
        0.25, "saturated activations: a smooth activation passes under this share of its "
        "typical derivative")
    input_rms: Positive = set_on_dev(
        20.0, "unnormalised inputs: an input feature this large (RMS) is on a raw scale")
    input_spread: Growth = set_on_dev(
        1e3, "unnormalised inputs: the input features' standard deviations span this factor")
    fit: Fraction = set_on_dev(
        0.9, "a model whose loss is this share below an input-independent prediction's has fit "
        "its data (no verdict of unnormalised inputs, a large step or ill-conditioning)")
    learned: Fraction = set_on_dev(
        0.35, "a model below this share has not learned much yet (learning rate too small, low "
        "SNR)")
    nothing: Fraction = set_on_dev(
        0.05, "a model below this share has learned nothing (vanishing gradients, no gradient "
        "signal)")
    stalled: Fraction = set_on_dev(
        0.05, "a relative loss decrease over the window under this: stalled")
    slow: Fraction = set_on_dev(
        0.15, "a relative loss decrease over the window under this: a crawl")
    trend: Positive = set_on_dev(
        3.0, "the t statistic of the loss's trend beyond which the trend is no noise")
    horizon: Steps = set_on_dev(
        300, "the steps over which the loss's trend is judged, for the rates of slow learning")
    vanishing: Fraction = set_on_dev(
        1e-2, "vanishing gradients: the gradient at the first activation over the last (or at a "
        "recurrence's first step over its last) is below this")
    exploding: Growth = set_on_dev(
        1e2, "exploding gradients: that ratio exceeds this")
    huge: Positive = set_on_dev(
        10.0, "exploding gradients: the gradient's norm over the weights' exceeds this …")
    spikes: Growth = set_on_dev(
        10.0, "… and the largest loss in the window over its median exceeds this")
    waves: Positive = set_on_dev(
        2.0, "oscillating loss: the smoothed loss's variance over what batch noise leaves "
        "exceeds this (swings slower than the noise) …")
    swing: Positive = set_on_dev(
        0.1, "… and its swings relative to its level exceed this")
    ill_conditioned: Growth = set_on_dev(
        1e4, "ill-conditioned: the Hessian's λ_max/λ_min, or the input correlation's condition "
        "number, exceeds this")
    at_the_edge: Positive = set_on_dev(
        0.1, "lr·λ_max over the stability limit 2(1 + momentum) above this: the sharp direction "
        "limits the step (ill-conditioned)")
    past_the_edge: Positive = set_on_dev(
        1.5, "step too large: lr·λ_max over the stability limit exceeds this. Gradient descent "
        "self-stabilises at the edge (Cohen et al. 2021, edge of stability), and λ_max on 32 "
        "samples reads high; changed from 1 after the first held-out evaluation named a healthy "
        "run at the edge (1.18×) unstable")
    small_step: Positive = set_on_dev(
        0.02, "learning rate too small only while lr·λ_max over the stability limit is at most "
        "this: room for a step 50× larger")
    noise: Fraction = set_on_dev(
        0.3, "low SNR: the mean cosine of consecutive gradients is below this (the batch "
        "gradient is mostly noise); below minus this, they point against each other")
    no_signal: Fraction = set_on_dev(
        0.1, "no gradient signal: the mean cosine is below this, and not significant")
    # -- the window and the timeline (set before the benchmark, kept on its development half) ----
    window: Steps = set_on_dev(
        100, "the last steps the rules read; slow or noisy learning is judged only on a full one")
    persist: Annotated[int, Field(ge=1)] = set_on_dev(
        3, "consecutive checks a finding must fire before its verdict is raised, and miss before "
        "it is dropped (a divergence is raised at once)")

    @model_validator(mode="wrap")
    @classmethod
    def one_line(cls, values, handler):
        """A refused value as one DoctorError that names the field."""
        try:
            return handler(values)
        except ValidationError as error:
            raise refusal(error) from None


def refusal(error: ValidationError) -> Exception:
    """The first of a ValidationError's errors, as one line naming the field."""
    from gradfail.doctor.loggers import DoctorError  # (the loggers import the rules, and so this)

    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        near = difflib.get_close_matches(field, DoctorConfig.model_fields, n=1)
        return DoctorError(f"unknown doctor setting {field!r}" + (
            f" (did you mean {near[0]!r}?)" if near else
            f"; settings: {', '.join(DoctorConfig.model_fields)}"))
    if not field:
        return DoctorError(f"the doctor's config is a DoctorConfig or a dict of its settings, "
                           f"not {first['input']!r}")
    return DoctorError(f"invalid doctor setting {field}={first['input']!r}: {first['msg']}")
