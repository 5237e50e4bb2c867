"""Overhead of the doctor per training step, measured side by side in one process, and Cockpit's
economy preset on the same models.

Three models at batch 128 with plain SGD, on random data: a small MLP (784-256-10), a small
CNN (two 3×3 convolutions on 28×28), and DeepOBS's mnist_mlp (784-1000-500-100-10), on which
Cockpit published its CPU overhead (63× for economy; cifar10_3c3d, its other CPU problem, takes
too long here under Cockpit). Each is timed bare, with the doctor's defaults (every quantity
every 10th step, curvature on 32 rows every 100th, nothing measured in between), with the
cheap set alone every step (gradient, weight and update norms and the stale-gradient check:
target ≤ 1.3×), with curvature alone every 50th step (target ≤ 1.2× amortised), with every
quantity every step and no curvature, under an overhead budget of 0.1 (one doctor across its
blocks, on its own copy of the model, so that its plan settles; its blocks are 500 steps, the
longest spacing it may choose, so that each holds its rare costly steps; it prints the schedule
it chose and the overhead its own cost model gives), and, where cockpit-for-pytorch is installed (`make bench-cockpit`: its own
environment), with Cockpit's economy preset every step (Schneider et al. 2021; the anchor's
"every 1" column). Blocks of 100 steps (10 for Cockpit, whose steps cost the same
every step) alternate between the modes; the median block gives the time per step, and every
ratio is to the bare step.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gradfail.doctor import Doctor

BATCH, STEPS, COCKPIT_STEPS, REPEATS = 128, 100, 10, 3
BUDGET_BLOCKS = 5  # the budget's blocks span its widest curvature spacing (500 steps)


def mnist_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 500),
                         nn.ReLU(), nn.Linear(500, 100), nn.ReLU(), nn.Linear(100, 10))


MODELS = {
    "MLP 784-256-10": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                                             nn.Linear(256, 10)), (1, 28, 28)),
    "CNN 2×conv3×3": (lambda: nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10)), (1, 28, 28)),
    "DeepOBS mnist_mlp": (mnist_mlp, (1, 28, 28)),
}
DEFAULTS, EVERY_STEP = "doctor defaults (every 10, curvature every 100)", "doctor every step"
CHEAP, CURVATURE, BUDGET = ("cheap set every step", "curvature every 50th step",
                            "overhead budget 0.1")
NOTHING = dict(every=None, curvature_every=None)
DOCTOR_MODES = {DEFAULTS: {}, CHEAP: NOTHING | {"schedule": {"layer_gradients": 1,
                                                             "stale_gradients": 1}},
                CURVATURE: NOTHING | {"curvature_every": 50},
                EVERY_STEP: dict(every=1, curvature_every=None)}
TARGETS = {CHEAP: 1.3, CURVATURE: 1.2, BUDGET: 1.1}  # the targets, ratios to bare


def doctor_block(model: nn.Module, data: list, options: dict | None,
                 kept: Doctor | None = None) -> float:
    """Seconds per step of plain SGD on `data`, under a doctor with `options` when given (or
    under `kept`, a doctor that lives across blocks, with its own model and optimizer)."""
    loss_fn = nn.functional.cross_entropy
    optimizer = kept.optimizer if kept else torch.optim.SGD(model.parameters(), lr=0.01)
    doctor = kept or (options is not None and Doctor(model, optimizer, loss_fn, live=False,
                                                     **options))
    start = time.perf_counter()
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if doctor:
            doctor.step(loss, x, y)
    elapsed = (time.perf_counter() - start) / len(data)
    if doctor and not kept:
        doctor.close()
    return elapsed


def cockpit_block(model: nn.Module, data: list) -> float:
    """Seconds per step with Cockpit's economy preset tracked every step, as its examples
    use it (a BackPACK-extended copy of the model and loss, the individual losses passed)."""
    from backpack import extend
    from cockpit import Cockpit
    from cockpit.utils.configuration import configuration

    model, loss_fn = extend(model), extend(nn.CrossEntropyLoss())
    individual = nn.CrossEntropyLoss(reduction="none")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    cockpit = Cockpit(model.parameters(), quantities=configuration("economy"))
    start = time.perf_counter()
    for step, (x, y) in enumerate(data):
        optimizer.zero_grad()
        out = model(x)
        loss, losses = loss_fn(out, y), individual(out, y)
        with cockpit(step, info={"batch_size": len(x), "individual_losses": losses,
                                 "loss": loss, "optimizer": optimizer}):
            loss.backward(create_graph=cockpit.create_graph(step))
        optimizer.step()
    return (time.perf_counter() - start) / len(data)


def has_cockpit() -> bool:
    try:
        import cockpit  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")  # cockpit's pkg_resources and BackPACK's notices
    torch.manual_seed(0)
    cockpit = has_cockpit()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"blocks of {STEPS} steps × {REPEATS}; Cockpit: "
          f"{'installed' if cockpit else 'not installed (make bench-cockpit)'}")
    results = {}
    for name, (build, shape) in MODELS.items():
        model = build()
        cockpit_model = copy.deepcopy(model) if cockpit else None
        data = [(torch.randn(BATCH, *shape), torch.randint(10, (BATCH,)))
                for _ in range(STEPS)]
        modes = {"bare": lambda: doctor_block(model, data, None)}
        modes |= {mode: (lambda o=options: doctor_block(model, data, o))
                  for mode, options in DOCTOR_MODES.items()}
        budgeted = copy.deepcopy(model)
        kept = Doctor(budgeted, torch.optim.SGD(budgeted.parameters(), lr=0.01),
                      nn.functional.cross_entropy, live=False, overhead=0.1)
        modes[BUDGET] = lambda: doctor_block(budgeted, data * BUDGET_BLOCKS, None, kept)
        if cockpit:
            modes["cockpit economy"] = lambda: cockpit_block(cockpit_model,
                                                             data[:COCKPIT_STEPS])
        for run in modes.values():  # warm-up
            run()
        times = {mode: [] for mode in modes}
        for _ in range(REPEATS):
            for mode, run in modes.items():
                times[mode].append(run())
        bare = float(np.median(times["bare"]))
        ratios = {mode: float(np.median(t)) / bare for mode, t in times.items()}
        plan = kept.coverage()["budget"]
        results[name] = {"bare_ms": bare * 1e3} | ratios | {"budget": plan}
        line = "; ".join(f"{mode} ×{ratio:.2f}" + (
            f" (target ≤{TARGETS[mode]}: {'met' if ratio <= TARGETS[mode] else 'missed'})"
            if mode in TARGETS else "") for mode, ratio in ratios.items() if mode != "bare")
        line += (f"; the budget chose every {plan['every']} (its own measure: overhead "
                 f"{plan['overhead']:.2f})")
        if cockpit:
            line += (f"; doctor every step / cockpit economy = "
                     f"{ratios[EVERY_STEP] / ratios['cockpit economy']:.2f}")
        print(f"{name}: bare {bare * 1e3:.2f} ms/step; {line}", flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "doctor_overhead.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
