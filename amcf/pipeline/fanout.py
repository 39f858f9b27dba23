"""Independent computations inside one stage, as Ray tasks when a cluster is attached.

A stage's trainings (the methods x seeds of ``baselines@``/``ablations@``, the schemes of one
generation of :func:`amcf.search.pso_sync`) do not depend on each other. With no cluster they
run one after another in the stage's own process; when one is attached (``amcf cluster-run``
sets ``RAY_ADDRESS`` for every stage, or the caller has already called ``ray.init``) each runs
as a Ray task with one GPU, or with the CPUs of one training on a cluster without GPUs. Either
way each computation is seeded by its own arguments and writes its own files, so the results
are the same.

On a CPU the last bits of a training depend on how many threads sum its reductions, so a task
uses as many threads as the sequential run would (``AMCF_TASK_CPUS``, which ``amcf
cluster-run`` sets; else this process's torch thread count), and asks Ray for that many CPUs.

A task whose worker dies (a node lost, a SIGKILL) is retried by Ray; the trainer resumes from
its last epoch checkpoint, so the retry costs only the epochs since then.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

TASK_CPUS_ENV = "AMCF_TASK_CPUS"
RETRIES = 3  # attempts after a worker dies; an exception raised by the call is not retried


def attached() -> bool:
    """Whether a Ray cluster is attached (``ray.init`` done, or ``RAY_ADDRESS`` set)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "RAY_ADDRESS is set but Ray is not installed: pip install -e '.[cluster]' (or unset "
            "RAY_ADDRESS to run one after another)") from err
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False,
                 configure_logging=False)
    return ray


def task_cpus() -> int:
    """The CPUs (threads) of one training: ``AMCF_TASK_CPUS``, else torch's thread count."""
    value = os.environ.get(TASK_CPUS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{TASK_CPUS_ENV}={value!r}: give a whole number of CPUs >= 1")
        return int(value)
    import torch

    return torch.get_num_threads()


def limit_threads(cpus: float) -> int:
    """Set torch's and the BLAS/OpenMP libraries' threads to ``cpus`` (at least 1)."""
    import threadpoolctl
    import torch

    threads = max(1, int(cpus))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # for libraries and processes started later
    threadpoolctl.threadpool_limits(threads)
    torch.set_num_threads(threads)
    return threads


def _in_task(root: str, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a Ray worker: in the stage's folder, with the CPUs Ray gave it."""
    import ray

    os.chdir(root)
    assigned = ray.get_runtime_context().get_assigned_resources()
    limit_threads(assigned.get("CPU", 1))
    return call()


def _options(ray, name: str) -> dict[str, Any]:
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    resources = {"num_gpus": 1, "num_cpus": 1} if has_gpus else {"num_cpus": task_cpus()}
    return {**resources, "name": name, "max_retries": RETRIES, "retry_exceptions": False}


def _name(call: Callable[[], Any]) -> str:
    func = call.func if isinstance(call, functools.partial) else call
    return getattr(func, "__name__", "task")


@functools.cache
def _remote_in_task():
    return _ray().remote(_in_task)


def submit(call: Callable[[], Any]) -> Future:
    """Start ``call`` as a Ray task on the attached cluster; a future of its result."""
    ray = _ray()
    task = _remote_in_task().options(**_options(ray, _name(call)))
    return task.remote(os.getcwd(), call).future()


def run_all(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run independent calls: as Ray tasks when a cluster is attached, else one after another.

    Returns their results in order. With Ray every call runs to its end before the first
    failure is raised, so work that succeeded is kept.
    """
    if not attached():
        return [call() for call in calls]
    futures = [submit(call) for call in calls]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


class RayExecutor(Executor):
    """A ``concurrent.futures.Executor`` whose calls are Ray tasks (e.g. for ``pso_sync``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return submit(functools.partial(fn, *args, **kwargs))


def executor() -> Executor | None:
    """A Ray executor when a cluster is attached, else None (callers then run calls in turn)."""
    return RayExecutor() if attached() else None
