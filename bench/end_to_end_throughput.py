"""§3 throughput: the scorer's training step (images/s) and per-sample gradients, vmap vs loop.

Prints a table and writes bench/results/end_to_end_throughput.json. Usage:
    python bench/end_to_end_throughput.py [--steps 20] [--samples 20000] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.func import grad, vmap

from gradfail import registry
from gradfail.experiment import RunContext
from gradfail.experiments.paper import end_to_end

EXPERIMENT = registry.get("end_to_end")


def training_images_per_second(k: int, seeds: int, steps: int, device: torch.device) -> float:
    """Images through a full Adam step of the decomposition scheme, batch 200 tuples."""
    config = EXPERIMENT.config("paper", {"ks": [k], "dec_steps": steps, "eval_every": 10**6,
                                         "pool_size": 10_000, "test_size": 10})
    ctx = RunContext(device, seed=0, n_seeds=seeds)
    start = time.perf_counter()
    end_to_end.train(config, k, "decomposition", ctx)
    return steps * config.batch_size * k * seeds / (time.perf_counter() - start)


def per_sample_gradient_rates(samples: int, loop_samples: int, k: int = 3) -> dict:
    """Per-sample gradients of the end-to-end loss w.r.t. the score layer: samples/s both ways."""
    generator = torch.Generator().manual_seed(0)
    join = end_to_end.paper_init(end_to_end.tuple_net(k), generator)
    loss = end_to_end.snr_losses(join, torch.zeros(1, dtype=torch.float64))["end-to-end"]
    w = torch.randn(100, dtype=torch.float64)
    phi = torch.rand(samples, k, 100, dtype=torch.float64)
    image_y = torch.ones(samples, k, dtype=torch.float64)
    tuple_y = image_y.prod(1)
    batched = vmap(grad(loss), in_dims=(None, 0, 0, 0))
    batched(w, phi[:10], image_y[:10], tuple_y[:10])
    start = time.perf_counter()
    batched(w, phi, image_y, tuple_y)
    vmap_rate = samples / (time.perf_counter() - start)
    single = grad(loss)
    start = time.perf_counter()
    for i in range(loop_samples):
        single(w, phi[i], image_y[i], tuple_y[i])
    loop_rate = loop_samples / (time.perf_counter() - start)
    return {"vmap_samples_per_s": vmap_rate, "loop_samples_per_s": loop_rate,
            "vmap_over_loop": vmap_rate / loop_rate}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    training_images_per_second(1, 1, 2, device)  # warm-up: first-call costs are not throughput
    training = [{"k": k, "seeds": seeds,
                 "images_per_s": training_images_per_second(k, seeds, args.steps, device)}
                for k in (1, 4) for seeds in (1, 2)]
    gradients = per_sample_gradient_rates(args.samples, loop_samples=1_000)
    report = {"device": str(device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "training": training,
              "per_sample_gradients": gradients}
    out = Path(__file__).parent / "results" / "end_to_end_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for row in training:
        print(f"training step, k={row['k']}, {row['seeds']} seed(s) batched: "
              f"{row['images_per_s']:,.0f} images/s")
    print(f"per-sample gradients: vmap {gradients['vmap_samples_per_s']:,.0f}/s, Python loop "
          f"{gradients['loop_samples_per_s']:,.0f}/s: {gradients['vmap_over_loop']:,.0f}x")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
