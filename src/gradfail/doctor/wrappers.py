"""Models as training really runs them: inside `DistributedDataParallel` or `torch.compile`.

The doctor watches the module inside the wrapper (its parameters, its layers, and the extra
forward passes that curvature and the loss baseline need, which must not go through DDP's
gradient synchronisation nor recompile), and hooks the wrapper itself only at its root, where
its forward runs eagerly. Under DDP the gradient the optimizer reads after backward is already
the average over every process (PyTorch's DDP notes: the reducer all-reduces in backward), so
the norms the doctor reads are those of the reduced gradient; the first process (rank 0) alone
measures and reports, and every process stops at the same step when a verdict in `abort_on`
begins (one small all-reduce at each check, only when `abort_on` is given), so that none waits
forever in the next collective. A compiled model's forward is one graph: the activation sites
inside it cannot be seen without breaking it, so the doctor reads what lies outside the graph
(gradients, updates, the loss, curvature through the original module) and says in its coverage
that activations were not measured.
"""

from __future__ import annotations

import torch
from torch import nn


def unwrap(model: nn.Module) -> tuple[nn.Module, str | None]:
    """(the module that holds the layers, "compiled" / "distributed" / None for what wrapped
    it); a compiled DDP model is "compiled"."""
    compiled = getattr(getattr(torch, "_dynamo", None), "eval_frame", None)
    if compiled is not None and isinstance(model, compiled.OptimizedModule):
        return unwrap(model._orig_mod)[0], "compiled"
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.module, "distributed"
    return model, None


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank (0 when training is not distributed)."""
    return torch.distributed.get_rank() if distributed() else 0


def processes(model: nn.Module) -> int:
    """How many processes average the gradient of `model` (DDP's process group; 1 otherwise)."""
    while hasattr(model, "_orig_mod"):  # inside torch.compile's wrapper
        model = model._orig_mod
    if isinstance(model, nn.parallel.DistributedDataParallel) and distributed():
        return torch.distributed.get_world_size(model.process_group)
    return 1


def agreed_abort(pending: tuple | None, step: int, device: torch.device) -> tuple | None:
    """(verdict, step) to stop at on every process, or None: rank 0 says which verdict (its
    position + 1 in one all-reduce of the largest value; the others say 0)."""
    from gradfail.doctor import rules

    verdict = pending[0] if pending else None
    said = torch.tensor([rules.VERDICTS.index(verdict.name) + 1 if verdict else 0,
                         verdict.onset_step or 0 if verdict else 0], device=device)
    torch.distributed.all_reduce(said, op=torch.distributed.ReduceOp.MAX)
    code, onset = said.tolist()
    if not code:
        return None
    name = rules.VERDICTS[code - 1]
    return verdict or rules.Verdict(name, 1.0, onset, "named by the doctor of the first "
                                    "process (rank 0)", rules.REMEDIES[name]), step


def described(wrapped_by: str | None, processes: int) -> str:
    """What the wrapper means for what was measured ("" for a bare module)."""
    if wrapped_by == "compiled":
        return ("compiled with torch.compile: activations inside its graph not measured; "
                "gradients, updates and the loss read outside it")
    if wrapped_by == "distributed":
        return (f"DistributedDataParallel over {processes} processes: gradients are their "
                "average; rank 0 measures and reports")
    return ""
