"""Tied vs untied weights: a locally connected layer against a convolution, memory against data.

The "cat network" (Le et al. 2012) used locally connected layers, a different filter at every
position, where a convolution ties one filter across positions. The notes ask what the tying
buys. Measured here on the §3 line images (28×28, label: the line's angle below π/2; a line
can be anywhere, so the task is translation invariant): one 5×5 layer of 8 channels, locally
connected (unfold + einsum, no loop over positions) or convolutional, then ReLU and a linear
read-out; the parameters, the memory one Adam step holds (parameters, gradients and Adam's
state counted from tensor sizes, apart from the activations saved for the backward pass, counted
by autograd's saved-tensor hooks; in a fresh spawned process on one thread), the time of a
forward and backward pass, and the test accuracy against the number of training images.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.statistics import Interval, mean_interval
from gradfail.maths.timing import median_seconds
from gradfail.nets import convnet
from gradfail.plotting import band, log_ticks, new_figure

LAYERS = ("convolution", "locally connected")


class SharingConfig(Config):
    """Sizes are ours; the images and labels are the lines of Shalev-Shwartz et al. 2017, §3.1."""

    size: int = Field(28, ge=12, description="image side (lines need > 10 pixels)")
    kernel: PositiveInt = Field(5)
    channels: PositiveInt = Field(8)
    samples: list[PositiveInt] = Field([32, 64, 128, 256, 512, 1_024, 2_048], min_length=2)
    test_samples: PositiveInt = Field(2_000)
    steps: PositiveInt = Field(800)
    batch_size: PositiveInt = Field(32)
    lr: PositiveFloat = Field(1e-3, description="Adam")
    memory_batch: PositiveInt = Field(256, description="images in the measured Adam step")

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, kernel: int, info) -> int:
        if kernel >= info.data.get("size", 28):
            raise ValueError("the kernel must be smaller than the image")
        return kernel


# --------------------------------------------------------------------------------------------
# The two layers (gradfail.nets.convnet): one filter bank, or one per output position.


def positions(config: SharingConfig) -> int:
    return convnet.positions(config.size, config.kernel)


def parameters(layer: str, config: SharingConfig, n_seeds: int, generator: torch.Generator
               ) -> list[torch.Tensor]:
    return convnet.parameters(n_seeds, config.size, config.kernel, config.channels, 2,
                              generator, untied=layer == "locally connected")


# --------------------------------------------------------------------------------------------
# Cost: parameters, the memory of one training step (counted), time.


def training_memory(params: list[torch.Tensor], loss: Callable[[], torch.Tensor]
                    ) -> dict[str, int]:
    """The bytes one Adam step holds, counted from tensor sizes (deterministic): the parameters,
    their gradients, Adam's state, and the activations autograd saves for the backward pass
    (each distinct storage packed by `saved_tensors_hooks` once, the parameters' own left out:
    they are counted already)."""
    own = {p.untyped_storage().data_ptr() for p in params}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    adam = torch.optim.Adam(params)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        value = loss()
    value.backward()
    adam.step()

    def nbytes(tensors) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)
    return {"parameters": nbytes(params), "gradients": nbytes(p.grad for p in params),
            "optimizer": nbytes(t for state in adam.state.values() for t in state.values()),
            "activations": sum(saved.values())}


def measure_cost(layer: str, config: SharingConfig) -> dict:
    """One layer's parameters, training-step memory and median time of a forward and backward
    pass of `memory_batch` images."""
    torch.set_num_threads(1)
    params = [p.requires_grad_(True) for p in parameters(layer, config, 1,
                                                         torch.Generator().manual_seed(0))]
    x = torch.rand(1, config.memory_batch, config.size, config.size,
                   generator=torch.Generator().manual_seed(1))

    def loss() -> torch.Tensor:
        return convnet.forward(params, x, config.kernel).square().sum()
    counted = training_memory(params, loss)
    return {"layer": layer, "layer_parameters": params[0].numel() + params[1].numel(),
            "parameters": sum(p.numel() for p in params), "bytes": counted,
            "seconds": median_seconds(lambda: loss().backward(), 5)}


def measure_costs(config: SharingConfig) -> dict:
    """Both layers' costs, measured in a fresh spawned process on one thread, so that nothing
    the parent allocated or timed can leak into them."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return {"costs": [pool.apply(measure_cost, (layer, config)) for layer in LAYERS]}


# --------------------------------------------------------------------------------------------
# Accuracy against the number of training images, seeds batched.


def train(layer: str, n: int, config: SharingConfig, ctx: RunContext) -> dict:
    task = convnet.line_angle_task(ctx.n_seeds, n, config.test_samples, config.size,
                                   ctx.generator("train", n), ctx.generator("test"))
    params = parameters(layer, config, ctx.n_seeds, ctx.generator("init", layer))
    fitted = convnet.fit(params, task, config.kernel, config.steps, config.batch_size, config.lr,
                         ctx.generator("batches", n))  # the same minibatches for both layers
    return {"layer": layer, "n": n, "accuracy": fitted["accuracy"][-1].cpu().numpy()}


def run(config: SharingConfig, ctx: RunContext) -> dict:
    costs = ctx.part("costs", lambda: measure_costs(config))["costs"]
    curves = []
    with ctx.track("accuracy vs samples", len(LAYERS) * len(config.samples)) as advance:
        for layer in LAYERS:
            for n in config.samples:
                curves.append(ctx.part(f"{layer}: n={n}", lambda layer=layer, n=n: train(
                    layer, n, config, ctx)))
                advance(1)
    return {"costs": costs, "curves": curves, "positions": positions(config)}


# --------------------------------------------------------------------------------------------
# Claims.


def accuracy(result: dict, layer: str, n: int) -> np.ndarray:
    """Test accuracy per seed of one layer trained on n images."""
    return np.asarray(next(r["accuracy"] for r in result["curves"]
                           if r["layer"] == layer and r["n"] == n), float)


def check_parameters(config: SharingConfig, result: dict) -> Check:
    conv, local = (c["layer_parameters"] - config.channels for c in result["costs"])
    ratio = local / conv
    return Check.judge(ratio == result["positions"], ratio,
                       f"filter weights {conv:,} (convolution) vs {local:,} (locally connected): "
                       f"× {ratio:,.0f}, output positions {result['positions']:,}")


def check_samples(config: SharingConfig, result: dict) -> Check:
    most = max(config.samples)
    fewer = max((n for n in config.samples if 2 * n <= most), default=None)
    if fewer is None:
        return Check.not_checked(None, f"no training-set size of at most half of {most:,}")
    local, conv = accuracy(result, "locally connected", most), accuracy(result, "convolution",
                                                                           fewer)
    return Check.at_least(mean_interval(conv - local), 0.0,
                          f"test accuracy of the convolution on {fewer:,} images "
                          f"{conv.mean():.3f} − the locally connected layer's on {most:,} "
                          f"{local.mean():.3f}: {conv.mean() - local.mean():+.3f}")


def state_bytes(cost: dict) -> int:
    """Parameters, gradients and Adam's state: what untied filters multiply."""
    return sum(cost["bytes"][part] for part in ("parameters", "gradients", "optimizer"))


def total_bytes(cost: dict) -> int:
    return state_bytes(cost) + cost["bytes"]["activations"]


def check_memory(config: SharingConfig, result: dict) -> Check:
    conv, local = result["costs"]
    ratio = total_bytes(local) / total_bytes(conv)

    def parts(cost: dict) -> str:
        return (f"{total_bytes(cost) / 2**20:.2f} MiB ({state_bytes(cost) / 2**20:.2f} "
                f"parameters + gradients + Adam, {cost['bytes']['activations'] / 2**20:.2f} saved "
                f"activations)")
    return Check.at_least(Interval(ratio, ratio, ratio, 1.0, 1, "exact count"), 1.0,
                          f"one Adam step on {config.memory_batch} images holds {parts(conv)} "
                          f"with the convolution, {parts(local)} locally connected: "
                          f"× {ratio:.2f}; time {conv['seconds'] * 1e3:.1f} vs "
                          f"{local['seconds'] * 1e3:.1f} ms")


CLAIMS = (
    Claim("untied filters multiply the parameters by the positions", "a locally connected "
          "layer has one filter per output position (Le et al. 2012's layers vs a convolution)",
          "filter weights of the locally connected layer / the convolution's = output positions",
          check_parameters, kind="sanity",
          id="untied-filters-multiply-the-parameters-by-the-positions"),
    Claim("tying needs fewer samples on translation-invariant data", "the notes: sharing "
          "weights trades memory for data; a convolution generalises from fewer images when "
          "the task is translation invariant", "the convolution trained on at most half the "
          "images is at least as accurate as the locally connected layer on the largest set",
          check_samples,
          test="per seed, the convolution's test accuracy at the largest size at most half the "
               "largest minus the locally connected layer's at the largest (two training sets of "
               "that seed, one shared test set; seeds independent); Student's t 95% interval "
               "of the mean difference over seeds; holds when it lies at or above 0, fails when "
               "it lies below", id="tying-needs-fewer-samples-on-translation-invariant-data"),
    Claim("untied filters cost memory", "the untied layer's weights and their gradients must "
          "be held: more memory (the cat network needed 16,000 cores)", "an Adam step holds "
          "more bytes with the locally connected layer than with the convolution",
          check_memory,
          test="the bytes one Adam step on `memory_batch` images holds, counted in a spawned "
               "process: parameters, gradients and Adam's state from tensor sizes, plus the "
               "distinct non-parameter storages autograd saves for backward; deterministic, so "
               "the interval is the exact ratio locally connected / convolution; holds when it "
               "is at least 1", id="untied-filters-cost-memory"),
)


def figures(config: SharingConfig, result: dict) -> dict:
    fig, (ax_acc, ax_cost) = new_figure(ncols=2)
    for layer, colour in zip(LAYERS, ("tab:blue", "tab:orange"), strict=True):
        rows = [r for r in result["curves"] if r["layer"] == layer]
        band(ax_acc, [r["n"] for r in rows], np.array([r["accuracy"] for r in rows]).T, layer,
             colour)
    ax_acc.set(xlabel="training images", ylabel="test accuracy",
               title="Line angle: tied vs untied filters")
    log_ticks(ax_acc, config.samples)
    ax_acc.legend(fontsize=8)
    conv, local = result["costs"]
    ratios = {"parameters": local["parameters"] / conv["parameters"],
              "parameters +\ngradients + Adam": state_bytes(local) / state_bytes(conv),
              "saved\nactivations": local["bytes"]["activations"] / conv["bytes"]["activations"],
              "ms / pass": local["seconds"] / conv["seconds"]}
    ax_cost.bar(list(ratios), list(ratios.values()), color="tab:orange")
    ax_cost.axhline(1, color="black", lw=1)
    ax_cost.set(yscale="log", ylabel="locally connected / convolution",
                title=f"Cost of untied filters (batch {config.memory_batch})")
    return {"weight_sharing": fig}


CAPTIONS = {  # what to see in each figure, shown under it in the report
    "weight_sharing": ("Left: test accuracy on line angles against training images, tied "
                       "(convolution) against untied (locally connected) filters. Right: the cost "
                       "of untying, as locally connected over convolution ratios of parameters, "
                       "optimiser state, saved activations and time per pass."),
}


def work(config: SharingConfig, seeds: int) -> float:
    """Cost model units: µs (designed_filters' convnet fit): Adam steps, final test."""
    image = positions(config) * config.channels * (config.kernel**2 + 2) / 1.5e3  # µs a forward
    per_run = (config.steps * (500 + 2 * seeds * config.batch_size * image)
               + seeds * config.test_samples * image)
    return len(LAYERS) * len(config.samples) * per_run


EXPERIMENT = Experiment(
    name="weight_sharing",
    section="the notes' open question; Le et al. 2012",
    title="Tied vs untied weights: a convolution against a locally connected layer",
    version=3,
    config_class=SharingConfig,
    scales={
        "quick": {"samples": [32, 256, 1_024], "steps": 300, "test_samples": 500,
                  "memory_batch": 64},
        "default": {},
        "paper": {"samples": [32, 64, 128, 256, 512, 1_024, 2_048, 4_096, 8_192],
                  "steps": 3_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 8},
    work=work,
    run=run,
    figures=figures,
    claims=CLAIMS,
    captions=CAPTIONS,
)
