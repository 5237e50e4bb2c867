"""The doctor on training as it is really done: gradient accumulation, mixed precision with a
GradScaler, gradients cleared before `dr.step`, several param groups, torch.compile, and
DistributedDataParallel over two CPU processes (gloo). Each against a brute-force twin: the same
training done plainly."""

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gradfail.doctor import watch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 1))


def batch(step: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(size, 8, generator=torch.Generator().manual_seed(step))
    return x, x[:, :1].sign()


def plain(steps: int = 30, scaler=None, tell_scaler: bool = True, compiled: bool = False,
          clear_first: bool = True):
    """One backward per optimizer step; optionally through a GradScaler (fp32: it never skips)
    or torch.compile, and with the gradients cleared after the step instead of before."""
    model = mlp()
    run = torch.compile(model, backend="eager") if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(run, optimizer, live=False, scaler=scaler if tell_scaler else None) as dr:
        for step in range(steps):
            x, y = batch(step)
            if clear_first:
                optimizer.zero_grad()
            loss = nn.functional.mse_loss(run(x), y)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            if not clear_first:
                optimizer.zero_grad()
            dr.step(loss)
    return dr


def measured(dr, key: str) -> list[float]:
    return [r[key] for r in dr.history if key in r]


def test_accumulated_micro_batches_are_one_step_measured_as_the_whole_batch():
    """Four micro-batches of 16 (loss/4 each, dr.step after every one, the optimizer stepping
    and clearing after the fourth) against one batch of 64: the same steps, losses, gradient
    norms and gradient SNR, and no 'gradients accumulate'."""
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, optimizer, live=False) as dr:
        for step in range(30):
            x, y = batch(step)
            for k in range(4):
                rows = slice(16 * k, 16 * (k + 1))
                loss = nn.functional.mse_loss(model(x[rows]), y[rows])
                (loss / 4).backward()
                if k == 3:
                    optimizer.step()
                    optimizer.zero_grad()
                dr.step(loss)
    whole = plain()
    assert len(dr.history) == len(whole.history) == 30
    for key in ("loss", "grad_norm", "snr", "stale_grad_ratio"):
        assert measured(dr, key) == pytest.approx(measured(whole, key), rel=1e-4, abs=1e-9), key
    assert measured(dr, "batch") == measured(whole, "batch") == [64.0] * 3
    assert not dr.failures and measured(dr, "lambda_max")
    assert measured(dr, "stale_grad_ratio") == [0.0] * 3
    assert all(not c["raised"] for c in dr.timeline.checks)


def test_a_mixed_precision_scaler_gradients_unscaled_skipped_steps_no_steps():
    """fp32 through a GradScaler (2¹⁰, never overflowing): told of the scaler, the doctor
    reads the same SNR as without it; not told, the per-sample gradients still carry the scale.
    Then fp16 autocast from a scale of 2⁴⁰: every overflowing step is skipped (the scale
    halves), none is a step of the doctor's, and nothing reads as divergence."""
    never = dict(init_scale=2.0**10, growth_interval=10**6)
    base = plain()
    told = plain(scaler=torch.amp.GradScaler("cpu", **never))
    untold = plain(scaler=torch.amp.GradScaler("cpu", **never), tell_scaler=False)
    assert measured(told, "grad_norm") == pytest.approx(measured(base, "grad_norm"), rel=1e-5)
    assert measured(told, "snr") == pytest.approx(measured(base, "snr"), rel=1e-4)
    assert measured(untold, "snr") != pytest.approx(measured(base, "snr"), rel=1e-2)

    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    with watch(model, optimizer, live=False, scaler=scaler) as dr:
        for step in range(60):
            x, y = batch(step)
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = nn.functional.mse_loss(model(x).float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            dr.step(loss)
    skipped = round(math.log2(2.0**40 / scaler.get_scale()))
    assert skipped >= 10 and len(dr.history) == 60 - skipped
    assert all(math.isfinite(g) for g in measured(dr, "grad_norm"))
    assert dr.diagnose()[0].name != "diverged"


def test_gradients_cleared_before_dr_step_are_read_as_the_optimizer_stepped_with_them():
    cleared_after, before = plain(clear_first=False), plain()
    for key in ("grad_norm", "grad_cosine", "snr"):
        assert measured(cleared_after, key) == pytest.approx(measured(before, key)), key
    assert measured(before, "grad_cosine")


def test_the_stability_limit_reads_the_param_group_with_the_largest_step():
    model = mlp()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-5},
                                 {"params": model[2:].parameters(), "lr": 0.3,
                                  "momentum": 0.9}])
    with watch(model, optimizer, live=False) as dr:
        context = dr.context()
    assert (context.lr, context.momentum) == (0.3, 0.9)


def test_a_compiled_model_is_watched_outside_its_graph_and_never_crashes():
    compiled, eager = plain(compiled=True), plain()
    assert measured(compiled, "grad_norm") == pytest.approx(measured(eager, "grad_norm"),
                                                            rel=1e-5)
    assert not compiled.failures and "torch.compile" in compiled.coverage()["wrapper"]
    assert compiled.layer_names == eager.layer_names  # the layers inside, not `_orig_mod.…`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_ddp_rank_0_reports_the_reduced_gradient_and_both_processes_stop_together(tmp_path):
    """Two processes, each with half of every batch: rank 0's doctor reads the gradient of the
    whole batch (the average DDP reduced), its SNR counts both halves' samples; rank 1's
    measures nothing; abort_on stops both at the same step (no process left waiting)."""
    script, port = Path(__file__).with_name("ddp_training.py"), free_port()
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    runs = [subprocess.Popen([sys.executable, str(script), str(r), str(port), str(outs[r])])
            for r in range(2)]
    assert [run.wait(timeout=280) for run in runs] == [0, 0]
    zero, one = (json.loads(out.read_text()) for out in outs)
    assert zero["stopped"] == one["stopped"] and zero["stopped"]["verdict"] == \
        "vanishing gradients"
    assert one["history"] == [] and zero["history"]
    sys.path.insert(0, str(script.parent))
    try:
        from ddp_training import batch as whole_batch
        from ddp_training import model as twin
    finally:
        sys.path.remove(str(script.parent))
    single = twin()  # the first step's gradient over both halves, in one process
    x, y = whole_batch(0)
    nn.functional.mse_loss(single(x), y).backward()
    reduced = torch.cat([p.grad.reshape(-1) for p in single.parameters()]).norm().item()
    first = zero["history"][0]
    assert first["grad_norm"] == pytest.approx(reduced, rel=1e-4)
    assert first["grad_norm"] == pytest.approx(zero["grad_norms"]["0"], rel=1e-5)
    assert [r["batch"] for r in zero["history"] if "batch" in r][0] == 64.0
    assert "DistributedDataParallel over 2 processes" in zero["coverage"]["wrapper"]
