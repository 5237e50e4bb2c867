"""gradfail.memory: freed memory kept for the next step, seen in the page faults a training loop
takes (counted by the kernel, in a fresh process for each setting)."""

import subprocess
import sys

import pytest

LOOP = """
import resource, sys, torch
from gradfail.memory import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "kept" else None
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(256, 2560), torch.nn.ReLU(),
                            torch.nn.Linear(2560, 10))
x = torch.randn(4096, 256)  # 40 MiB of activations a step: over glibc's largest mmap threshold
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.zero_grad()
    model(x).square().mean().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(took, sum(faults[2:]))
"""
PAGES_A_STEP = 40 * 2**20 // 4096


def faults_after_two_steps(setting: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", LOOP, setting], capture_output=True,
                          text=True, check=True)
    took, faults = done.stdout.split()
    return took, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_not_faulted_in_again_on_every_step():
    _, plain = faults_after_two_steps("plain")
    took, kept = faults_after_two_steps("kept")
    assert took == "True"
    assert plain > 6 * PAGES_A_STEP  # the activations faulted in afresh on every step
    assert kept < plain / 10  # reused, but for a step or so while the heap settles
