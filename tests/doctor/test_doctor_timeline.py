"""The doctor's timeline (gradfail.doctor.timeline): the panels a history's measurements call for
and each verdict's onset on every one of them; the figure written by `Doctor.plot`, embedded in
the page of `gradfail doctor --html` and in the report's doctor sessions."""

from __future__ import annotations

import base64
import json
import re

import matplotlib.image
import matplotlib.pyplot as plt
import pytest
import torch
from markupsafe import escape
from torch import nn

from conftest import gradfail_cli
from gradfail.doctor import DoctorError, Verdict, watch
from gradfail.doctor.timeline import figure
from gradfail.store import Store

LAYERS = [f"block{i}" for i in range(10)]


def constructed_history(curvature: bool = False) -> list[dict]:
    """100 steps: the loss at each, and every 10th step ten layers' gradient norms, two layers'
    update ratios, one saturating and one one-sided activation (lr·λ_max every 50th if asked);
    no gradient noise and no cosine."""
    history = []
    for step in range(100):
        record = {"step": step, "loss": 2.0 / (1 + step)}
        if step % 10 == 0:
            record |= {f"grad_norm/{name}": 10.0 ** -i for i, name in enumerate(LAYERS)}
            record |= {"update_ratio/block0": 1e-3, "update_ratio/block9": 1e-5,
                       "saturated/1": min(1.0, step / 50), "dead/3": 0.2}
        if curvature and step % 50 == 0:
            record |= {"lr_lambda_max": 1.5 + step / 50, "stability_limit": 2.0}
        history.append(record)
    return history


VERDICTS = [Verdict("saturated activations", 0.9, 30, "saturated", "Xavier init"),
            {"name": "vanishing gradients", "confidence": 0.7, "onset_step": 60,
             "evidence": "faded", "remedy": "ReLU"},
            {"name": "dead units", "confidence": 0.6, "onset_step": 30, "evidence": "dead",
             "remedy": "LeakyReLU"},
            Verdict("healthy", 0.5, None, "nothing persisted", "nothing to fix")]


def onset_lines(ax) -> list[tuple[float, str]]:
    return [(line.get_xdata()[0], line.get_label()) for line in ax.lines
            if line.get_gid() == "onset"]


def legend(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_the_panels_are_those_measured_with_every_onset_on_each():
    fig = figure(constructed_history(), VERDICTS, "gradfail doctor: Net")
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert titles == ["loss", "gradient norm per layer", "update / weight per layer",
                          "units out of action"]  # no noise, cosine or curvature measured
        onsets = [(30, "saturated activations, dead units"), (60, "vanishing gradients")]
        for ax in fig.axes:
            assert onset_lines(ax) == onsets  # "healthy" has no onset: no line
            assert [t.get_text().split("\n") for t in ax.texts] == [
                names.split(", ") for _, names in onsets]
        loss, grads, updates, units = fig.axes
        assert loss.get_yscale() == "log" and grads.get_yscale() == "log"
        data = [line for line in grads.lines if line.get_gid() != "onset"]
        assert len(data) == len(LAYERS) and list(data[0].get_xdata()) == list(range(0, 100, 10))
        assert legend(grads) == ["layer block0", "layer block9"]  # ten lines: first and last
        assert legend(updates) == ["layer block0", "layer block9"]
        assert legend(units) == ["saturated 1", "dead 3"] and units.get_ylim()[1] <= 1.05
        assert fig.axes[-1].get_xlabel() == "step" and fig._suptitle.get_text().endswith("Net")
    finally:
        plt.close(fig)


def test_curvature_is_drawn_against_its_stability_limit_only_when_measured():
    fig = figure(constructed_history(curvature=True), [])
    try:
        curvature = fig.axes[-1]
        assert curvature.get_title() == "curvature" and onset_lines(curvature) == []
        assert legend(curvature) == ["lr · λ_max", "stability limit 2(1 + β)"]
        assert [list(line.get_xdata()) for line in curvature.lines] == [[0, 50], [0, 50]]
    finally:
        plt.close(fig)
    assert figure([], VERDICTS) is None  # nothing measured: no figure


def test_doctor_plot_writes_a_figure_that_reads_back(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, optimizer, nn.MSELoss(), live=False, every=5, check_every=5) as dr:
        with pytest.raises(DoctorError, match="nothing to plot"):
            dr.plot(tmp_path / "early.png")
        for _ in range(30):
            x = torch.randn(32, 4)
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), x[:, :1])
            loss.backward()
            optimizer.step()
            dr.step(loss, x, x[:, :1])
    written = dr.plot(tmp_path / "figures" / "timeline")  # no suffix: a PNG
    assert written == tmp_path / "figures" / "timeline.png"
    image = matplotlib.image.imread(written)
    assert image.ndim == 3 and image.shape[0] > image.shape[1] > 500  # stacked panels
    assert dr.plot(tmp_path / "timeline.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(DoctorError, match="cannot write the doctor's figure") as raised:
        dr.plot(tmp_path / "timeline.nosuchformat")
    assert "\n" not in str(raised.value)


SCRIPT = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), *[m for _ in range(8) for m in
                      (nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for step in range(60):
    x = torch.randn(64, 8)
    optimizer.zero_grad()
    loss = (model(x).squeeze(-1) - x[:, 0].sign()).square().mean()
    loss.backward()
    optimizer.step()
print("the script ran")
"""


def test_the_html_page_embeds_the_figure_and_the_verdicts_and_nothing_external(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "page"
    done = gradfail_cli("doctor", "--json", "--html", str(out), "--store",
                        str(tmp_path / "s.sqlite"), str(script))
    assert done.returncode == 0, done.stderr
    doctor, = json.loads(done.stdout)["doctors"]  # the page's path went to stderr
    assert f"doctor page: {out / 'index.html'}" in done.stderr
    html = (out / "index.html").read_text()
    assert not re.search(r"https?://", html) and "<script" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG\r\n\x1a\n")
    for verdict in doctor["verdicts"]:
        for field in ("name", "evidence", "remedy"):
            assert str(escape(verdict[field])) in html, field


def test_html_into_an_existing_file_is_a_one_line_error_before_the_script_runs(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    taken = tmp_path / "page"
    taken.write_text("a file, not a folder")
    done = gradfail_cli("doctor", "--html", str(taken), "--store", str(tmp_path / "s.sqlite"),
                        str(script))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("gradfail: error: cannot write the doctor's page into")
    assert "it is a file" in done.stderr and "the script ran" not in done.stdout


def test_a_stored_session_is_shown_in_the_report_with_its_figure(tmp_path):
    from gradfail.report import write_report

    store = Store(tmp_path / "s.sqlite")
    document = {"model": "Net", "optimizer": "SGD", "steps": 100, "coverage": {},
                "history": [{"step": 75, "raised": ["vanishing gradients"]}],
                "verdicts": [VERDICTS[1]]}
    store.save_doctor_session("Net", document, constructed_history(), {"torch": "x"})
    store.save_doctor_session("Older", document, [], {"torch": "x"})  # stored with no history
    html = write_report(store, tmp_path / "report").read_text()
    doctors = html[html.index('id="doctor-sessions"'):]
    first, second = doctors.split('id="doctor-session-2"')
    assert first.count('<img src="data:image/png;base64,') == 1
    assert "<img" not in second and "ReLU" in second  # its verdicts still, with no figure
