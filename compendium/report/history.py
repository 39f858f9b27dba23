"""The design's history as one paragraph of the paper (``\\DesignHistory``), from the data file
``paper/history.yaml``: what changed after which results were seen, with the commits, and the
headline numbers of the earlier designs.

A data file rather than prose in ``main.tex``: the paper's body holds no typed number
(tests/test_paper.py), the numbers are checked against the commits they came from
(tests/test_history.py), and the sentence saying whether the ensemble was at or above AMCF on
every target is computed from them, not written.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from compendium.report.latex import escape_latex, fmt_p, fmt_pct, fmt_signed_pct

HISTORY_FILE = "history.yaml"


class Pooled(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: float
    low: float
    high: float
    # None: a descriptive row (pooled rows are outside the Holm family since the analysis plan)
    p_holm: float | None = None
    verdict: str


class Design(BaseModel):
    """An earlier design and its headline numbers (fractions)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    numbers_from: str = Field(pattern=r"^[0-9a-f]{7,40}$")
    targets: list[str] = Field(min_length=1)
    setting: str
    amcf: dict[str, float]
    ensemble: dict[str, float]
    pooled: dict[str, Pooled] = {}


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commit: str = Field(pattern=r"^[0-9a-f]{7,40}$")
    date: datetime.date
    change: str


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")
    earlier: list[Design] = []
    changes: list[Change] = []


def read_history(path: str | os.PathLike, profile: str) -> History | None:
    """The profile's history from ``path`` (None when the file or the profile has none)."""
    path = Path(path)
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path} should map profile names to their history, got "
                         f"{type(data).__name__}")
    entry = data.get(profile)
    if entry is None:
        return None
    for design in entry.get("earlier", []):
        missing = [t for t in design.get("targets", [])
                   if t not in design.get("amcf", {}) or t not in design.get("ensemble", {})]
        if missing:
            raise ValueError(f"{path}: {design.get('name')!r} lacks AMCF's or the ensemble's "
                             f"mean on {missing}; give both for every target it lists")
    return History.model_validate(entry)


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _tt(name: str) -> str:
    return f"\\texttt{{{escape_latex(name)}}}"


def ensemble_sentence(design: Design) -> str:
    """Where the ensemble was at or above AMCF, computed from the design's means."""
    above = [t for t in design.targets if design.ensemble[t] >= design.amcf[t]]
    pairs = _join([f"{_tt(t)} {fmt_pct(design.ensemble[t])} against "
                   f"{fmt_pct(design.amcf[t])}" for t in design.targets])
    if len(above) == len(design.targets):
        head = "the independent ensemble was at or above AMCF on every target"
    elif not above:
        head = "AMCF was above the independent ensemble on every target"
    else:
        head = f"the independent ensemble was at or above AMCF on {_join([_tt(t) for t in above])}"
    return f"{head} (ensemble against AMCF, test accuracy in \\%: {pairs})"


POOLED_NAMES = {"ensemble": "the ensemble", "best-single-source": "the best single source"}


def _pooled_text(design: Design) -> str:
    def p_text(p: float) -> str:
        text = fmt_p(p)
        return f"$p$ {text}" if text.startswith("$") else f"$p = {text}$"

    parts = [f"AMCF minus {POOLED_NAMES.get(b, escape_latex(b))} was "
             f"{fmt_signed_pct(r.mean)} points (95\\% interval {fmt_signed_pct(r.low)} to "
             f"{fmt_signed_pct(r.high)}, "
             + (f"Holm-adjusted {p_text(r.p_holm)}, " if r.p_holm is not None else "")
             + f"{escape_latex(r.verdict)})" for b, r in design.pooled.items()]
    return f"; pooled over its targets, {_join(parts)}" if parts else ""


def history_paragraph(history: History | None, profile: str) -> str:
    """The paragraph \\DesignHistory: the changes in order, then each earlier design."""
    if history is None or not (history.changes or history.earlier):
        return (f"\\texttt{{paper/{HISTORY_FILE}}} records no change of the "
                f"\\texttt{{{escape_latex(profile)}}} profile's design.")
    changes = [f"{escape_latex(c.change.strip())} (commit \\texttt{{{c.commit}}}, "
               f"{c.date.isoformat()})" for c in history.changes]
    text = ("The design of this profile changed after results had been seen, in this order: "
            + "; ".join(changes) + ".")
    for design in history.earlier:
        text += (f" In {escape_latex(design.name)} ({escape_latex(design.setting.strip())}; "
                 f"targets {_join([_tt(t) for t in design.targets])}; numbers from commit "
                 f"\\texttt{{{design.numbers_from}}}), {ensemble_sentence(design)}"
                 f"{_pooled_text(design)}.")
    return text


def history_macros(paper_dir: str | os.PathLike, profile: str) -> dict[str, Any]:
    """``DesignHistory`` for ``profile`` from ``paper_dir/history.yaml``."""
    return {"DesignHistory": history_paragraph(
        read_history(Path(paper_dir) / HISTORY_FILE, profile), profile)}
