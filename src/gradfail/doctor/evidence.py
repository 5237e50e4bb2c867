"""The doctor's rules, one function a verdict: each reads a `Window` of the history and returns a
`Finding` (gradfail.doctor.rules) with the numbers it read, or None.

Each rule measures what its verdict names, and compares it with its thresholds, the fields of
the window's `config` (`c`, a gradfail.doctor.config.DoctorConfig): definitions, which follow
from the verdict's meaning, and settings chosen on the development half of the benchmark
programs and the zoo's development cases, never on the held-out ones (each field says which).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gradfail.doctor.window import Window

def finding(name: str, strength: float, text: str, layers=()):
    from gradfail.doctor.rules import Finding
    return Finding(name, strength, text, tuple(layers))


def extreme(values: dict[str, float], largest: bool = True) -> tuple[str, float]:
    finite = [(k, v) for k, v in values.items() if math.isfinite(v)]
    if not finite:
        return "", math.nan
    return (max if largest else min)(finite, key=lambda kv: kv[1])


def sites(w: Window, measure: str, kind: float | None = None, hidden: bool = False
          ) -> dict[str, float]:
    """A measure of the activation sites (of one kind: 0 flat, 1 one-sided, 2 smooth; only the
    hidden ones, not a link whose result is the model's output, when `hidden`)."""
    kinds, final = w.by_suffix("kind/"), w.by_suffix("final/")
    return {k: v for k, v in w.by_suffix(f"{measure}/").items()
            if (kind is None or kinds.get(k) == kind) and not (hidden and k in final)}


# -- bugs: certain from one measurement -----------------------------------------------------------
def diverged(w: Window):
    """The first step whose loss, weights or gradients were not finite, and what grew first."""
    if not w.broken:
        return None
    for index, record in enumerate(w.all):
        broken = [k.removeprefix("nonfinite/") for k in record if k.startswith("nonfinite/")]
        if math.isfinite(record["loss"]) and not broken:
            continue
        before = [r["grad_norm"] for r in w.all[max(0, index - 20):index]
                  if math.isfinite(r.get("grad_norm", math.nan))]
        early = [r["grad_norm"] for r in w.all[:10] if math.isfinite(r.get("grad_norm",
                                                                           math.nan))]
        growth = max(before) / max(np.median(early), 1e-30) if before and early else math.nan
        first_broken = "loss" if not math.isfinite(record["loss"]) or not broken else broken[0]
        what, _, layer = first_broken.partition("/")
        first = {"weight": f"the weights of {layer}", "grad": f"the gradient of {layer}"
                 }.get(what, "the loss")
        cause = (f"; the gradient norm had grown {growth:.1e}× before it: lower the step or "
                 "clip the gradient" if growth > 10 else "; with no growth before it: a log or "
                 "a division of 0, or an overflow, in the loss or the forward pass"
                 if math.isfinite(growth) else "")
        return finding("diverged", math.inf, f"{first} became non-finite at step "
                       f"{record['step']}{cause}", [layer] if layer else [])
    return None


def accumulating(w: Window):
    c = w.config
    stale = w.median("stale_grad_ratio")
    if stale > c.stale:
        return finding("gradients accumulate", 10 * stale / c.stale, f"when each step's backward "
                       f"began, the gradients still held {stale:.0%} of what the optimizer "
                       f"then stepped with (0% when they are cleared); {w.trend_text()}")
    return None


def probabilities_to_log_loss(w: Window):
    c = w.config
    loss, share = extreme(w.by_suffix("probability_inputs/"))
    if share > c.probabilities:
        return finding("probabilities fed to a log-loss", 10 * share / c.probabilities,
                       f"{loss} was given probabilities ({share:.0%} of its inputs came from a "
                       f"softmax or sigmoid, or are rows summing to 1), where it expects logits"
                       f" or log-probabilities; {w.trend_text()}")
    return None


# -- mechanisms -------------------------------------------------------------------------------------
def unnormalised_inputs(w: Window):
    c = w.config
    rms, spread = w.median("input_rms_max"), w.median("input_std_spread")
    if not (rms > c.input_rms or spread > c.input_spread) or w.input_gain > c.fit:
        return None
    first, passing = extreme(sites(w, "passing", 2.0), largest=False)
    return finding("unnormalised inputs", max(rms / c.input_rms, spread / c.input_spread),
                   f"input features reach RMS {rms:.3g} and their standard deviations span "
                   f"{spread:.2g}×" + (f"; {first} passes {passing:.0%} of its typical "
                                      f"derivative" if first else "") + f"; {w.trend_text()}")


def flat_activations(w: Window):
    c = w.config
    reached = sites(w, "act_grad")
    name, flat = extreme({k: v for k, v in sites(w, "flat", 0.0).items() if k in reached})
    silent = [k for k, v in w.by_suffix("grad_norm/").items() if v == 0]
    if flat > c.flat and silent:
        return finding("flat activations", (1 - c.flat) / max(1 - flat, 1e-9), f"{flat:.0%} of "
                       f"{name}'s derivatives are exactly zero on the gradient's path, and "
                       f"{', '.join(silent[:3])} get{'s' if len(silent) == 1 else ''} no "
                       f"gradient at all; {w.trend_text()}", [name, *silent[:3]])
    return None


def dead_units(w: Window):
    c = w.config
    name, dead = extreme(sites(w, "dead", 1.0, hidden=True))
    if dead > c.dead:
        return finding("dead units", dead / c.dead, f"{dead:.0%} of {name}'s units were never "
                       f"active (derivative under 1% of its typical one on every sample of the "
                       f"last measured steps); {w.trend_text()}", [name])
    return None


def saturated_activations(w: Window):
    c = w.config
    name, passing = extreme(sites(w, "passing", 2.0, hidden=True), largest=False)
    if passing < c.saturated:
        return finding("saturated activations", c.saturated / max(passing, 1e-3), f"{name} "
                       f"passes {passing:.0%} of its typical derivative: its inputs (RMS "
                       f"{w.median(f'input_rms/{name}'):.3g}) sit in its flat tails; "
                       f"{w.trend_text()}", [name])
    return None


def depth_profile(w: Window) -> tuple[float, str, str]:
    """(gradient RMS at the first activation / at the last, first, last) in forward order."""
    grads, order = sites(w, "act_grad"), sites(w, "order")
    ranked = sorted((order[k], k) for k in grads if k in order and grads[k] > 0)
    if len(ranked) < 2:
        return math.nan, "", ""
    first, last = ranked[0][1], ranked[-1][1]
    return grads[first] / grads[last], first, last


def through_time(w: Window, gated: bool) -> tuple[float, str]:
    """(the most extreme ratio of the gradient at a recurrence's first step to its last, the
    site or module): activations called in a loop (their calls are its steps), and nn.RNN
    modules, with nn.GRU/nn.LSTM only when `gated`."""
    first, last = sites(w, "act_grad"), sites(w, "act_grad_last_call")
    ratios = {k: first[k] / last[k] for k in last if k in first and last[k] > 0}
    cells = w.by_suffix("gated/")
    ratios |= {k: v for k, v in w.by_suffix("time_ratio/").items()
               if gated or cells.get(k) == 0.0}
    name, _ = extreme({k: abs(math.log10(max(v, 1e-30))) for k, v in ratios.items()})
    return (ratios[name], name) if name else (math.nan, "")


def vanishing(w: Window):
    c = w.config
    if w.input_gain > c.nothing or abs(w.decrease) > c.stalled:
        return None  # learning, or a loss that rises (unstable, not stalled)
    depth, first, last = depth_profile(w)
    over_time, looped = through_time(w, gated=False)
    if depth < c.vanishing:
        return finding("vanishing gradients", c.vanishing / max(depth, 1e-300), f"the gradient "
                       f"reaching {first} is {depth:.1e} × the gradient reaching {last}; "
                       f"{w.trend_text()}", [first])
    if over_time < c.vanishing:
        return finding("vanishing gradients", c.vanishing / max(over_time, 1e-300), f"the "
                       f"gradient reaching {looped}'s first step is {over_time:.1e} × its "
                       f"last step's; {w.trend_text()}", [looped])
    return None


def exploding(w: Window):
    c = w.config
    depth, first, last = depth_profile(w)
    over_time, looped = through_time(w, gated=True)
    huge = w.median("grad_norm") / max(w.median("weight_norm"), 1e-30)
    losses = w.losses
    spikes = float(np.max(losses) / max(np.median(losses), 1e-30))
    if depth > c.exploding:
        return finding("exploding gradients", depth / c.exploding, f"the gradient reaching "
                       f"{first} is {depth:.1e} × the gradient reaching {last}; "
                       f"{w.trend_text()}", [first])
    if over_time > c.exploding:
        return finding("exploding gradients", over_time / c.exploding, f"the gradient reaching "
                       f"{looped}'s first step is {over_time:.1e} × its last step's; "
                       f"{w.trend_text()}", [looped])
    if huge > c.huge and spikes > c.spikes:
        return finding("exploding gradients", huge / c.huge, f"the gradient's norm is {huge:.3g}"
                       f"× the weights' and the loss spikes to {spikes:.3g}× its median; "
                       f"{w.trend_text()}")
    return None


# -- dynamics of the step ---------------------------------------------------------------------------
def overshooting(w: Window) -> tuple[bool, float, float]:
    """(each step climbs along its own direction on its own batch and consecutive gradients
    point against each other, ρ, the mean cosine): the optimizer overshoots back and forth."""
    rho = w.median("step_ratio")
    cosine, _ = w.signal()
    return rho < 0 and cosine < -w.config.noise, rho, cosine


def step_too_large(w: Window):
    """Gradient descent (plain or heavy ball) past its stability limit lr·λ_max = 2(1 + β):
    measured, or, without a curvature measurement, seen as steps that overshoot."""
    c = w.config
    if w.context is None or w.context.optimizer != "SGD":
        return None
    sharpness = w.sharpness()
    overshoots, rho, cosine = overshooting(w)
    if w.input_gain > c.fit:
        return None  # a run that fits its data is not failing, whatever its sharpness reads
    if sharpness > c.past_the_edge and (rho < c.overshot or cosine < -c.noise):
        return finding("step too large", sharpness, f"lr·λ_max is {sharpness:.3g}× the "
                       f"stability limit {w.median('stability_limit'):.3g}, and each step gets "
                       f"{rho:.0%} of the decrease its slope promised (consecutive gradients' "
                       f"cosine {cosine:.2f}); {w.trend_text()}")
    if not math.isfinite(sharpness) and overshoots:
        return finding("step too large", 1 - rho, f"each step climbs along its own direction "
                       f"(ρ = {rho:.2f}) and consecutive gradients point against each other "
                       f"(cosine {cosine:.2f}); {w.trend_text()}")
    return None


def ordered_data(w: Window) -> tuple[float, int]:
    """(the median share of a batch in its most common class, how many classes took turns as
    the majority over the window)."""
    return w.median("batch_purity"), len(set(w.values("batch_class")))


def oscillating(w: Window):
    c = w.config
    purity, turns = ordered_data(w)
    if purity > c.pure and turns >= 2:
        return finding("oscillating loss", 10 * purity / c.pure, f"each batch is {purity:.0%} one "
                       f"class and {turns} classes take turns: the data is ordered, so "
                       f"consecutive batches pull the model in different directions (shuffle "
                       f"it); {w.trend_text()}")
    regression = w.regression()
    ratio, swing = w.waves()
    overshoots, rho, cosine = overshooting(w)
    if regression > c.regressed:
        return finding("oscillating loss", 2 * regression, f"the loss climbed back "
                       f"{regression:.0%} of the way (in log scale) from its best to where it "
                       f"started; {w.trend_text()}")
    if ratio > c.waves and swing > c.swing and w.trend() > -c.trend:
        return finding("oscillating loss", ratio / c.waves, f"the loss swings in waves slower "
                       f"than its batch noise (variance ratio {ratio:.2g}, swings {swing:.0%} "
                       f"of its level) without a trend; {w.trend_text()}")
    if overshoots and (w.context is None or w.context.optimizer != "SGD"):
        return finding("oscillating loss", 1 - rho, f"each update climbs along its own "
                       f"direction (ρ = {rho:.2f}) and consecutive gradients point against "
                       f"each other (cosine {cosine:.2f}): the step overshoots back and forth; "
                       f"{w.trend_text()}")
    return None


# -- slow or noisy learning, when no mechanism explains it ------------------------------------------
def ill_conditioned(w: Window):
    c = w.config
    low, high = w.median("lambda_min"), w.median("lambda_max")
    hessian = high / low if low > 0 else math.nan
    inputs = w.median("input_condition")
    sharpness, rho = w.sharpness(), w.median("step_ratio")
    kappa = max(x for x in (hessian, inputs, 0.0) if math.isfinite(x))
    if not (sharpness > c.at_the_edge and kappa > c.ill_conditioned and rho > 0.5
            and w.decrease < 2 * c.slow and w.input_gain < c.fit):
        return None
    source = ("Hessian λ_max/λ_min" if kappa == hessian else
              "condition number of the inputs' correlation")
    return finding("ill-conditioned", kappa / c.ill_conditioned, f"the curvature spans "
                   f"{kappa:.2g}× ({source}) while lr·λ_max is already "
                   f"{sharpness:.2g}× the stability limit: a step the sharpest direction allows "
                   f"crawls along the flattest; {w.trend_text()}")


def learning_rate_too_small(w: Window):
    c = w.config
    cosine, _ = w.signal()
    rho, update, sharpness = w.median("step_ratio"), w.median("update_ratio"), w.sharpness()
    steady = w.trend(c.horizon)
    rates = w.values("lr")
    warming_up = len(rates) > 1 and rates[-1] > rates[0]  # a schedule is raising it: wait
    if not (rho > c.linear and w.decrease < c.slow and w.input_gain < c.learned
            and steady < -c.trend and cosine > 0) or sharpness > c.small_step or warming_up:
        return None
    return finding("learning rate too small", -steady / c.trend, f"each step gets {rho:.0%} of "
                   f"the decrease its slope promised (the loss is still linear over it) and "
                   f"moves the weights by {update:.1e} of their norm, while the loss falls "
                   f"steadily (trend t = {steady:.1f} over the last {c.horizon} steps)"
                   + (f"; lr·λ_max is only {sharpness:.2g}× the stability limit"
                      if math.isfinite(sharpness) else "") + f"; {w.trend_text()}")


def no_signal(w: Window):
    c = w.config
    cosine, t = w.signal()
    if not (cosine < c.no_signal and t < 2 and w.input_gain < c.nothing
            and abs(w.decrease) < c.stalled and abs(w.trend(c.horizon)) < c.trend):
        return None
    return finding("no gradient signal", 2 / max(t, 0.2), f"consecutive gradients are "
                   f"uncorrelated (mean cosine {cosine:.2f}, t = {t:.1f}) and the model does no "
                   f"better than an input-independent prediction: the gradient carries no "
                   f"information about the target; {w.trend_text()}")


def low_snr(w: Window):
    c = w.config
    cosine, t = w.signal()
    gain = w.input_gain
    if not (-c.noise < cosine < c.noise and gain < c.learned and abs(w.trend(c.horizon)) < c.trend):
        return None  # (a run with nothing to learn is "no gradient signal", judged first)
    return finding("low SNR", c.noise / max(cosine, 0.03), f"consecutive gradients barely agree "
                   f"(mean cosine {cosine:.2f}; batch SNR {w.median('batch_snr'):.2g} on "
                   f"{w.median('noise_coverage'):.0%} of the parameters, batch "
                   f"{w.median('batch_size'):.0f}) and the loss's trend is lost in its noise; "
                   f"{w.trend_text()}")
