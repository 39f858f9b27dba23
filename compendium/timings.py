"""Wall-clock timing records of runs, kept out of the committed results so that a rerun
leaves git clean (the run side: what the stages write; the committed summary and the measured
reproduction are :mod:`compendium.timing_summary`'s, which only ``amcf timings`` and the
report import, so that changing them reruns no training stage).

Every published run writes ``build/timings/<run>.json``, where ``<run>`` is the run's
directory relative to the results root (``digits/amcf/seed0``, ``digits/baselines/l2sp/seed1``,
``sources/mnist/draws/draw0``; a search: ``<target>/search/seed<k>``). It holds the run's
wall time, its per-epoch seconds, the machine, and the sha256 of the ``metrics.json`` (or
``search.json``) it belongs to. It is rewritten on every run, like any build output.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amcf.io import write_json


def default_timings_dir(work_dir: str | os.PathLike) -> Path:
    """Where runs keep their timing record: beside their work directory (``build/work`` ->
    ``build/timings``; a notebook's scratch ``build/scratch/work`` -> ``build/scratch/timings``)."""
    return Path(work_dir).parent / "timings"


def machine() -> str:
    """A short description of the machine a timing was taken on: the CPU model and the
    numerics (the committed results hold neither: they are the same on every CPU)."""
    import torch

    from amcf import numerics

    text = (f"{platform.machine() or 'unknown'}, {numerics.cpu_name()}, {os.cpu_count()} CPUs, "
            f"{numerics.name()}")
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def metrics_digest(metrics_path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(metrics_path).read_bytes()).hexdigest()


def record_path(timings_dir: str | os.PathLike, run: str) -> Path:
    return Path(timings_dir) / f"{run}.json"


def write_record(timings_dir: str | os.PathLike, run: str | os.PathLike,
                 metrics_path: str | os.PathLike, timing: Mapping[str, Any],
                 shared_by: int = 1) -> Path:
    """Record the wall time of the run published at ``metrics_path``.

    ``timing`` is the trainer's (:attr:`amcf.train.TrainResult.timing`); a run that shares one
    training with ``shared_by - 1`` others (the members of a lam = 0 run) is charged an equal
    share of it.
    """
    run = Path(run).as_posix()
    seconds = [s / shared_by for s in timing.get("epoch_seconds", [])]
    return write_json(record_path(timings_dir, run), {
        "run": run,
        "wall_time_s": timing["wall_time_s"] / shared_by,
        "shared_by": shared_by,
        "epoch_seconds": seconds,
        "machine": machine(),
        "metrics_sha256": metrics_digest(metrics_path),
    })


def search_run(target: str, seed: int) -> str:
    """The timing key of one AMLS search of ``target`` (what the report looks up)."""
    return f"{target}/search/seed{int(seed)}"


def write_search_record(timings_dir: str | os.PathLike, target: str, seed: int,
                        search_json: str | os.PathLike, wall_time_s: float) -> Path:
    """Record the wall time of the search published at ``search_json`` (one search seed)."""
    run = search_run(target, seed)
    return write_json(record_path(timings_dir, run), {
        "run": run,
        "wall_time_s": float(wall_time_s),
        "shared_by": 1,
        "machine": machine(),
        "metrics_sha256": metrics_digest(search_json),
    })


