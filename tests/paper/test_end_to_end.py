"""§3: line images, the two schemes, the SNR at initialisation, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradfail import registry
from gradfail.data.lines import line_labels, random_lines, rasterise, tuple_labels
from gradfail.errors import ConfigError
from gradfail.experiment import RunContext
from gradfail.experiments.paper import end_to_end

EXPERIMENT = registry.get("end_to_end")


def test_lines_are_drawn_as_the_code_draws_them():
    generator = torch.Generator().manual_seed(0)
    lines = random_lines((500,), generator)
    assert (lines[:, 0] >= 0).all() and (lines[:, 0] < math.pi).all()
    assert (lines[:, 1] > 5).all() and (lines[:, 1] < 23).all()
    images = rasterise(lines)
    assert images.shape == (500, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}
    # a horizontal-ish line (θ = π/2: along the columns) of length 10 centred at (10.5, 10.5)
    one = rasterise(torch.tensor([[math.pi / 2, 10.0, 10.5, 10.5]]))[0]
    rows, cols = torch.nonzero(one, as_tuple=True)
    assert rows.unique().tolist() == [10]
    assert cols.tolist() == list(range(6, 15))  # trunc(10.5 ± s), s = 0..4
    # a vertical line (θ = 0) off the top edge: rows 1 ± s for s = 0..9 clipped to 0..10
    edge = rasterise(torch.tensor([[0.0, 20.0, 1.0, 5.0]]))[0]
    assert torch.nonzero(edge).tolist() == [[row, 5] for row in range(11)]


def test_labels_are_angle_below_half_pi_and_their_product():
    lines = torch.tensor([[[0.1, 9, 5, 5], [2.0, 9, 5, 5], [3.0, 9, 5, 5]]])
    assert line_labels(lines).tolist() == [[1.0, -1.0, -1.0]]
    assert tuple_labels(lines).tolist() == [1.0]


def test_snr_gap_between_the_schemes_at_k3_needs_no_training():
    config = EXPERIMENT.config("quick", {"ks": [1, 3], "snr_samples": 20_000})
    measured = end_to_end.snr_at_init(config, 0, RunContext(torch.device("cpu"), 0, 1))
    floor = 1 / config.snr_samples
    dec3, e2e3 = measured["decomposition/k=3"]["snr"], measured["end-to-end/k=3"]["snr"]
    dec1, e2e1 = measured["decomposition/k=1"]["snr"], measured["end-to-end/k=1"]["snr"]
    assert dec3 > 10 * floor  # the per-image gradient is resolved ...
    assert e2e3 < dec3 / 5 and e2e3 < 3 * floor  # ... the end-to-end one is not at k = 3
    assert 0.5 < e2e1 / dec1 < 2  # and at k = 1 the two are alike
    corrected = measured["end-to-end/k=3"]["corrected_signal"]
    assert abs(corrected) < measured["end-to-end/k=3"]["signal"]


def test_snr_matches_a_python_loop_over_samples():
    gradients = torch.randn(50, 4, dtype=torch.float64) + 0.3
    measured = end_to_end.gradient_snr(gradients)
    mean = sum(gradients) / 50
    noise = sum(float((g - mean) @ (g - mean)) for g in gradients) / 50
    assert measured["signal"] == pytest.approx(float(mean @ mean))
    assert measured["noise"] == pytest.approx(noise)


def test_per_sample_gradients_by_vmap_equal_autograd_one_sample_at_a_time():
    generator = torch.Generator().manual_seed(1)
    join = end_to_end.paper_init(end_to_end.tuple_net(3), generator)
    w = torch.randn(100, dtype=torch.float64)
    bias = torch.zeros(1, dtype=torch.float64)
    phi = torch.randn(6, 3, 100, dtype=torch.float64) / 10
    image_y = torch.tensor([[1.0, -1, 1]] * 6, dtype=torch.float64)
    tuple_y = image_y.prod(1)
    for name, loss in end_to_end.snr_losses(join, bias).items():
        batched = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0, 0))(
            w, phi, image_y, tuple_y)
        for i in range(6):
            w_i = w.clone().requires_grad_(True)
            (expected,) = torch.autograd.grad(loss(w_i, phi[i], image_y[i], tuple_y[i]), w_i)
            torch.testing.assert_close(batched[i], expected, msg=name)


def test_decomposition_learns_the_images_at_k3_where_end_to_end_does_not():
    config = EXPERIMENT.config("quick", {"ks": [3], "e2e_steps": 150, "dec_steps": 150,
                                         "batch_size": 50, "eval_every": 50})
    ctx = RunContext(torch.device("cpu"), seed=0, n_seeds=1)
    dec = end_to_end.train(config, 3, "decomposition", ctx)
    e2e = end_to_end.train(config, 3, "end-to-end", ctx)
    assert np.asarray(dec["image_accuracy"])[0, -1] > 0.75  # the per-image scorer learns
    assert abs(np.asarray(e2e["image_accuracy"])[0, -1] - 0.5) < 0.1  # in neither sign here
    assert abs(np.asarray(e2e["accuracy"])[0, -1] - 0.5) < 0.05


@pytest.mark.parametrize("changes, message", [
    ({"ks": [0]}, "greater than 0"),
    ({"image_size": 9}, "too small for lines"),
    ({"pool_size": 10, "batch_size": 20}, "smaller than one batch"),
])
def test_bad_input_is_a_one_line_error(changes, message):
    with pytest.raises(ConfigError, match=message) as raised:
        EXPERIMENT.config("quick", changes)
    assert "\n" not in str(raised.value)
