"""One process of a two-process DistributedDataParallel training on the gloo backend (CPU),
watched by the doctor; run by tests/doctor/test_doctor_training.py as `python ddp_training.py
RANK PORT OUT`. Each process trains on its own half of every batch; what it saw goes to OUT."""

import json
import sys

import torch
import torch.distributed as dist
from torch import nn

from gradfail.doctor import DoctorAbort, watch


def model() -> nn.Sequential:
    """Eleven sigmoid layers (the gradient reaching the first is ~1e-9 of the last's)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Sigmoid(), *[m for _ in range(10) for m in (
        nn.Linear(32, 32), nn.Sigmoid())], nn.Linear(32, 1))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch of a step (64 samples); process r trains on rows r::2."""
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(step))
    return x, x[:, :1].sign()


def main(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    ddp = nn.parallel.DistributedDataParallel(model())
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    seen = {"rank": rank, "stopped": None, "grad_norms": {}}
    try:
        with watch(ddp, optimizer, live=False, abort_on=["vanishing gradients"]) as dr:
            for step in range(200):
                x, y = batch(step)
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(ddp(x[rank::2]), y[rank::2])
                loss.backward()
                seen["grad_norms"][step] = torch.cat([p.grad.reshape(-1) for p in
                                                      ddp.parameters()]).norm().item()
                optimizer.step()
                dr.step(loss)
    except DoctorAbort as abort:
        seen["stopped"] = {"step": abort.step, "verdict": abort.verdict.name}
    seen["history"] = dr.history
    seen["coverage"] = dr.coverage()
    with open(out, "w") as file:
        json.dump(seen, file, default=float)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
