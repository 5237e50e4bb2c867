"""The workload the parameter server trains: an MLP as one flat parameter row per seed.

Two problems: scikit-learn's digits (64-hidden-10, cross-entropy, scored by test accuracy) and a
synthetic teacher-student regression (inputs-hidden-1, squared error, scored by the test MSE over
the targets' variance). `Task` gives the simulator (`simulator`) and the Ray workers
(`ray_server`) seeded minibatch gradients, and a server (`ServerLogic`) starting at the task's
initial parameters; `TaskGradient` builds a task's gradient in a worker process. Tasks built with
the same key draw the same minibatch stream, in the order their gradients are asked for: arms
compared on one key see the same data in the same order (paired).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from gradfail.data.digits import digits
from gradfail.distributed.server import GradientFn, ServerLogic
from gradfail.experiment import RunContext
from gradfail.nets.batched import mlp_forward, mlp_parameters


class TaskConfig(Protocol):
    """The settings a task reads (an experiment's config has them among others)."""

    hidden: int  # MLP hidden width
    batch_size: int  # per-worker minibatch
    dc_lambda: float  # DC-ASGD-c's constant λ, for the server
    dc_lambda0: float  # DC-ASGD-a's λ₀
    dc_momentum: float  # DC-ASGD-a's running-mean factor m
    teacher_inputs: int  # teacher-student input dimension


def teacher_data(config: TaskConfig, ctx: RunContext) -> dict:
    """The synthetic teacher-student task: x ~ N(0, I) in `teacher_inputs` dimensions, targets
    from a random He-initialised ReLU teacher (inputs-32-1), scaled to unit variance; 2,000
    training and 1,000 test points."""
    generator = ctx.generator("teacher")
    teacher = mlp_parameters(1, [config.teacher_inputs, 32, 1], generator, ctx.device)
    x = torch.randn(1, 3_000, config.teacher_inputs, generator=generator, device=ctx.device)
    y = mlp_forward(teacher, x)[0, :, 0]
    y = (y - y.mean()) / y.std()
    return {"train_x": x[0, :2_000], "train_y": y[:2_000], "test_x": x[0, 2_000:],
            "test_y": y[2_000:]}


class Task:
    """A problem's data, the MLP's flat layout, seeded minibatch gradients and the test score:
    accuracy on digits (64-hidden-10, cross-entropy), or the test MSE over the targets'
    variance on the teacher-student task (inputs-hidden-1, squared error)."""

    def __init__(self, config: TaskConfig, ctx: RunContext, key: str, problem: str = "digits"):
        self.problem = problem
        if problem == "digits":
            self.data = digits(ctx.generator("digits"), ctx.device)
            self.sizes = [64, config.hidden, 10]
        else:
            self.data = teacher_data(config, ctx)
            self.sizes = [config.teacher_inputs, config.hidden, 1]
        init = mlp_parameters(ctx.n_seeds, self.sizes, ctx.generator("init"), ctx.device)
        self.shapes = [p.shape[1:] for p in init]
        self.initial = torch.cat([p.reshape(ctx.n_seeds, -1) for p in init], 1)
        self.batches = ctx.generator("batches", key)
        self.config, self.n_seeds = config, ctx.n_seeds

    @property
    def metric(self) -> str:
        return "accuracy" if self.problem == "digits" else "test_mse"

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        pieces = flat.split([math.prod(s) for s in self.shapes], dim=1)
        return [p.reshape(self.n_seeds, *s) for p, s in zip(pieces, self.shapes, strict=True)]

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.problem == "digits":
            return torch.nn.functional.cross_entropy(outputs.transpose(1, 2), targets)
        return (outputs[..., 0] - targets).square().mean()

    def gradient(self, params: torch.Tensor, worker: int, seq: int) -> torch.Tensor:
        """∇ of each seed's mean loss on its own minibatch (drawn in event order)."""
        flat = params.detach().requires_grad_(True)
        pick = torch.randint(len(self.data["train_y"]), (self.n_seeds, self.config.batch_size),
                             generator=self.batches, device=flat.device)
        outputs = mlp_forward(self.unflatten(flat), self.data["train_x"][pick])
        loss = self.loss(outputs, self.data["train_y"][pick])
        return torch.autograd.grad(loss * self.n_seeds, flat)[0]

    def score(self, params: torch.Tensor) -> np.ndarray:
        """Per seed: test accuracy (0.1, chance, once diverged), or test MSE / Var(y) (capped
        at 1e3, also when diverged)."""
        with torch.no_grad():
            outputs = mlp_forward(self.unflatten(params),
                                  self.data["test_x"].expand(self.n_seeds, -1, -1))
            finite = torch.isfinite(params).all(1).cpu().numpy()
            if self.problem == "digits":
                right = outputs.argmax(-1) == self.data["test_y"]
                return np.where(finite, right.float().mean(1).cpu().numpy(), 0.1)
            mse = (outputs[..., 0] - self.data["test_y"]).square().mean(1).cpu().numpy()
            return np.where(finite & np.isfinite(mse), np.minimum(mse, 1e3), 1e3)

    def server(self, rule: str, lr: float, history: int = 64) -> ServerLogic:
        """A server at the task's initial parameters; DC-ASGD-a (`dc-a`) gets λ₀, DC-ASGD-c
        (`dc`) its constant λ."""
        dc_lambda = self.config.dc_lambda0 if rule == "dc-a" else self.config.dc_lambda
        return ServerLogic(self.initial, rule, lr, dc_lambda, history,
                           dc_momentum=self.config.dc_momentum)


@dataclass(frozen=True)
class TaskGradient:
    """A picklable gradient factory for real workers (`ray_server`): each worker process builds
    its own Task, drawing its own minibatches."""

    config: TaskConfig
    seed: int
    n_seeds: int
    problem: str = "digits"

    def task(self, worker: int = 0) -> Task:
        ctx = RunContext(torch.device("cpu"), self.seed, self.n_seeds)
        return Task(self.config, ctx, f"worker {worker}", self.problem)

    def __call__(self, worker: int = 0) -> GradientFn:
        return self.task(worker).gradient


def curve_logger(task: Task, every: int, into: dict) -> Callable[[ServerLogic, float], None]:
    """An `on_update` hook: every `every` versions, the clock and each seed's test score, appended
    to `into["time"]` and `into["accuracy"]`."""
    def log(server: ServerLogic, clock: float) -> None:
        if server.version % every == 0:
            into.setdefault("time", []).append(clock)
            into.setdefault("accuracy", []).append(task.score(server.params))
    return log
