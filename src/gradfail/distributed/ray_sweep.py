"""Runs on a Ray cluster (`gradfail reproduce --backend ray [--ray-address HOST:PORT]`).

Each run of the plan is performed (`gradfail.perform`) in a Ray task on whichever node has
room, with as many torch threads as the cores it asks for (a fraction of a GPU under
`--device cuda`: the models here are small). Its parts, as they finish, and its result travel
back to the driver, which alone writes the store: no file is shared between nodes (SQLite over
a network file system is unsafe). A task lost with its node is retried on another; a killed
driver leaves its runs to be taken over (and resumed from their parts) by the next one.
"""

from __future__ import annotations

from gradfail.distributed.ray_cluster import ray_module, shutdown, start
from gradfail.perform import Assignment, Job, Performed, dispatch_order, perform_by_name

GPU_SHARE = 0.25  # four small models side by side on one GPU
RETRIES = 3  # a task whose node dies is run again this many times


def perform_in_task(assignment: Assignment, outbox, threads: int) -> Performed:
    """One run inside a Ray task; each finished part is put on the driver's queue."""
    import torch

    torch.set_num_threads(threads)

    def relay(key, result, metrics, wall_s):
        outbox.put(("part", assignment.run_id, key, result, metrics, wall_s))

    return perform_by_name(assignment, relay)


def run_on_ray(jobs: list[Job], store, bars, address: str | None = None) -> dict[int, object]:
    """Every job as a Ray task; each job's outcome by index. The driver begins each run,
    stores the parts its task reports and finishes it from the task's `Performed`; it leaves
    the cluster (a local one is shut down) when the sweep ends."""
    from gradfail.runner import finish, interrupt, store_part

    ray = ray_module()
    start(address)
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    outbox = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
    task = ray.remote(perform_in_task)
    outcomes, pending, shown = {}, {}, {}
    try:
        for job in sorted(jobs, key=dispatch_order):
            begun = job.begin()
            if not isinstance(begun, Assignment):  # stored already
                outcomes[job.index] = begun
                continue
            options = {"num_cpus": job.cores, "max_retries": RETRIES}
            if begun.device.startswith("cuda"):
                options["num_gpus"] = GPU_SHARE
            ref = task.options(**options).remote(begun, outbox, job.cores)
            pending[ref] = (job.index, begun)
            shown[begun.run_id] = bars.task(f"{begun.experiment} run {begun.run_id} (seed "
                                            f"{begun.seed}, {begun.scale}) on Ray", 1)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            while not outbox.empty():  # a task's parts were put before it returned
                _, run_id, *part = outbox.get_nowait()
                store_part(store, run_id)(*part)
            for ref in ready:
                index, assignment = pending.pop(ref)
                try:
                    performed = ray.get(ref)
                except ray.exceptions.RayError as error:
                    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    performed = Performed("failed", 0.0, f"its Ray task was lost after "
                                          f"{RETRIES} retries ({first[:160]}); run again to "
                                          "resume from its stored parts")
                outcomes[index] = finish(store, assignment, performed)
                shown[assignment.run_id](1)
    except BaseException:
        for ref, (_, assignment) in pending.items():
            ray.cancel(ref, force=True)
            interrupt(store, assignment.run_id)
        raise
    finally:  # Ray's last words (e.g. its summary of lost tasks) while stdout is redirected
        shutdown(ray)
    return outcomes
