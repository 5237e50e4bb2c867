"""weight_sharing: the locally connected layer is a convolution with untied filters."""

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


@pytest.mark.parametrize("changes, message", [
    ({"kernel": 30}, "smaller than the image"),
    ({"size": 8}, "greater than or equal to 12"),
    ({"samples": [0, 10]}, "greater than 0"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
