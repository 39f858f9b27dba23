"""Wall-clock timings, kept out of the committed results so that a rerun leaves git clean.

Two files, two lifetimes:

- the **record** (uncommitted): every published run writes
  ``build/timings/<run>.json``, where ``<run>`` is the run's directory relative to the results
  root (``digits/amcf/seed0``, ``digits/baselines/l2sp/seed1``, ``sources/mnist``). It holds
  the run's wall time, its per-epoch seconds, the machine, and the sha256 of the
  ``metrics.json`` it belongs to. It is rewritten on every run, like any build output.
- the **summary** (committed): ``<results>/timings.csv``, written only by the deliberate
  ``amcf timings record`` (``make timings``). The report reads its wall times into the
  paper's cost columns; a run without a summary row shows a dash.

A record or a summary row is used only while its metrics digest equals that of the committed
``metrics.json``: a timing never attaches to a result it was not measured with.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from amcf.io import read_json, write_json, write_text

SUMMARY_NAME = "timings.csv"
SUMMARY_COLUMNS = ("run", "wall_time_s", "shared_by", "machine", "metrics_sha256")


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


def _runs(results_dir: Path) -> dict[str, Path]:
    """Every published run under ``results_dir``: its relative directory -> its metrics."""
    found = {}
    for path in sorted(results_dir.rglob("metrics.json")):
        found[path.parent.relative_to(results_dir).as_posix()] = path
    return found


def read_summary(results_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The committed summary's rows by run (empty when there is none)."""
    import pandas as pd

    path = Path(results_dir) / SUMMARY_NAME
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype={"run": str, "machine": str, "metrics_sha256": str})
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; write it again with "
                         "`amcf timings record`")
    return {row["run"]: row for row in frame.to_dict("records")}


def current_wall_times(results_dir: str | os.PathLike) -> dict[str, float]:
    """Wall time by run for the runs whose committed metrics the summary was taken with."""
    root = Path(results_dir)
    out = {}
    for run, row in read_summary(root).items():
        metrics = root / run / "metrics.json"
        if metrics.is_file() and metrics_digest(metrics) == row["metrics_sha256"]:
            out[run] = float(row["wall_time_s"])
    return out


def summarise(results_dir: str | os.PathLike, timings_dir: str | os.PathLike
              ) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The summary's rows and where each came from ("recorded", "kept", "missing").

    A run's row comes from this machine's record when it matches the committed metrics, else
    from the committed summary when that still matches; otherwise the run has no timing.
    """
    root, timings = Path(results_dir), Path(timings_dir)
    kept = read_summary(root)
    rows, origin = [], {"recorded": [], "kept": [], "missing": []}
    for run, metrics in _runs(root).items():
        digest = metrics_digest(metrics)
        record = record_path(timings, run)
        rec = read_json(record) if record.is_file() else None
        if rec is not None and rec.get("metrics_sha256") == digest:
            row, source = {k: rec[k] for k in SUMMARY_COLUMNS}, "recorded"
        elif run in kept and kept[run]["metrics_sha256"] == digest:
            row, source = {k: kept[run][k] for k in SUMMARY_COLUMNS}, "kept"
        else:
            origin["missing"].append(run)
            continue
        rows.append(row)
        origin[source].append(run)
    return rows, origin


def render_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["run"]):
        writer.writerow({**row, "wall_time_s": f"{float(row['wall_time_s']):.3f}",
                         "shared_by": int(row["shared_by"])})
    return buf.getvalue()


def write_summary(results_dir: str | os.PathLike, timings_dir: str | os.PathLike
                  ) -> tuple[Path, dict[str, list[str]]]:
    """Write ``<results_dir>/timings.csv`` from the record (see :func:`summarise`)."""
    rows, origin = summarise(results_dir, timings_dir)
    if not origin["recorded"] and not origin["kept"]:
        raise FileNotFoundError(
            f"no timing record under {timings_dir} matches the results in {results_dir}: run "
            "the pipeline on this machine first (`dvc repro`), then `amcf timings record`")
    return write_text(Path(results_dir) / SUMMARY_NAME, render_summary(rows)), origin


def add_parser(subparsers: Any) -> None:
    """``amcf timings record``: registered on the ``amcf`` command line by compendium.cli."""
    group = subparsers.add_parser("timings", help="commit the wall times of this machine's runs")
    commands = group.add_subparsers(dest="command", required=True)
    record = commands.add_parser(
        "record", help="write <results>/timings.csv (the paper's cost columns) from the record",
        description="Write <results>/timings.csv, the committed wall times the paper's cost "
                    "columns show, from this machine's timing record.")
    record.add_argument("--results", default="results", help="results root (default: results)")
    record.add_argument("--timings", default="build/timings",
                        help="the runs' timing record (default: build/timings)")
    record.set_defaults(handler=lambda args: record_command(args.results, args.timings))


def record_command(results: str | os.PathLike, timings_dir: str | os.PathLike) -> int:
    try:
        path, origin = write_summary(results, timings_dir)
    except FileNotFoundError as err:
        print(f"amcf timings: error: {err}", file=sys.stderr)
        return 2
    print(f"{path}: {len(origin['recorded'])} runs timed on this machine, "
          f"{len(origin['kept'])} kept from the committed summary, "
          f"{len(origin['missing'])} without a timing")
    if origin["missing"]:
        shown = ", ".join(origin["missing"][:5])
        more = f" and {len(origin['missing']) - 5} more" if len(origin["missing"]) > 5 else ""
        print(f"  without a timing: {shown}{more} (rerun their stages to time them)")
    return 0
