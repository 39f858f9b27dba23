"""Does the committed ``dvc.lock`` describe the committed code, params and results?

``dvc status`` mixes two different things: a stage whose committed inputs (code, notebooks,
params, its command) or committed outputs (``results/``, ``paper/``) no longer match the lock,
which means the committed results are stale; and outputs that are simply not there (a fresh
clone has no ``build/`` and no ``data/``), which ``dvc repro`` will rebuild from the lock.
:func:`stale_stages` reports only the first kind, so CI can stop on a stale lock before it
reproduces anything.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def _tracked(root: Path) -> set[str]:
    """Paths git tracks under ``root`` (files, and every folder above one)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    files = [f for f in out.stdout.decode().split("\0") if f]
    tracked = set(files)
    for f in files:
        parts = f.split("/")
        tracked.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return tracked


def _locked_stages(root: Path) -> set[str]:
    lock = root / "dvc.lock"
    if not lock.is_file():
        return set()
    return set((yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}))


def _defined_stages(repo) -> list[str]:
    """The stages dvc.yaml defines (names relative to the working directory; run stages only)."""
    return [s.addressing for s in repo.index.stages if s.cmd]


def _describe(kind: str, changes: dict[str, Any], tracked: set[str], root: Path) -> list[str]:
    problems = []
    for path, status in changes.items():
        rel = os.path.relpath(path, root) if os.path.isabs(path) else path
        if isinstance(status, dict):  # a params file: {param: status}
            problems += [f"param {rel}:{name} {what}" for name, what in status.items()]
        elif rel in tracked:
            problems.append(f"{kind} {rel} {status}")
        # untracked paths (build/, data/) are products: missing or rebuilt locally, never
        # a sign that the committed results are stale
    return problems


def stale_stages(root: str | os.PathLike = ".") -> dict[str, list[str]]:
    """stage -> what differs from dvc.lock among its committed inputs, command and outputs."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    tracked = _tracked(root)
    locked = _locked_stages(root)
    stale: dict[str, list[str]] = {}
    # stage names are relative to the working directory
    with contextlib.chdir(root), Repo(str(root)) as repo:
        names = _defined_stages(repo)
        status = repo.status()
    for name in names:
        if name not in locked:
            stale[name] = ["not in dvc.lock (it has never been run, or the lock was not "
                           "committed)"]
    for name in sorted(locked - set(names)):
        stale[name] = ["in dvc.lock, but dvc.yaml defines no such stage any more (an earlier "
                       "design's entry, which DVC never removes): `amcf pipeline check-lock "
                       "--prune` removes it"]
    for name, entries in status.items():
        if name in stale:
            continue
        problems = []
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed", ...
                problems.append(entry)
            elif "changed deps" in entry:
                problems += _describe("dependency", entry["changed deps"], tracked, root)
            elif "changed outs" in entry:
                problems += _describe("output", entry["changed outs"], tracked, root)
        if problems:
            stale[name] = problems
    return stale


# the stages whose results the analysis plan governs: every training stage of a target, and
# the report that draws the conclusions (compendium/plan.py)
PLAN_GOVERNED = ("search", "amcf", "baselines", "ablations", "report")


def plan_mismatches(lock: Mapping[str, Any], plan: Mapping[str, Any],
                    kinds: tuple[str, ...] = PLAN_GOVERNED) -> dict[str, str]:
    """stage -> why its ``dvc.lock`` entry was not produced under ``plan`` (params.yaml's
    ``analysis_plan`` now): an entry that records no plan, or another one, holds results
    made before the plan's last change. A kind of stage with no entry at all is reported too."""
    stages = (lock or {}).get("stages", {})
    problems: dict[str, str] = {}
    for kind in kinds:
        if not any(name.split("@")[0] == kind for name in stages):
            problems[kind] = "no entry in dvc.lock: its results were never recorded"
    for name, entry in stages.items():
        if name.split("@")[0] not in kinds:
            continue
        recorded = ((entry or {}).get("params") or {}).get("params.yaml", {}).get(
            "analysis_plan")
        if recorded is None:
            problems[name] = ("records no analysis plan: its results predate the plan; rerun "
                              "it (dvc repro) and commit dvc.lock")
        elif recorded != dict(plan):
            keys = sorted(k for k in {*recorded, *plan} if recorded.get(k) != plan.get(k))
            problems[name] = (f"records another analysis plan (differs in {', '.join(keys)}): "
                              "its results predate the plan's last change; rerun it "
                              "(dvc repro) and commit dvc.lock")
    return problems


def orphan_entries(root: str | os.PathLike = ".") -> list[str]:
    """The stages ``dvc.lock`` records that ``dvc.yaml`` no longer defines."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    with contextlib.chdir(root), Repo(str(root)) as repo:
        names = _defined_stages(repo)
    return sorted(_locked_stages(root) - set(names))


def prune_lock(root: str | os.PathLike = ".") -> list[str]:
    """Remove :func:`orphan_entries` from ``dvc.lock`` (DVC keeps the entries of stages that
    were renamed or dropped for ever); every other entry keeps its bytes. Returns the removed."""
    # DVC's own parser and dumper, as when it writes the lock: other entries keep their bytes
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    from amcf.io import write_text

    root = Path(root).resolve()
    orphans = orphan_entries(root)
    if orphans:
        path = root / "dvc.lock"
        lock = parse_yaml_for_update(path.read_text(encoding="utf-8"), path)
        for name in orphans:
            del lock["stages"][name]
        write_text(path, dumps_yaml(lock))
    return orphans


def main(root: str | os.PathLike = ".", prune: bool = False) -> int:
    """``amcf pipeline check-lock``: 0 when dvc.lock matches, 1 with the stale stages listed.
    With ``prune``, entries of stages that dvc.yaml no longer defines are removed first."""
    if prune:
        for name in prune_lock(root):
            print(f"removed from dvc.lock: {name} (dvc.yaml defines no such stage)")
    stale = stale_stages(root)
    for name, problems in stale.items():
        print(f"stale: {name}: " + "; ".join(problems))
    if stale:
        print(f"dvc.lock does not match the committed code, params or results ({len(stale)} "
              "stage(s) above). Fix: run `dvc repro` and commit dvc.lock with the results it "
              "regenerates.")
        return 1
    print("dvc.lock matches the committed code, params, commands and results "
          "(outputs outside git, such as build/, may still be missing): ok")
    return 0
