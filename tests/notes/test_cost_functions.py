"""cost_functions: the penalties are what they say; a seed's settings are paired; strengths are
chosen on validation and claims judged on test by their intervals; bad strengths and sizes are
one-line errors."""

from __future__ import annotations

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


def test_a_seeds_models_share_images_initialisation_and_minibatches(cpu_context):
    config = EXPERIMENT.config("quick", {
        "samples": [50, 100], "hidden": 8, "steps": 5, "l2_weights": [1e-30],
        "l1_weights": [1e-30], "l1_activations": [1e-30], "kl_sparsity": [1e-30]})
    found = cf.train(50, config, cpu_context)
    for key in ("train_error", "validation_error", "test_error", "test_accuracy"):
        values = torch.tensor(found[key])  # (settings, seeds): negligible penalties
        torch.testing.assert_close(values, values[:1].expand_as(values))
        assert values[0, 0] != values[0, 1]  # seeds differ


SETTINGS = [("none", 0.0), ("L2 weights", 1e-4), ("L2 weights", 1e-3), ("L1 weights", 1e-5),
            ("L1 weights", 1e-4), ("L1 activations", 1e-3), ("L1 activations", 1e-2),
            ("KL sparsity", 1e-2), ("KL sparsity", 1e-1)]


def at_size(**measures: dict) -> dict:
    """A size's result: every measure 0.5 on every seed but those given {setting: per seed}."""
    keys = ("train_error", "validation_error", "test_error", "test_sparsity",
            "validation_accuracy", "test_accuracy")
    return {"n": 50, "settings": [list(s) for s in SETTINGS],
            **{key: [measures.get(key, {}).get(s, [0.5] * 3) for s in SETTINGS] for key in keys}}


def test_the_weight_strength_is_chosen_on_validation_and_judged_on_test():
    # on validation the weaker strengths shrink the gap most; on test they widen it
    weaker = {("L2 weights", 1e-4): [0.4] * 3, ("L1 weights", 1e-5): [0.4] * 3}
    found = at_size(validation_error=weaker,
                    test_error={s: [0.6, 0.61, 0.6] for s in weaker})
    check = cf.check_weight_decay(EXPERIMENT.config("quick"), {"sizes": [found]})
    assert check.verdict == "fails" and "L2 weights 0.0001" in check.detail
    found["test_error"] = found["validation_error"]
    check = cf.check_weight_decay(EXPERIMENT.config("quick"), {"sizes": [found]})
    assert check.verdict == "holds"


@pytest.mark.parametrize("silent, verdict", [
    ([0.9, 0.92, 0.95], "holds"),
    ([0.0, 0.0, 0.0], "fails"),  # below the unpenalised 0.5
    ([0.3, 0.9, 0.6], "inconclusive"),
])
def test_sparsity_is_judged_on_the_paired_interval_of_both_penalties(silent, verdict):
    found = at_size(test_sparsity={("L1 activations", 1e-2): [0.97, 0.98, 0.99],
                                   ("KL sparsity", 1e-1): silent})
    assert cf.check_sparse(EXPERIMENT.config("quick"), {"sizes": [found]}).verdict == verdict


def test_the_rank_correlation_is_bootstrapped_by_setting():
    sparsity = {s: [i / 10 + 0.01 * seed for seed in range(3)] for i, s in enumerate(SETTINGS)}
    gap = {s: [0.1] * 3 for s in SETTINGS}  # train error 0.5: test error 0.6 − sparsity/2
    over = at_size(test_sparsity=sparsity,
                   test_error={s: [0.6 - v / 2 for v in values] for s, values in sparsity.items()})
    found = cf.sparsity_gap_correlation(over)
    assert found.estimate == pytest.approx(-1) and found.high == pytest.approx(-1)
    assert found.n == len(SETTINGS) and found.method == "cluster bootstrap"
    assert cf.check_link(EXPERIMENT.config("quick"), {"sizes": [over]}).verdict == "holds"
    flat = at_size(test_sparsity={s: [0.0] * 3 for s in SETTINGS[:5]}, test_error=gap)
    assert cf.sparsity_gap_correlation(flat).estimate == 0  # constant: no ranking, no NaN


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
