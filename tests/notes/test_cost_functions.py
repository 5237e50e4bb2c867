"""cost_functions: the penalties are what they say; at quick scale sparsity penalties silence
the code; bad strengths and sizes are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.notes import cost_functions as cf

EXPERIMENT = registry.get("cost_functions")


def test_each_penalty_is_its_textbook_formula():
    params = cf.initial(4, 6, torch.Generator().manual_seed(0))
    codes = torch.rand(4, 5, 6, generator=torch.Generator().manual_seed(1))
    found = cf.penalty(params, codes, torch.eye(4), 0.05)  # model i has only penalty i
    w1, w2 = params[0], params[2]
    rho = codes.mean(1)
    kl = 0.05 * torch.log(0.05 / rho) + 0.95 * torch.log(0.95 / (1 - rho))
    expected = torch.stack([w1[0].square().sum() + w2[0].square().sum(),
                            w1[1].abs().sum() + w2[1].abs().sum(),
                            codes[2].sum(1).mean(), kl[3].sum()])
    torch.testing.assert_close(found, expected)


def test_a_linear_classifier_reads_labels_written_into_the_codes():
    labels = torch.arange(200) % 10
    codes = torch.nn.functional.one_hot(labels, 12).float()[None].expand(2, -1, -1)
    accuracy = cf.ridge_accuracy(codes, labels, codes, labels)
    torch.testing.assert_close(accuracy, torch.ones(2))


def test_sparsity_penalties_silence_the_code_and_widen_the_gap(quick_store):
    (run,) = quick_store.runs(experiment="cost_functions")
    small, large = run["result"]["sizes"]
    sparsity = cf.table(large, "sparsity")
    assert sparsity[cf.strongest(large, "KL sparsity")] > sparsity[("none", 0.0)] + 0.5
    gaps = cf.gap(small)
    assert gaps[cf.strongest(small, "L1 activations")] > gaps[("none", 0.0)]
    assert all(np.isfinite(r) for _, r, _ in cf.sparsity_gap_correlations(run["result"]))


@pytest.mark.parametrize("changes, message", [
    ({"kl_sparsity": [-0.1]}, "greater than 0"),
    ({"l2_weights": [0]}, "greater than 0"),
    ({"sparsity_target": 1.5}, "less than 1"),
    ({"samples": [50, 5_000]}, "the split holds 1437"),
    ({"hidden": 0}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
