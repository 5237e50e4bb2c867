"""Tied vs untied weights: a locally connected layer against a convolution, memory against data.

The "cat network" (Le et al. 2012) used locally connected layers, a different filter at every
position, where a convolution ties one filter across positions. The notes ask what the tying
buys. Measured here on the §3 line images (28×28, label: the line's angle below π/2; a line
can be anywhere, so the task is translation invariant): one 5×5 layer of 8 channels, locally
connected (unfold + einsum, no loop over positions) or convolutional, then ReLU and a linear
read-out; the parameters, the peak memory of a forward and backward pass (measured in a forked
process), its time, and the test accuracy against the number of training images.
"""

from __future__ import annotations

import math
import multiprocessing
import resource

import numpy as np
import torch
from pydantic import Field, PositiveFloat, PositiveInt, field_validator

from gradfail.experiment import Check, Claim, Config, Experiment, RunContext
from gradfail.maths.timing import median_seconds
from gradfail.nets import convnet
from gradfail.plotting import band, log_ticks, new_figure

LAYERS = ("convolution", "locally connected")


class SharingConfig(Config):
    """Sizes are ours; the images and labels are the paper's §3 lines (spec §2.1)."""

    size: int = Field(28, ge=12, description="image side (lines need > 10 pixels)")
    kernel: PositiveInt = Field(5)
    channels: PositiveInt = Field(8)
    samples: list[PositiveInt] = Field([32, 64, 128, 256, 512, 1_024, 2_048], min_length=2)
    test_samples: PositiveInt = Field(2_000)
    steps: PositiveInt = Field(800)
    batch_size: PositiveInt = Field(32)
    lr: PositiveFloat = Field(1e-3, description="Adam")
    memory_batch: PositiveInt = Field(256, description="images in the measured pass")

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
# Cost: parameters, peak memory (measured), time.


def _peak_in_child(layer: str, config: SharingConfig, queue) -> None:
    torch.set_num_threads(1)
    params = [p.requires_grad_(True) for p in parameters(layer, config, 1,
                                                         torch.Generator().manual_seed(0))]
    x = torch.rand(1, config.memory_batch, config.size, config.size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    convnet.forward(params, x, config.kernel).square().sum().backward()
    queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)


def peak_memory_mb(layer: str, config: SharingConfig) -> float:
    """The rise of a fresh forked process's peak resident memory over one forward and backward
    pass of `memory_batch` images (MiB): measured, not computed."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_peak_in_child, args=(layer, config, queue))
    child.start()
    found = queue.get(timeout=300)
    child.join()
    return float(found)


def cost(layer: str, config: SharingConfig) -> dict:
    params = [p.requires_grad_(True) for p in parameters(layer, config, 1,
                                                         torch.Generator().manual_seed(0))]
    x = torch.rand(1, config.memory_batch, config.size, config.size)
    seconds = median_seconds(
        lambda: convnet.forward(params, x, config.kernel).square().sum().backward(), 5)
    return {"layer": layer, "layer_parameters": params[0].numel() + params[1].numel(),
            "parameters": sum(p.numel() for p in params), "seconds": seconds,
            "peak_mb": peak_memory_mb(layer, config)}


# --------------------------------------------------------------------------------------------
# Accuracy against the number of training images, seeds batched.


def train(layer: str, n: int, config: SharingConfig, ctx: RunContext) -> dict:
    task = convnet.line_angle_task(ctx.n_seeds, n, config.test_samples, config.size,
                                   ctx.generator("train", n), ctx.generator("test"))
    params = parameters(layer, config, ctx.n_seeds, ctx.generator("init", layer))
    fitted = convnet.fit(params, task, config.kernel, config.steps, config.batch_size, config.lr,
                         ctx.generator("batches", layer, n))
    return {"layer": layer, "n": n, "accuracy": fitted["accuracy"][-1].cpu().numpy()}


def run(config: SharingConfig, ctx: RunContext) -> dict:
    costs = [ctx.part(f"cost: {layer}", lambda layer=layer: cost(layer, config))
             for layer in LAYERS]
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


def accuracies(result: dict, layer: str) -> dict[int, float]:
    return {r["n"]: float(np.mean(r["accuracy"])) for r in result["curves"]
            if r["layer"] == layer}


def check_parameters(config: SharingConfig, result: dict) -> Check:
    conv, local = (c["layer_parameters"] - config.channels for c in result["costs"])
    ratio = local / conv
    return Check.judge(ratio == result["positions"], ratio,
                       f"filter weights {conv:,} (convolution) vs {local:,} (locally connected): "
                       f"× {ratio:,.0f}, output positions {result['positions']:,}")


def check_samples(config: SharingConfig, result: dict) -> Check:
    conv, local = accuracies(result, "convolution"), accuracies(result, "locally connected")
    target = local[max(local)]
    enough = min((n for n, a in conv.items() if a >= target), default=None)
    detail = (f"locally connected reaches {target:.3f} with {max(local):,} images; convolution "
              f"by n: " + ", ".join(f"{n}: {a:.3f}" for n, a in conv.items()))
    return Check.judge(enough is not None and enough < max(local),
                       math.nan if enough is None else max(local) / enough,
                       detail + (f"; it reaches that with {enough:,} ({max(local) / enough:.0f}× "
                                 "fewer)" if enough else "; it never reaches it"))


def check_memory(config: SharingConfig, result: dict) -> Check:
    conv, local = result["costs"]
    return Check.judge(local["peak_mb"] > conv["peak_mb"], local["peak_mb"] / max(
        conv["peak_mb"], 1e-9), f"peak memory rise of one forward + backward pass of "
        f"{config.memory_batch} images: {conv['peak_mb']:.1f} MiB (convolution), "
        f"{local['peak_mb']:.1f} MiB (locally connected); time {conv['seconds'] * 1e3:.1f} vs "
        f"{local['seconds'] * 1e3:.1f} ms")


CLAIMS = (
    Claim("untied filters multiply the parameters by the positions", "a locally connected "
          "layer has one filter per output position (Le et al. 2012's layers vs a convolution)",
          "filter weights of the locally connected layer / the convolution's = output positions",
          check_parameters, kind="sanity"),
    Claim("tying needs fewer samples on translation-invariant data", "the notes: sharing "
          "weights trades memory for data; a convolution generalises from fewer images when "
          "the task is translation invariant", "the convolution reaches the locally connected "
          "layer's accuracy at the largest n with fewer images", check_samples),
    Claim("untied filters cost memory", "the untied layer's weights and their gradients must "
          "be held: more memory (the cat network needed 16,000 cores)", "measured peak memory "
          "of forward + backward higher for the locally connected layer", check_memory),
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
    names = ["parameters", "peak MiB", "ms / pass"]
    conv, local = result["costs"]
    ratios = [local["parameters"] / conv["parameters"], local["peak_mb"] / max(conv["peak_mb"],
                                                                               1e-9),
              local["seconds"] / conv["seconds"]]
    ax_cost.bar(names, ratios, color="tab:orange")
    ax_cost.axhline(1, color="black", lw=1)
    ax_cost.set(yscale="log", ylabel="locally connected / convolution",
                title=f"Cost of untied filters (batch {config.memory_batch})")
    return {"weight_sharing": fig}


EXPERIMENT = Experiment(
    name="weight_sharing",
    section="the notes' open question; Le et al. 2012",
    title="Tied vs untied weights: a convolution against a locally connected layer",
    version=1,
    config_class=SharingConfig,
    scales={
        "quick": {"samples": [32, 256, 1_024], "steps": 300, "test_samples": 500,
                  "memory_batch": 64},
        "default": {},
        "paper": {"samples": [32, 64, 128, 256, 512, 1_024, 2_048, 4_096, 8_192],
                  "steps": 3_000},
    },
    seeds={"quick": 2, "default": 3, "paper": 8},
    run=run,
    figures=figures,
    claims=CLAIMS,
)
