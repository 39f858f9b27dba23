"""Independent computations inside one stage: Ray tasks on a cluster, else side by side.

A stage's trainings (the methods x seeds of ``baselines@``/``ablations@``, the seeds of
``amcf@``, the searches of ``search@``, the schemes of one generation of
:func:`amcf.search.pso_sync`) do not depend on each other. When a Ray cluster is attached
(``amcf cluster-run`` sets ``RAY_ADDRESS`` for every stage, or the caller has already called
``ray.init``) each runs as a Ray task with one GPU, or with the CPUs of one training on a
cluster without GPUs. Without one, on a CPU machine, they run side by side in a pool of
worker processes, one per core (``AMCF_LOCAL_WORKERS`` overrides the count; 1 runs them one
after another in the stage's own process); on a GPU machine they run one after another.
Either way each computation is seeded by its own arguments and writes its own files, so the
results are the same.

On a CPU the last bits of a training depend on how many threads sum its reductions. Under
the numerical policy (:mod:`amcf.numerics`) every training uses one thread, wherever it
runs, and a task asks Ray for one CPU; with the policy off (``AMCF_NUMERICS=native``) a task
uses as many threads as the sequential run would (``AMCF_TASK_CPUS``, which ``amcf
cluster-run`` sets; else this process's torch thread count) and asks Ray for that many.

A GPU training runs in a fresh worker process (a reused one would keep its CUDA context on
the GPU it saw first, whatever GPU Ray assigns next), bound by Ray's ``CUDA_VISIBLE_DEVICES``
to the GPU it was given, and asks for the CPUs it uses: one for its loop and one per
DataLoader worker (:func:`gpu_task_cpus`). Every task learns the CPUs Ray gave it
(``AMCF_CPUS``), so ``num_workers: auto`` starts no more workers than it asked CPUs for, and
no task asks for more CPUs than the cluster's largest node has (:func:`clamp_cpus`).

A task whose worker dies (a node lost, a SIGKILL) is retried by Ray; the trainer resumes from
its last epoch checkpoint, so the retry costs only the epochs since then.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from amcf import numerics

TASK_CPUS_ENV = "AMCF_TASK_CPUS"
LOCAL_WORKERS_ENV = "AMCF_LOCAL_WORKERS"
IN_WORKER_ENV = "AMCF_IN_WORKER"  # set in a local worker: its own calls run in turn
RETRIES = 3  # attempts after a worker dies; an exception raised by the call is not retried


def attached() -> bool:
    """Whether a Ray cluster is attached (``ray.init`` done, or ``RAY_ADDRESS`` set)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    # a process that never imported Ray cannot have called ray.init; importing it only to ask
    # would cost every stage and worker about 3.5 s
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "RAY_ADDRESS is set but Ray is not installed: pip install -e '.[cluster]' (or unset "
            "RAY_ADDRESS to run one after another)") from err
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False,
                 configure_logging=False, runtime_env=runtime_env())
    return ray


def runtime_env() -> dict[str, Any]:
    """Ray's runtime environment for this project's tasks: the numerical policy's variables,
    so that a worker's libraries read them before its first torch operation."""
    return {"env_vars": numerics.set_environment({})} if numerics.enabled() else {}


def task_cpus() -> int:
    """The CPUs (threads) of one training: one under the numerical policy, else
    ``AMCF_TASK_CPUS``, else torch's thread count."""
    if numerics.enabled():
        return numerics.THREADS
    value = os.environ.get(TASK_CPUS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{TASK_CPUS_ENV}={value!r}: give a whole number of CPUs >= 1")
        return int(value)
    import torch

    return torch.get_num_threads()


def limit_threads(cpus: float) -> int:
    """Set torch's and the BLAS/OpenMP libraries' threads to ``cpus`` (at least 1; one under
    the numerical policy, whatever the CPUs)."""
    import threadpoolctl
    import torch

    threads = numerics.THREADS if numerics.enabled() else max(1, int(cpus))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)  # for libraries and processes started later
    threadpoolctl.threadpool_limits(threads)
    torch.set_num_threads(threads)
    return threads


def task_threads(assigned: dict[str, float]) -> int:
    """The torch threads of a task given ``assigned`` (Ray's resources): a GPU training's
    other CPUs are its DataLoader workers' (:func:`gpu_task_cpus`), so its loop takes one."""
    return 1 if assigned.get("GPU") else max(1, int(assigned.get("CPU", 1)))


def enter_task(assigned: dict[str, float]) -> int:
    """In a Ray task (or a stage's process): set ``AMCF_CPUS`` to the CPUs Ray gave it and
    the threads to :func:`task_threads`; returns the threads."""
    from amcf.train.config import CPUS_ENV

    os.environ[CPUS_ENV] = str(max(1, int(assigned.get("CPU", 1))))
    return limit_threads(task_threads(assigned))


def _in_task(root: str, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a Ray worker: in the stage's folder, with the CPUs Ray gave it."""
    import ray

    os.chdir(root)
    numerics.apply()
    enter_task(ray.get_runtime_context().get_assigned_resources())
    return call()


def _alive(nodes: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    return [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]


def gpu_task_cpus(nodes: Sequence[dict[str, Any]]) -> int:
    """The CPUs a GPU training asks for on a cluster of ``nodes`` (``ray.nodes()``): its loop
    and ``num_workers: auto``'s DataLoader workers on the CPUs per GPU of the best-provided GPU
    node, so that every GPU of such a node can train at once (32 CPUs and 4 GPUs: 8 each, 7 of
    them workers; a node's CPUs at most: never a request no node can grant)."""
    from amcf.train.config import auto_workers

    shares = [int(r.get("CPU", 0) // r["GPU"]) for r in _alive(nodes) if r.get("GPU", 0) >= 1]
    return 1 + auto_workers(max(shares, default=1))


def largest_node_cpus(nodes: Sequence[dict[str, Any]]) -> int:
    return int(max((r.get("CPU", 0) for r in _alive(nodes)), default=0))


_said: set[str] = set()  # what clamp_cpus said: a stage of many trainings says it once


def clamp_cpus(wanted: int, nodes: Sequence[dict[str, Any]], what: str, log=print) -> int:
    """``wanted`` CPUs, or the largest node's CPUs where no node has that many: Ray would
    otherwise wait for ever for a node that can take the task. Says so when it clamps."""
    largest = largest_node_cpus(nodes)
    if not 1 <= largest < wanted:
        return wanted
    message = (f"{what} would ask Ray for {wanted} CPUs, but the cluster's largest node has "
               f"{largest}: it asks for {largest} and uses that many threads (on a CPU the last "
               "bits of a result depend on them)")
    if message not in _said:
        _said.add(message)
        log(message, flush=True)
    return largest


def _options(ray, name: str) -> tuple[bool, dict[str, Any]]:
    """Whether the task takes a GPU, and its options: the CPUs it uses (see the module's
    docstring), its name (the worker's process title), its retries."""
    nodes = ray.nodes()
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    cpus = (gpu_task_cpus(nodes) if has_gpus
            else clamp_cpus(task_cpus(), nodes, "a training without a GPU"))
    return has_gpus, {"num_cpus": cpus, "name": name, "max_retries": RETRIES,
                      "retry_exceptions": False}


def _name(call: Callable[[], Any]) -> str:
    func = call.func if isinstance(call, functools.partial) else call
    return getattr(func, "__name__", "task")


@functools.cache
def _remote_in_task(gpu: bool):
    # Ray starts a fresh worker process for each call only when num_gpus and max_calls are
    # given here, in the decorator (.options() cannot set max_calls)
    if gpu:
        return _ray().remote(num_gpus=1, max_calls=1)(_in_task)
    return _ray().remote(_in_task)


def submit(call: Callable[[], Any]) -> Future:
    """Start ``call`` as a Ray task on the attached cluster; a future of its result."""
    ray = _ray()
    gpu, options = _options(ray, _name(call))
    task = _remote_in_task(gpu).options(**options)
    return task.remote(os.getcwd(), call).future()


def local_workers() -> int:
    """How many calls run side by side without a cluster: ``AMCF_LOCAL_WORKERS``, else one
    per usable core on a CPU machine under the numerical policy (one thread each), else 1
    (on a GPU machine, with the policy off, and inside a local worker)."""
    value = os.environ.get(LOCAL_WORKERS_ENV)
    if os.environ.get(IN_WORKER_ENV):
        return 1
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{LOCAL_WORKERS_ENV}={value!r}: give a whole number >= 1")
        return int(value)
    if not numerics.enabled():
        return 1
    import torch

    if torch.cuda.is_available():
        return 1
    from amcf.train.config import usable_cores

    return usable_cores()


def _init_worker() -> None:
    from compendium.pipeline import freeze_at_exit

    os.environ[IN_WORKER_ENV] = "1"
    numerics.apply()
    freeze_at_exit()  # the stage waits for its workers to end


_POOLS: dict[int, ProcessPoolExecutor] = {}  # the local pool of this process, by size


def _local_pool(workers: int) -> ProcessPoolExecutor:
    if workers not in _POOLS:
        # spawn, not fork: a forked child would inherit the parent's OpenMP and torch thread
        # state; a spawned one starts clean and inherits the policy's variables from os.environ
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)
        atexit.register(pool.shutdown, cancel_futures=True)
        _POOLS[workers] = pool
    return _POOLS[workers]


def end_local_workers() -> None:
    """End the local worker processes now, and the resource tracker that the spawn start
    method runs beside them (later calls start new ones).

    A Jupyter kernel ends its child processes before it exits, SIGTERM first; the tracker
    ignores SIGTERM, so every stage that had used workers waited for the kernel manager's
    2.5 s time-out at its end."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=True)
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # CPython 3.8+
    if stop is not None:
        stop()  # the tracker sees its pipe close, cleans up and exits


def ends_local_workers(stage: Callable[..., Any]) -> Callable[..., Any]:
    """A stage function whose local workers end when it returns or raises."""
    @functools.wraps(stage)
    def run_stage(*args: Any, **kwargs: Any) -> Any:
        try:
            return stage(*args, **kwargs)
        finally:
            end_local_workers()

    return run_stage


def local_executor() -> Executor | None:
    """The pool of local worker processes (kept for the process's life), or None when calls
    should run one after another here."""
    workers = local_workers()
    return _local_pool(workers) if workers > 1 else None


def _results(futures: Sequence[Future]) -> list[Any]:
    """The futures' results in order; every call ends before the first failure is raised,
    so work that succeeded is kept."""
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def run_all(calls: Sequence[Callable[[], Any]], tasks: bool = True) -> list[Any]:
    """Run independent calls: as Ray tasks when a cluster is attached, else side by side in
    local worker processes (:func:`local_workers`), else one after another.

    ``tasks=False``: on a cluster, one after another in this process (a stage that is itself
    a Ray task holding a GPU, as ``pretrain@`` is, must not wait for tasks that need one).
    Returns their results in order. In parallel, every call runs to its end before the first
    failure is raised, so work that succeeded is kept.
    """
    if attached():
        if not tasks:
            return [call() for call in calls]
        return _results([submit(call) for call in calls])
    pool = local_executor() if len(calls) > 1 else None
    if pool is None:
        return [call() for call in calls]
    return _results([pool.submit(call) for call in calls])


class RayExecutor(Executor):
    """A ``concurrent.futures.Executor`` whose calls are Ray tasks (e.g. for ``pso_sync``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return submit(functools.partial(fn, *args, **kwargs))


def executor() -> Executor | None:
    """A Ray executor when a cluster is attached, else the local pool (:func:`local_executor`),
    else None (callers then run calls in turn)."""
    return RayExecutor() if attached() else local_executor()
