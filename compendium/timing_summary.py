"""The committed summary of wall-clock timings, and the measured ``make reproduce``.

The records are written by the runs (:mod:`compendium.timings`); this module reads them.

Two files, two lifetimes:

- the **record** (uncommitted): every published run writes
  ``build/timings/<run>.json``, where ``<run>`` is the run's directory relative to the results
  root (``digits/amcf/seed0``, ``digits/baselines/l2sp/seed1``,
  ``sources/mnist/draws/draw0``). It holds the run's wall time, its per-epoch seconds, the
  machine, and the sha256 of the ``metrics.json`` it belongs to. It is rewritten on every
  run, like any build output.
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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from amcf.io import read_json, write_json, write_text
from compendium.timings import machine, metrics_digest, record_path, search_run

SUMMARY_NAME = "timings.csv"
SUMMARY_COLUMNS = ("run", "wall_time_s", "shared_by", "machine", "metrics_sha256")
# the measured `make reproduce`: build/timings/reproduce.json, committed as
# <results>/reproduce-time.json by `amcf timings record` while it matches the results
REPRODUCE_RECORD = "reproduce.json"
REPRODUCE_NAME = "reproduce-time.json"


def _runs(results_dir: Path) -> dict[str, Path]:
    """Every timed result under ``results_dir``: its key -> the file its timing is tied to
    (a run's ``metrics.json``; a search's ``search.json``)."""
    found = {}
    for path in sorted(results_dir.rglob("metrics.json")):
        found[path.parent.relative_to(results_dir).as_posix()] = path
    for path in sorted(results_dir.glob("*/searches/seed*/search.json")):
        target, seed = path.parents[2].name, path.parent.name.removeprefix("seed")
        if seed.isdigit():
            found[search_run(target, int(seed))] = path
    # a search of the older one-search layout, and a method's own search (ALS)
    for path in [*results_dir.glob("*/search.json"), *results_dir.glob("*/*/*/search.json")]:
        if path.parents[1].name != "searches":
            found[f"{path.parent.relative_to(results_dir).as_posix()}/search"] = path
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
    """Wall time by run (searches included) for the results the summary was taken with."""
    root = Path(results_dir)
    tied = _runs(root)
    out = {}
    for run, row in read_summary(root).items():
        path = tied.get(run)
        if path is not None and metrics_digest(path) == row["metrics_sha256"]:
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


# ---- the measured `make reproduce` ---------------------------------------------------------

def results_digest(results_dir: str | os.PathLike) -> str:
    """One sha256 over every result file (path and bytes), wall-time files left out: a
    reproduction's time belongs to the results it produced."""
    root = Path(results_dir)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in (SUMMARY_NAME, REPRODUCE_NAME):
            continue
        digest.update(f"{rel}\0{metrics_digest(path)}\n".encode())
    return digest.hexdigest()


def write_reproduce_record(timings_dir: str | os.PathLike, results_dir: str | os.PathLike,
                           started: float, setup_included: bool,
                           finished: float | None = None) -> Path:
    """Record one measured ``make reproduce``: from ``started`` (seconds since the epoch, taken
    before its set-up) to ``finished`` (default: now), tied to the results it left."""
    import datetime
    import time

    end = time.time() if finished is None else finished
    if end < started:
        raise ValueError(f"the reproduction ends ({end}) before it starts ({started}): pass the "
                         "start time `date +%s` printed before `make reproduce` began")
    return write_json(Path(timings_dir) / REPRODUCE_RECORD, {
        "command": "make reproduce",
        "wall_time_s": round(end - started, 1),
        "setup_included": bool(setup_included),
        "finished": datetime.datetime.fromtimestamp(end, datetime.UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "results_sha256": results_digest(results_dir),
    })


def read_reproduce_time(results_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The committed measured reproduction, or None when there is none or the results have
    changed since it was measured."""
    path = Path(results_dir) / REPRODUCE_NAME
    if not path.is_file():
        return None
    record = read_json(path)
    return record if record.get("results_sha256") == results_digest(results_dir) else None


def commit_reproduce_time(results_dir: str | os.PathLike,
                          timings_dir: str | os.PathLike) -> str:
    """Copy this machine's reproduce record into the results when it matches them; returns
    what happened ("recorded", "kept", "missing")."""
    path = Path(timings_dir) / REPRODUCE_RECORD
    if path.is_file():
        record = read_json(path)
        if record.get("results_sha256") == results_digest(results_dir):
            write_json(Path(results_dir) / REPRODUCE_NAME, record)
            return "recorded"
    return "kept" if read_reproduce_time(results_dir) is not None else "missing"


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
    repro = commands.add_parser(
        "reproduce", help="record the wall time of the `make reproduce` that just ended",
        description="Write build/timings/reproduce.json: the wall time of `make reproduce` from "
                    "the start time in --since (as `make reproduce` writes it) to now.")
    repro.add_argument("--since", required=True,
                       help="file holding the start (seconds since the epoch) and 1 when the "
                            "set-up ran within the measured time, else 0")
    repro.add_argument("--results", default="results", help="results root of the profile")
    repro.add_argument("--timings", default="build/timings", help="the timing record's folder")
    repro.set_defaults(handler=lambda args: reproduce_command(args.since, args.results,
                                                              args.timings))


def reproduce_command(since: str | os.PathLike, results: str | os.PathLike,
                      timings_dir: str | os.PathLike) -> int:
    fields = Path(since).read_text(encoding="utf-8").split() if Path(since).is_file() else []
    try:
        started, setup = float(fields[0]), fields[1:2] == ["1"]
    except (IndexError, ValueError):
        print(f"amcf timings: error: {since} should hold '<seconds since the epoch> <0|1>', "
              f"got {fields}; run `make reproduce`, which writes it", file=sys.stderr)
        return 2
    path = write_reproduce_record(timings_dir, results, started, setup)
    seconds = read_json(path)["wall_time_s"]
    print(f"{path}: make reproduce took {seconds / 60:.1f} min; `make timings` commits it")
    return 0


def record_command(results: str | os.PathLike, timings_dir: str | os.PathLike) -> int:
    try:
        path, origin = write_summary(results, timings_dir)
    except FileNotFoundError as err:
        print(f"amcf timings: error: {err}", file=sys.stderr)
        return 2
    print(f"{path}: {len(origin['recorded'])} runs timed on this machine, "
          f"{len(origin['kept'])} kept from the committed summary, "
          f"{len(origin['missing'])} without a timing")
    reproduce = commit_reproduce_time(results, timings_dir)
    print({"recorded": "the measured `make reproduce`: recorded from this machine",
           "kept": "the measured `make reproduce`: kept from the committed record",
           "missing": "no measured `make reproduce` matches these results (run it, then "
                      "`make timings`)"}[reproduce])
    if origin["missing"]:
        shown = ", ".join(origin["missing"][:5])
        more = f" and {len(origin['missing']) - 5} more" if len(origin["missing"]) > 5 else ""
        print(f"  without a timing: {shown}{more} (rerun their stages to time them)")
    return 0
