import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradfail.experiment import Check
from gradfail.maths.statistics import (
    Interval,
    bootstrap_interval,
    fraction_difference_interval,
    fraction_interval,
    kaplan_meier,
    logrank_test,
    mean_interval,
    median_interval,
)
from gradfail.nets.batched import paper_adam


def test_mean_interval_is_students_t():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    low, high = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    interval = mean_interval(values)
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_median_interval_covers_as_it_says():
    """The order-statistic interval's stated coverage against a brute-force simulation."""
    rng = np.random.default_rng(1)
    few = median_interval([3.0, 1.0, 2.0])
    assert (few.low, few.high, few.confidence) == (1.0, 3.0, 0.75)
    many = median_interval(np.arange(10.0))
    # n = 10: [x(2), x(9)] covers 1 - 2 P(Bin(10, 1/2) <= 1) = 97.9%; [x(3), x(8)] only 89%
    assert (many.low, many.high) == (1.0, 8.0)
    assert many.confidence == pytest.approx(1 - 2 * stats.binom.cdf(1, 10, 0.5))
    hits = sum(np.sort(s)[1] <= math.log(2) <= np.sort(s)[8]
               for s in rng.exponential(size=(20_000, 10)))
    assert hits / 20_000 == pytest.approx(many.confidence, abs=0.01)


def test_cluster_bootstrap_counts_clusters_not_rows():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=16)
    rows = np.repeat(centres, 100)
    clustered = bootstrap_interval(rows, np.mean, clusters=np.repeat(np.arange(16), 100))
    naive = bootstrap_interval(rows, np.mean)
    assert clustered.n == 16 and naive.n == 1600
    assert clustered.high - clustered.low > 5 * (naive.high - naive.low)
    per_instance = bootstrap_interval(centres, np.mean)
    assert clustered.high - clustered.low == pytest.approx(per_instance.high - per_instance.low,
                                                           rel=0.15)


def test_wilson_and_newcombe_match_the_published_example():
    """Newcombe (1998), Table II example (a): 56/70 − 48/80 = 0.2, 95% [0.0524, 0.3339]."""
    a = np.arange(70) < 56
    b = np.arange(80) < 48
    difference = fraction_difference_interval(a, b)
    assert difference.estimate == pytest.approx(0.2)
    assert (difference.low, difference.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert fraction_interval(a).low == pytest.approx(0.6920, abs=5e-4)


def test_kaplan_meier_by_hand():
    # times 1, 2+, 3, 3, 4+ (+: censored): S = 4/5 after 1, then 4/5 · 1/3 after 3
    times, survival = kaplan_meier([1, 2, 3, 3, 4], [True, False, True, True, False])
    assert times.tolist() == [1.0, 3.0]
    assert survival == pytest.approx([0.8, 0.8 * (1 - 2 / 3)])


def test_logrank_separates_and_agrees():
    rng = np.random.default_rng(0)
    fast, slow = rng.exponential(1.0, 200), rng.exponential(3.0, 200)
    budget = 2.0
    excess, p = logrank_test(np.minimum(fast, budget), fast < budget,
                             np.minimum(slow, budget), slow < budget)
    assert excess > 0 and p < 1e-6
    same = np.minimum(fast, budget)
    assert logrank_test(same, fast < budget, same, fast < budget) == pytest.approx((0.0, 1.0))


def test_checks_judge_the_interval_against_the_threshold():
    def interval(low, high):
        return Interval((low + high) / 2, low, high, 0.95, 5, "t")
    assert Check.at_least(interval(1, 2), 0.5, "x").verdict == "holds"
    assert Check.at_least(interval(0.2, 0.4), 0.5, "x").verdict == "fails"
    assert Check.at_least(interval(0.2, 0.8), 0.5, "x").verdict == "inconclusive"
    assert Check.at_most(interval(0.2, 0.4), 0.5, "x").verdict == "holds"
    assert Check.at_most(interval(0.6, 0.9), 0.5, "x").verdict == "fails"
    assert Check.at_most(interval(0.2, 0.8), 0.5, "x").verdict == "inconclusive"
    with pytest.raises(ValueError, match="outside its interval"):
        Interval(3.0, 0.0, 1.0, 0.95, 2, "t")


def test_tf_adam_is_tensorflows_update_rule():
    """Brute-force twin of TF1's Adam: lr_t = lr·√(1−β2^t)/(1−β1^t), w −= lr_t·m/(√v + ε)."""
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(5, 3, generator=generator, dtype=torch.float64) * 1e-5
    weight = start.clone().requires_grad_(True)
    optimiser = paper_adam([weight], lr=0.1, placement="tf")
    m, v, twin = torch.zeros_like(start), torch.zeros_like(start), start.clone()
    for t in range(1, 30):
        gradient = torch.randn(5, 3, generator=generator, dtype=torch.float64) * 1e-5
        weight.grad = gradient.clone()
        optimiser.step()
        m = 0.9 * m + 0.1 * gradient
        v = 0.99 * v + 0.01 * gradient**2
        twin -= 0.1 * math.sqrt(1 - 0.99**t) / (1 - 0.9**t) * m / (v.sqrt() + 1e-5)
    torch.testing.assert_close(weight.detach(), twin)
    torch_placement = start.clone().requires_grad_(True)
    other = paper_adam([torch_placement], lr=0.1, placement="torch")
    torch_placement.grad = torch.full_like(start, 1e-5)
    other.step()
    assert not torch.allclose(torch_placement.detach(), twin)
