"""§3.2: the stocks problem's estimators, their variance ratio, and the training gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.experiment import RunContext
from gradfail.experiments.paper import stocks

EXPERIMENT = registry.get("stocks")


def test_both_estimators_are_unbiased_for_the_same_gradient():
    config = EXPERIMENT.config("quick", {"d": 5, "ks": [3]})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=1)
    assets, weight, bias = stocks.initial_model(config, 3, ctx)
    weight.requires_grad_(True)
    items, y, z = stocks.draw(assets, 3, 400_000, ctx.generator("check"))
    p = stocks.allocation(weight, bias, items)
    gradients = [torch.autograd.grad(loss.mean(), weight, retain_graph=True)[0]
                 for loss in stocks.losses(p, y, z).values()]
    torch.testing.assert_close(gradients[0], gradients[1], atol=2e-3, rtol=0)


def test_variance_ratio_is_about_k_and_matches_a_loop(cpu_context):
    config = EXPERIMENT.config("quick", {"d": 50, "ks": [20], "variance_samples": 400})
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
        per_sample.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, (weight, bias))]))
    g = torch.stack(per_sample).double()
    variance = (g - g.mean(0)).square().sum(1).mean().item()
    assert measured["end-to-end"][0] == pytest.approx(variance, rel=1e-5)


def test_decomposition_pulls_ahead_of_end_to_end_at_large_k():
    config = EXPERIMENT.config("quick", {"ks": [1000], "steps": 1_200, "eval_every": 100})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=1)
    dec = stocks.train(config, 1000, "decomposition", ctx)
    e2e = stocks.train(config, 1000, "end-to-end", ctx)
    assert np.asarray(dec["loss"])[0, -1] < np.asarray(e2e["loss"])[0, -1] - 0.1
    assert np.asarray(e2e["loss"]).min() > -0.5
