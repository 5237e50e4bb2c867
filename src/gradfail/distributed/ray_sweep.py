"""Sweeps on Ray (`gradfail run NAME --backend ray`): each run of a sweep as one Ray task, running
the same `run_experiment` as locally and writing into the same store."""

from __future__ import annotations

from gradfail.distributed.ray_cluster import ray_module, start


def run_in_task(name: str, config_json: str, scale: str, store_path: str, seed: int,
                seeds: int | None, device: str, replicate_of: int | None = None):
    """One run inside a Ray task: the same `run_experiment` as locally, writing into the
    store at `store_path` (on a multi-node cluster, a path every node shares)."""
    from gradfail import registry
    from gradfail.runner import resolve_device, run_experiment
    from gradfail.store import Store

    experiment = registry.get(name)
    config = experiment.config_class.model_validate_json(config_json)
    return run_experiment(experiment, config, scale=scale, store=Store(store_path), seed=seed,
                          n_seeds=seeds or experiment.seeds[scale], device=resolve_device(device),
                          replicate_of=replicate_of)


def run_on_ray(plan: list, *, scale: str, store_path: str, seed: int, seeds: int | None,
               device: str, address: str | None = None, replicate_of: int | None = None
               ) -> list:
    """Each (experiment, config) of the plan as one Ray task (1 CPU each); their outcomes in
    plan order. `replicate_of`: the runs replicate those on that base seed."""
    ray = ray_module()
    start(address)
    task = ray.remote(num_cpus=1)(run_in_task)
    refs = [task.remote(e.name, config.model_dump_json(), scale, store_path, seed, seeds,
                        device, replicate_of) for e, config in plan]
    return ray.get(refs)
