"""weight_sharing: the locally connected layer is a convolution with untied filters; the memory
count is exact on a model whose bytes are known, and the same in a spawned process; the claims'
checks judge constructed results by their intervals."""

from __future__ import annotations

import pytest
import torch

from gradfail import registry
from gradfail.errors import ConfigError
from gradfail.experiments.notes import weight_sharing as ws
from gradfail.nets import convnet

EXPERIMENT = registry.get("weight_sharing")


def test_a_locally_connected_layer_with_tied_filters_is_the_convolution():
    config = EXPERIMENT.config("quick", {"size": 12, "kernel": 3})
    conv = ws.parameters("convolution", config, 2, torch.Generator().manual_seed(0))
    local = [conv[0][:, None].expand(-1, ws.positions(config), -1, -1), *conv[1:]]
    x = torch.rand(2, 4, 12, 12)
    torch.testing.assert_close(convnet.forward(local, x, 3),
                               convnet.forward(conv, x, 3))
    reference = torch.nn.functional.conv2d(x[0][:, None], conv[0][0].reshape(-1, 1, 3, 3))
    hidden = torch.relu(reference + conv[1][0][None, :, :, None])
    logits = hidden.flatten(1) @ conv[2][0] + conv[3][0]
    torch.testing.assert_close(convnet.forward(conv, x, 3)[0], logits)


def test_the_parameter_ratio_is_the_number_of_positions(quick_store):
    (run,) = quick_store.runs(experiment="weight_sharing")
    claim = next(c for c in run["claims"] if c["name"].startswith("untied filters multiply"))
    assert claim["verdict"] == "holds" and claim["measured"] == 24 * 24


def test_the_memory_count_of_a_model_whose_bytes_are_known():
    w = torch.randn(5, requires_grad=True)  # float32: 20 bytes
    v = torch.randn(3, dtype=torch.float64, requires_grad=True)  # 24 bytes
    x = torch.randn(5)

    def loss() -> torch.Tensor:
        # autograd saves x (twice: counted once), exp's result, and v (a parameter: not counted)
        return (torch.exp(w * x) * x).sum() + (v * v).sum()
    found = ws.training_memory([w, v], loss)
    assert found == {"parameters": 44, "gradients": 44,
                     "optimizer": 2 * 44 + 2 * 4,  # Adam's two moments, a float32 step each
                     "activations": 2 * 20}


def test_the_spawned_count_is_the_in_process_count():
    config = EXPERIMENT.config("quick", {"size": 12, "kernel": 3, "memory_batch": 4})
    spawned = ws.measure_costs(config)["costs"]
    for layer, found in zip(ws.LAYERS, spawned, strict=True):
        assert found["bytes"] == ws.measure_cost(layer, config)["bytes"]
        # float32 parameters, their gradients and Adam's two moments, a 4-byte step per tensor
        assert ws.state_bytes(found) == 4 * 4 * found["parameters"] + 4 * 4
    conv, local = spawned  # conv2d saves its input images, unfold + einsum the k² patches
    assert 0 < conv["bytes"]["activations"] < local["bytes"]["activations"]


def curves(conv_fewer: list[float], local_most: list[float]) -> dict:
    return {"curves": [{"layer": "convolution", "n": 256, "accuracy": conv_fewer},
                       {"layer": "locally connected", "n": 1_024, "accuracy": local_most}]}


@pytest.mark.parametrize("conv, local, verdict", [
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.80], "holds"),
    ([0.70, 0.71, 0.72], [0.80, 0.81, 0.80], "fails"),
    ([0.70, 0.95, 0.80], [0.80, 0.81, 0.80], "inconclusive"),
])
def test_the_samples_check_judges_the_paired_difference_interval(conv, local, verdict):
    config = EXPERIMENT.config("quick", {"samples": [32, 256, 1_024]})
    assert ws.check_samples(config, curves(conv, local)).verdict == verdict


def test_the_memory_check_is_the_exact_byte_ratio():
    def cost(state: int, activations: int) -> dict:
        return {"bytes": {"parameters": state, "gradients": state, "optimizer": 2 * state,
                          "activations": activations}, "seconds": 0.01}
    config = EXPERIMENT.config("quick")
    found = ws.check_memory(config, {"costs": [cost(10, 60), cost(100, 60)]})
    assert found.verdict == "holds" and found.measured == pytest.approx(460 / 100)
    assert found.interval.low == found.interval.high
    assert ws.check_memory(config, {"costs": [cost(100, 60), cost(10, 60)]}).verdict == "fails"


@pytest.mark.parametrize("changes, message", [
    ({"kernel": 30}, "smaller than the image"),
    ({"size": 8}, "greater than or equal to 12"),
    ({"samples": [0, 10]}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
