"""What an edit reruns: the consequences of dvc.yaml's deps, stated and checked.

A stage is stale after an edit of a file when one of its deps is that file or a folder that
holds it, and so is every stage downstream of a stale one (a dep of it is, or lies in, or
holds an output of the stale stage). The stages come from DVC itself (``foreach`` and
``${...}`` resolved against params.yaml), so this reads exactly what ``dvc status`` would.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _stages() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    from dvc.repo import Repo

    with contextlib.chdir(ROOT), Repo(str(ROOT)) as repo:
        return {s.addressing: (tuple(Path(d.def_path).as_posix() for d in s.deps),
                               tuple(Path(o.def_path).as_posix() for o in s.outs))
                for s in repo.index.stages if s.cmd}


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def stale_after_edit(path: str) -> set[str]:
    """The stages an edit of ``path`` (relative to the repository) makes stale."""
    stages = _stages()
    stale = {name for name, (deps, _) in stages.items() if any(_within(path, d) for d in deps)}
    todo = list(stale)
    while todo:
        outs = stages[todo.pop()][1]
        for name, (deps, _) in stages.items():
            if name not in stale and any(_within(d, o) or _within(o, d)
                                         for d in deps for o in outs):
                stale.add(name)
                todo.append(name)
    return stale


def _kind(kind: str) -> set[str]:
    return {s for s in _stages() if s.split("@")[0] == kind}


def _files(folder: str) -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*.py"))


def test_the_rule_itself_follows_outputs_downstream():
    # a dataset's raw folder reruns its prepare@ stage and everything that reads its output
    assert {"prepare@digits", "search@digits", "amcf@digits", "report", "paper"} <= \
        stale_after_edit("data/digits/x")
    assert "prepare@mnist" not in stale_after_edit("data/digits/x")
    # a stage's output reruns what reads it, not what it reads
    stale = stale_after_edit("build/sources/mnist/draw0.pt")
    assert {"search@digits", "amcf@digits"} <= stale and not _kind("pretrain") & stale
    assert stale_after_edit("paper/main.tex") == {"paper"}


@pytest.mark.parametrize("path", _files("compendium/report"), ids=lambda p: p.split("/")[-1])
def test_an_edit_to_the_reporting_reruns_only_report_and_paper(path):
    """The reporting: statistics, tables, macros, claims, the fitness study, the deviations,
    the paper's own figures and what writes them."""
    assert stale_after_edit(path) == {"report", "paper"}


@pytest.mark.parametrize("path", _files("compendium/methods/baselines"),
                         ids=lambda p: p.split("/")[-1])
def test_an_edit_to_a_baseline_reruns_only_the_baselines_report_and_paper(path):
    assert stale_after_edit(path) == _kind("baselines") | {"report", "paper"}


@pytest.mark.parametrize("path", _files("compendium/methods/ablations"),
                         ids=lambda p: p.split("/")[-1])
def test_an_edit_to_an_ablation_reruns_only_the_ablations_report_and_paper(path):
    assert stale_after_edit(path) == _kind("ablations") | {"report", "paper"}


def test_an_edit_to_the_mc_loss_reruns_the_training_but_no_data_preparation():
    stale = stale_after_edit("amcf/loss.py")
    assert not _kind("prepare") & stale
    for kind in ("pretrain", "search", "amcf", "baselines", "ablations"):
        assert _kind(kind) <= stale, kind
    assert {"report", "paper"} <= stale


def test_an_edit_to_the_swarm_reruns_the_searches_and_what_reads_them_not_the_pretraining():
    stale = stale_after_edit("amcf/search/pso.py")
    assert _kind("search") <= stale
    assert not (_kind("prepare") | _kind("pretrain")) & stale
