"""The design's history (paper/history.yaml -> \\DesignHistory): every number matches the
commit it names, and the sentences about the ensemble follow the numbers."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from compendium.report.history import (
    Design,
    ensemble_sentence,
    history_macros,
    history_paragraph,
    read_history,
)

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "paper" / "history.yaml"


def _git_show(commit: str, path: str) -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
                          capture_output=True, text=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_every_number_is_the_one_its_commit_holds():
    history = read_history(HISTORY, "embedded")
    assert history is not None and history.earlier and history.changes
    for design in history.earlier:
        summary = _git_show(design.numbers_from, "paper/generated/tables/summary.csv")
        comparisons = _git_show(design.numbers_from, "paper/generated/tables/comparisons.csv")
        if summary is None or comparisons is None:
            pytest.skip(f"commit {design.numbers_from} is not in this clone's history")
        # a method's row over all its seeds, not the one restricted to the three-seed set
        means = {r["method"]: r for r in _rows(summary) if r.get("restricted") != "True"}
        for target in design.targets:
            assert design.amcf[target] == float(means["amcf"][f"{target}:test_mean"])
            assert design.ensemble[target] == float(means["ensemble"][f"{target}:test_mean"])
        assert sorted(design.targets) == sorted(
            c.split(":")[0] for c in means["amcf"] if c.endswith(":test_mean"))
        pooled = {r["method_b"]: r for r in _rows(comparisons)
                  if r["scope"] == "pooled" and r["method_a"] == "amcf"}
        for other, row in design.pooled.items():
            assert row.mean == float(pooled[other]["mean_diff"])
            assert (row.low, row.high) == (float(pooled[other]["ci_low"]),
                                           float(pooled[other]["ci_high"]))
            held = pooled[other]["p_holm"]
            assert row.p_holm == (float(held) if held else None)  # empty: descriptive
            assert row.verdict == pooled[other]["verdict"]


def test_the_commits_named_exist_and_come_in_order():
    history = read_history(HISTORY, "embedded")
    if _git_show(history.changes[0].commit, "params.yaml") is None:
        pytest.skip("this clone lacks the commits the history names")
    times = []
    for change in history.changes:
        proc = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor",
                               change.commit, "HEAD"], check=False)
        assert proc.returncode == 0, f"{change.commit} is not in this branch's history"
        shown = subprocess.run(["git", "-C", str(ROOT), "show", "-s", "--format=%ct %cs",
                                change.commit], capture_output=True, text=True, check=True)
        stamp, day = shown.stdout.split()
        assert day == change.date.isoformat(), change.commit
        times.append(int(stamp))
    assert times == sorted(times)  # "in this order": by the time each was committed
    # the change that made digits three-shot is the one that changed its training split
    three_shot = next(c for c in history.changes if "three-shot" in c.change)
    before = _git_show(f"{three_shot.commit}~1", "amcf/data/embedded/digits.py")
    after = _git_show(three_shot.commit, "amcf/data/embedded/digits.py")
    assert '"train": 30' in before and '"train": 3,' in after


def _design(amcf: dict, ensemble: dict) -> Design:
    return Design(name="d", numbers_from="abc1234", targets=list(amcf), setting="s",
                  amcf=amcf, ensemble=ensemble)


def test_the_ensemble_sentence_follows_the_numbers():
    assert ensemble_sentence(_design({"a": 0.5, "b": 0.6}, {"a": 0.5, "b": 0.7})).startswith(
        "the independent ensemble was at or above AMCF on every target")
    mixed = ensemble_sentence(_design({"a": 0.5, "b": 0.8}, {"a": 0.6, "b": 0.7}))
    assert mixed.startswith(r"the independent ensemble was at or above AMCF on \texttt{a} (")
    assert ensemble_sentence(_design({"a": 0.9}, {"a": 0.7})).startswith(
        "AMCF was above the independent ensemble on every target")


def test_the_paragraph_cites_every_commit_and_the_committed_file_renders():
    history = read_history(HISTORY, "embedded")
    text = history_macros(ROOT / "paper", "embedded")["DesignHistory"]
    for change in history.changes:
        assert f"\\texttt{{{change.commit}}}" in text
    assert "openmoji" in text and "from 12 to\n" not in text
    assert "97.5 against 96.0" in text  # digits, ensemble against AMCF, from the numbers
    assert history_paragraph(None, "paper").endswith(r"\texttt{paper} profile's design.")


def test_a_history_without_a_targets_numbers_is_refused(tmp_path):
    bad = tmp_path / "history.yaml"
    bad.write_text("p:\n  earlier:\n    - {name: d, numbers_from: abc1234, targets: [a, b],\n"
                   "       setting: s, amcf: {a: 0.5}, ensemble: {a: 0.5, b: 0.4}}\n")
    with pytest.raises(ValueError, match=r"lacks AMCF's or the ensemble's mean on \['b'\]"):
        read_history(bad, "p")
    assert read_history(bad, "other") is None
    assert read_history(tmp_path / "none.yaml", "p") is None
