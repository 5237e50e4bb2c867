"""§3.2: the stocks problem's estimators, their variance ratio, the ε placements, and how each
claim is judged (on constructed results whose verdict is known)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.paper import stocks

EXPERIMENT = registry.get("stocks")


def test_both_estimators_are_unbiased_for_the_same_gradient():
    config = EXPERIMENT.config("quick", {"d": 5, "ks": [3], "epsilon_ks": []})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=1)
    assets, weight, bias = stocks.initial_model(config, 3, ctx)
    weight.requires_grad_(True)
    items, y, z = stocks.draw(assets, 3, 400_000, ctx.generator("check"))
    p = stocks.allocation(weight, bias, items)
    gradients = [torch.autograd.grad(loss.mean(), weight, retain_graph=True)[0]
                 for loss in stocks.losses(p, y, z).values()]
    torch.testing.assert_close(gradients[0], gradients[1], atol=2e-3, rtol=0)


def test_variance_ratio_is_about_k_and_matches_a_loop(cpu_context):
    config = EXPERIMENT.config("quick", {"d": 50, "ks": [20], "epsilon_ks": [],
                                         "variance_samples": 400})
    measured = stocks.estimator_variance(config, 20, cpu_context)
    ratio = np.divide(measured["end-to-end"], measured["decomposition"])
    assert np.all((ratio > 0.7 * 20) & (ratio < 1.3 * 20))
    # brute force: per-sample gradients in (W, b) one sample at a time, seed 0
    assets, weight, bias = stocks.initial_model(config, 20, cpu_context)
    items, y, z = stocks.draw(assets, 20, 400, cpu_context.generator("variance", 20))
    weight, bias = weight[:1].clone().requires_grad_(True), bias[:1].clone().requires_grad_(True)
    per_sample = []
    for i in range(400):
        p = stocks.allocation(weight, bias, items[:1, i:i + 1])
        loss = stocks.losses(p, y[:1, i:i + 1], z[:1, i:i + 1])["end-to-end"].sum()
        gradients = torch.autograd.grad(loss, (weight, bias))
        per_sample.append(torch.cat([g.flatten() for g in gradients]))
    g = torch.stack(per_sample).double()
    variance = (g - g.mean(0)).square().sum(1).mean().item()
    assert measured["end-to-end"][0] == pytest.approx(variance, rel=1e-5)


def test_the_paper_setting_is_tensorflow_adam_and_the_other_placement_is_trained_too():
    for scale in ("default", "paper"):
        config = EXPERIMENT.config(scale)
        assert config.epsilon_placement == "tf" and (config.lr, config.batch_size) == (0.1, 100)
        assert stocks.placements(config, 1000) == ("tf", "torch")
        assert stocks.placements(config, 10) == ("tf",)
    assert stocks.placements(EXPERIMENT.config("quick", {"epsilon_placement": "torch"}),
                             1000) == ("torch", "tf")


def test_the_placement_reaches_the_optimiser_and_nothing_else_differs():
    config = EXPERIMENT.config("quick", {"ks": [30], "epsilon_ks": [30], "d": 40, "steps": 20,
                                         "eval_every": 10})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=2)
    runs = {p: stocks.train(config, 30, "end-to-end", p, ctx) for p in ("tf", "torch")}
    assert runs["tf"]["loss"][:, 0].tolist() == runs["torch"]["loss"][:, 0].tolist()  # same start
    assert not np.allclose(runs["tf"]["loss"][:, -1], runs["torch"]["loss"][:, -1])


@pytest.mark.parametrize("changes, message", [
    ({"epsilon_placement": "keras"}, "unknown ε placement"),
    ({"ks": [10], "epsilon_ks": [1000]}, "not among ks"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)


# --------------------------------------------------------------------------------------------
# Each check on a constructed result: a clear pass, a clear fail, a straddle.


def constructed(final: dict[tuple[str, str], list[float]], steps: int = 2_500,
                eval_every: int = 100, ratios: dict[int, list[float]] | None = None) -> dict:
    """A result whose k = 1000 runs end at `final[(scheme, placement)]` (one value a seed),
    flat at −0.01 before; `ratios`: Var(E2E) / Var(Dec) per k and seed."""
    grid = list(range(0, steps + 1, eval_every))
    training = [{"k": 1000, "scheme": scheme, "placement": placement, "steps": grid,
                 "loss": [[-0.01] * (len(grid) - 1) + [value] for value in values]}
                for (scheme, placement), values in final.items()]
    variance = [{"k": k, "end-to-end": list(values), "decomposition": [1.0] * len(values)}
                for k, values in (ratios or {}).items()]
    return {"training": training, "variance": variance}


def verdict(check, config, result) -> str:
    return check(config, result).verdict


def test_decomposition_is_judged_on_the_seed_median_at_the_budget():
    config = EXPERIMENT.config("default")
    judge = lambda values: verdict(stocks.check_decomposition, config, constructed(  # noqa: E731
        {("decomposition", "tf"): values}))
    assert judge([-0.99] * 8) == "holds"
    assert judge([-0.5] * 8) == "fails"
    assert judge([-0.99] * 4 + [-0.9] * 4) == "inconclusive"


def test_end_to_end_stall_and_the_paper_plateau():
    config = EXPERIMENT.config("default")
    stall = lambda values: verdict(stocks.check_end_to_end, config, constructed(  # noqa: E731
        {("end-to-end", "tf"): values}))
    assert stall([-0.3] * 8) == "holds"
    assert stall([-0.8] * 8) == "fails"
    assert stall([-0.3] * 4 + [-0.6] * 4) == "inconclusive"
    plateau = lambda values: verdict(stocks.check_paper_plateau, config, constructed(  # noqa: E731
        {("end-to-end", "tf"): values}))
    assert plateau(list(np.linspace(-0.33, -0.25, 8))) == "holds"
    assert plateau([-0.6] * 8) == "fails"
    assert plateau([-0.45] * 4 + [-0.3] * 4) == "inconclusive"


def test_the_epsilon_claim_pairs_seeds():
    config = EXPERIMENT.config("default")
    tf = list(np.linspace(-0.2, -0.5, 8))  # seeds differ a lot; the pairing removes it
    judge = lambda shift: verdict(stocks.check_epsilon, config, constructed(  # noqa: E731
        {("end-to-end", "tf"): tf, ("end-to-end", "torch"): list(np.add(tf, shift))}))
    assert judge(-0.1) == "holds"
    assert judge(+0.1) == "fails"
    assert judge(np.linspace(-0.1, 0.1, 8)) == "inconclusive"


def test_a_short_run_is_not_checked_and_budgets_count_samples():
    values = {("decomposition", "tf"): [-1.0] * 8}
    short = EXPERIMENT.config("default", {"steps": 300})
    check = stocks.check_decomposition(short, constructed(values, steps=300))
    assert check.verdict == "not checked" and "30,000 of the 250,000 samples" in check.detail
    half_batch = EXPERIMENT.config("default", {"batch_size": 50})  # 2,500 steps: half the samples
    assert verdict(stocks.check_decomposition, half_batch, constructed(values)) == "not checked"
    doubled = EXPERIMENT.config("default", {"batch_size": 50, "steps": 5_000})
    result = constructed(values, steps=5_000)  # judged at step 5,000, not at step 2,500
    assert verdict(stocks.check_decomposition, doubled, result) == "holds"
    assert stocks.check_epsilon(EXPERIMENT.config("default"), result).verdict == "not checked"


def test_the_variance_ratio_must_be_near_k_at_every_k():
    config = EXPERIMENT.config("default")
    judge = lambda ratios: verdict(stocks.check_ratio, config, constructed(  # noqa: E731
        {}, ratios=ratios))
    assert judge({10: [9.9, 10.1, 10.0], 1000: [990, 1010, 1000]}) == "holds"
    assert judge({10: [9.9, 10.1, 10.0], 1000: [2000, 2010, 1990]}) == "fails"
    assert judge({10: [9.9, 10.1, 10.0], 1000: [500, 1000, 1500]}) == "inconclusive"
