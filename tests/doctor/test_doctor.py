"""The doctor: every quantity against a brute-force reference, any module without a crash, the
zoo's clearest cases named right, and one-line errors for what it cannot watch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from conftest import gradfail_cli
from gradfail.doctor import VERDICTS, Doctor, DoctorError, curvature, watch, zoo
from gradfail.doctor.per_sample import GradientCapture, functional_norms
from gradfail.doctor.quantities import GradientNoise
from gradfail.store import Store


def loop_norms(model: nn.Module, loss_fn, x, y) -> torch.Tensor:
    """Per-sample squared gradient norms by a Python loop over the batch."""
    found = []
    for i in range(len(x)):
        model.zero_grad()
        loss_fn(model(x[i:i + 1]), y[i:i + 1]).backward()
        found.append(sum(p.grad.square().sum() for p in model.parameters()))
    return torch.stack(found)


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner, self.outer = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.outer(torch.tanh(self.inner(x))).mean(1)  # (B, T, 3) -> (B, 2)


MODELS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)),
            (6, 5)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.Tanh(),
                                     nn.Flatten(), nn.Linear(48, 3)), (6, 2, 8, 8)),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, dilation=2), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(24, 3)), (6, 2, 10)),
    "grouped conv3d": (lambda: nn.Sequential(nn.Conv3d(2, 4, 3, padding=1, groups=2),
                                             nn.GELU(), nn.Flatten(), nn.Linear(4 * 64, 3)),
                       (6, 2, 4, 4, 4)),
    "sequence": (lambda: Sequence(), (6, 9, 3)),
}


@pytest.mark.parametrize("kind", MODELS)
def test_hooked_per_sample_norms_match_a_python_loop(kind):
    torch.manual_seed(0)
    build, shape = MODELS[kind]
    model, x = build(), torch.randn(shape)
    y = torch.randint(2, (shape[0],))
    loss_fn = nn.functional.cross_entropy
    capture = GradientCapture(model)
    loss_fn(model(x), y).backward()
    hooked, layers, batch = capture.norms()
    assert batch == shape[0]
    torch.testing.assert_close(capture.norms(rows=3)[0], hooked[:3])  # a part of the batch
    assert len(layers) == len(capture.layers)
    reference = loop_norms(model, loss_fn, x, y)
    torch.testing.assert_close(hooked * shape[0] ** 2, reference, rtol=1e-4, atol=1e-6)
    functional, _ = functional_norms(model, loss_fn, x, y)
    torch.testing.assert_close(functional, reference, rtol=1e-4, atol=1e-6)


def test_the_noise_statistics_are_the_unbiased_covariance_trace_and_signal():
    grads = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)) + 0.3
    found = GradientNoise.statistics(float(grads.square().sum(1).mean()),
                                     float(grads.mean(0).square().sum()), 50)
    trace = torch.cov(grads.T).trace()  # unbiased, divides by B − 1
    signal = grads.mean(0).square().sum() - trace / 50
    assert found["snr"] == pytest.approx(float(signal / trace), rel=1e-4)
    assert found["noise_scale"] == pytest.approx(float(trace / signal), rel=1e-4)
    assert found["batch_snr"] == pytest.approx(50 * found["snr"])


def small_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = torch.randn(20, 3), torch.randn(20, 2)
    params = list(model.parameters())
    shapes = [p.shape for p in params]

    def of_flat(flat):
        weights, start = {}, 0
        for (name, _), shape in zip(model.named_parameters(), shapes, strict=True):
            weights[name] = flat[start:start + shape.numel()].view(shape)
            start += shape.numel()
        return nn.functional.mse_loss(torch.func.functional_call(model, weights, (x,)), y)
    exact = torch.autograd.functional.hessian(of_flat, torch.cat([p.detach().flatten()
                                                                  for p in params]))
    operator = curvature.Hessian(lambda: nn.functional.mse_loss(model(x), y), params)
    return operator, exact


def test_lanczos_finds_both_ends_of_the_exact_hessian_spectrum():
    operator, exact = small_hessian()
    values = torch.linalg.eigvalsh(exact)
    assert values[0] < 0  # negative curvature is present, and must be seen
    start = curvature.rademacher(operator, torch.Generator().manual_seed(0))
    low, high, first = curvature.lanczos(operator, operator.dim, start)
    assert low == pytest.approx(float(values[0]), rel=1e-3)
    assert high == pytest.approx(float(values[-1]), rel=1e-3)
    assert first == pytest.approx(float(start @ exact.double().float() @ start), rel=1e-3)
    budget_low, budget_high, _ = curvature.lanczos(operator, 10, start)
    assert values[0] - 1e-5 <= budget_low and budget_high <= values[-1] + 1e-5  # Ritz bounds
    assert budget_high == pytest.approx(float(values[-1]), rel=1e-2)


class Diagonal:
    """A known spectrum: three separated outliers over a bulk in [0, 1), whose Ritz values
    converge within a few steps, the case where Lanczos vectors lose orthogonality."""

    def __init__(self, size: int = 1000):
        self.values = torch.cat([torch.tensor([100.0, 60.0, 30.0]), torch.rand(size - 3,
                                 generator=torch.Generator().manual_seed(0))])
        self.dim = size

    def __matmul__(self, vector):
        return self.values * vector

    def product(self, vector, out):
        return torch.mul(self.values, vector, out=out)


def test_orthogonality_estimate_tracks_the_drift_of_plain_lanczos_vectors():
    operator, eps = Diagonal(), torch.finfo(torch.float32).eps
    estimate = curvature.Orthogonality(eps)
    start = torch.randn(operator.dim, generator=torch.Generator().manual_seed(1))
    basis, alphas, betas = [start / start.norm()], [], []
    for j in range(12):  # no reorthogonalisation: the drift is left to grow
        w = operator @ basis[j]
        alphas.append(float(w @ basis[j]))
        w = w - alphas[-1] * basis[j] - (betas[-1] * basis[j - 1] if j else 0)
        estimate.extend(alphas, [*betas, float(w.norm())])
        betas.append(float(w.norm()))
        basis.append(w / betas[-1])
        true = float((torch.stack(basis[:-2]) @ basis[-1]).abs().max()) if j else 0.0
        guess = float(abs(estimate.rows[-1][:-2]).max()) if j else 0.0
        if true < 1e-2:  # before orthogonality is lost, the estimate follows the drift
            assert true / 3 <= guess <= 100 * true + 1e-5
    assert true > math.sqrt(eps)  # the case does drift past the reorthogonalisation level


def test_partial_reorthogonalisation_pays_only_where_the_vectors_drift(monkeypatch):
    paid = []
    monkeypatch.setattr(curvature.Orthogonality, "reset", lambda self: paid.append(1))
    operator = Diagonal()
    start = torch.randn(operator.dim, generator=torch.Generator().manual_seed(1))
    low, high, _ = curvature.lanczos(operator, 60, start)
    assert len(paid) > 0
    assert high == pytest.approx(100.0, rel=1e-6)  # no ghost beyond the spectrum either way
    assert float(operator.values.min()) - 1e-6 <= low < 2e-3
    paid.clear()
    flat = Diagonal()
    flat.values = torch.linspace(1.0, 2.0, flat.dim)  # no outlier converges in 10 steps
    curvature.lanczos(flat, 10, start)
    assert paid == []


def test_hutchinson_brackets_the_exact_trace():
    operator, exact = small_hessian()
    trace, error = curvature.hutchinson_trace(operator, 400, torch.Generator().manual_seed(0))
    assert abs(trace - float(exact.trace())) < 4 * error
    assert error < 0.2 * abs(float(exact.trace()))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.norm = nn.LayerNorm(8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.batch_norm = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        h = self.norm(self.embed(tokens))
        h = h + self.attention(h, h, h)[0]
        h = self.rnn(h)[0][:, -1]
        return self.head(torch.relu(self.batch_norm(h)))


def test_any_module_is_watched_without_a_crash():
    torch.manual_seed(0)
    model = Attention()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.functional.cross_entropy
    with watch(model, optimizer, loss_fn, curvature_every=2, every=1) as dr:
        for _ in range(5):  # curvature at steps 0, 2, 4
            x, y = torch.randint(10, (16, 5)), torch.randint(3, (16,))
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            record = dr.step(loss, x, y)
    assert record["grad_norm"] > 0 and math.isfinite(record["lambda_max"])
    assert 0 < record["noise_coverage"] <= 1
    assert any(k.startswith("update_ratio/") for k in record)
    assert dr.diagnose()[0].name in VERDICTS and not dr.failures


def test_the_zoo_is_held_out_by_configuration():
    splits = {c.split for c in zoo.CASES.values()}
    assert splits == {"dev", "heldout"}
    assert {c.label for c in zoo.CASES.values()} <= set(VERDICTS)
    for split in splits:  # each split has failures and healthy twins
        labels = {c.label for c in zoo.CASES.values() if c.split == split}
        assert "healthy" in labels and len(labels) >= 4


def test_a_model_with_nothing_to_train_is_a_one_line_error():
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(DoctorError, match="no parameters that require grad") as raised:
        Doctor(frozen)
    assert "\n" not in str(raised.value)


def test_a_loss_that_is_not_a_scalar_is_a_one_line_error():
    model = nn.Linear(2, 1)
    with watch(model) as dr, pytest.raises(DoctorError, match="must be a scalar") as raised:
        dr.step(model(torch.randn(4, 2)))
    assert "\n" not in str(raised.value)


SCRIPT = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), *[m for _ in range(10) for m in
                      (nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(120):
    x = torch.randn(64, 8)
    optimizer.zero_grad()
    loss = (model(x).squeeze(-1) - x[:, 0].sign()).square().mean()
    loss.backward()
    optimizer.step()
print("the script's own output")
"""


def test_the_cli_prints_one_json_document_and_the_script_speaks_on_stderr(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = gradfail_cli("doctor", "--json", "--store", str(tmp_path / "s.sqlite"), str(script))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)  # exactly one document: anything else would not parse
    assert "the script's own output" in done.stderr
    doctor, = found["doctors"]
    assert {"model", "optimizer", "steps", "verdicts", "coverage", "history"} <= set(doctor)
    assert doctor["optimizer"] == "SGD" and doctor["steps"] == 119  # from the second step
    confidences = [v["confidence"] for v in doctor["verdicts"]]
    assert confidences == sorted(confidences, reverse=True)
    for verdict in doctor["verdicts"]:
        assert set(verdict) == {"name", "confidence", "onset_step", "evidence", "remedy",
                                "layers"}
    assert doctor["coverage"]["curvature"].startswith("measured")  # the loss, taped
    assert [c["step"] for c in doctor["history"]][:2] == [0, 25]
    assert Store(tmp_path / "s.sqlite").doctor_sessions()[0]["document"] == doctor


def test_a_missing_script_and_a_raising_one_are_one_line_errors(tmp_path):
    done = gradfail_cli("doctor", str(tmp_path / "absent.py"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "no such script" in done.stderr
    script = tmp_path / "broken.py"
    script.write_text("raise ValueError('the user broke it')\n")
    done = gradfail_cli("doctor", str(script))
    assert done.returncode == 2 and "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"gradfail: error: {script} raised ValueError: the user broke it")


TWO_MODELS = """
import torch, torch.nn.functional as F
from torch import nn
torch.manual_seed(0)
teacher = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
student = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
slow = torch.optim.SGD(teacher.parameters(), lr=0.05)
fast = torch.optim.Adam(student.parameters(), lr=1e-3)
for step in range(60):
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    slow.zero_grad(); fast.zero_grad()
    guide = teacher(x)
    taught = student(x)
    loss = F.cross_entropy(guide, y) + F.cross_entropy(taught, y) + F.kl_div(
        F.log_softmax(taught, -1), F.softmax(guide.detach(), -1), reduction="batchmean")
    loss.backward()
    slow.step(); fast.step()
"""


def test_two_models_trained_on_one_summed_loss_each_get_a_doctor_that_sees_every_step(tmp_path):
    """Both optimizers step after one backward: each doctor is judged by that loss, and one
    doctor's measurements (a replayed loss) are not recorded by the other's open trace."""
    script = tmp_path / "distil.py"
    script.write_text(TWO_MODELS)
    done = subprocess.run([sys.executable, "-c", "import sys; from gradfail.doctor.script "
                           "import run_script; doctors, _ = run_script(sys.argv[1], []); "
                           "print([(d.name, len(d.history)) for d in doctors])", str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('Sequential', 59), ('Sequential', 59)]"
