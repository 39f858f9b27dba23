"""Per-target results tables and the summary table, as data frames, CSV and booktabs LaTeX.

The CSV files carry the raw numbers (fractions, seconds); the LaTeX files show percentages.
Both come from the same data frame, so they cannot disagree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from amcf.io import write_text
from compendium.report.latex import (
    DASH,
    escape_latex,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_pm,
    fmt_signed_pct,
)
from compendium.report.stats import best_single_source, mean_std, paired_comparison

RESULT_COLUMNS = (
    "method", "label", "family", "n", "test_mean", "test_std", "best_test_mean", "best_test_std",
    "final_test_mean", "final_test_std", "val_mean", "reference", "delta", "p_value", "wins",
    "n_paired", "test_note", "model_epochs", "wall_time_s", "search_evaluations",
    "total_model_epochs", "total_wall_time_s",
)


def _methods_in_order(rows: pd.DataFrame) -> list[str]:
    order = rows.groupby("method")["order"].first().reset_index()
    return order.sort_values(["order", "method"], kind="stable")["method"].tolist()


def results_table(
    frame: pd.DataFrame, target: str, candidates: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per method on ``target``: mean/std over seeds, paired Δ vs the best single
    source (picked on validation accuracy), the last epoch's test accuracy beside the
    validation-selected one, and training cost (mean per run; ``total_*`` include the search
    behind the run's scheme, see :func:`compendium.report.collect.collect`)."""
    rows = frame[frame["target"] == target]
    if rows.empty:
        raise ValueError(f"no results for target {target!r}; collected targets: "
                         f"{sorted(frame['target'].unique())}")
    reference = best_single_source(frame, target, candidates)
    out = []
    for method in _methods_in_order(rows):
        runs = rows[rows["method"] == method]
        test, best = mean_std(runs["test_acc"]), mean_std(runs["best_test_acc"])
        row = {
            "method": method,
            "label": runs["label"].iloc[0],
            "family": runs["family"].iloc[0],
            "n": test.n,
            "test_mean": test.mean,
            "test_std": test.std,
            "best_test_mean": best.mean,
            "best_test_std": best.std,
            # NaN when a seed lacks its last epoch: a partial mean would mislead
            "final_test_mean": float(runs["final_test_acc"].mean(skipna=False)),
            "final_test_std": float(runs["final_test_acc"].std(skipna=False)),
            "val_mean": float(runs["val_acc"].mean()),
            "reference": reference or "",
            "delta": float("nan"),
            "p_value": float("nan"),
            "wins": pd.NA,
            "n_paired": pd.NA,
            "test_note": "",
            "model_epochs": float(runs["model_epochs"].mean()),
            # a dash unless every seed is timed (compendium.timings)
            "wall_time_s": float(runs["wall_time_s"].mean(skipna=False)),
            "search_evaluations": runs["search_evaluations"].iloc[0],
            "total_model_epochs": float(runs["total_model_epochs"].mean()),
            "total_wall_time_s": float(runs["total_wall_time_s"].mean(skipna=False)),
        }
        if reference and method != reference:
            cmp = paired_comparison(frame, target, method, reference)
            row.update(delta=cmp.mean_diff, p_value=cmp.p_value, wins=cmp.wins,
                       n_paired=cmp.n, test_note=cmp.note)
        out.append(row)
    table = pd.DataFrame(out, columns=list(RESULT_COLUMNS))
    for col in ("wins", "n_paired", "search_evaluations"):
        table[col] = table[col].astype("Int64")
    return table


def summary_table(frame: pd.DataFrame, candidates: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per method, one accuracy column pair per target, and means over targets
    (only for methods that ran on every target, so the means compare like with like)."""
    targets = sorted(frame["target"].unique())
    per_target = {t: results_table(frame, t, candidates).set_index("method") for t in targets}
    out = []
    for method in _methods_in_order(frame):
        row: dict = {"method": method, "label": frame.loc[frame.method == method, "label"].iloc[0],
                     "family": frame.loc[frame.method == method, "family"].iloc[0]}
        present = [t for t in targets if method in per_target[t].index]
        for t in targets:
            rec = per_target[t].loc[method] if t in present else None
            row[f"{t}:test_mean"] = rec["test_mean"] if rec is not None else float("nan")
            row[f"{t}:test_std"] = rec["test_std"] if rec is not None else float("nan")
        complete = len(present) == len(targets)
        recs = [per_target[t].loc[method] for t in present]
        nan = float("nan")
        row["mean_test"] = sum(r["test_mean"] for r in recs) / len(recs) if complete else nan
        row["mean_best_test"] = (
            sum(r["best_test_mean"] for r in recs) / len(recs) if complete else nan
        )
        # the reference itself differs from the reference by exactly zero
        deltas = [0.0 if r["reference"] == method else r["delta"] for r in recs]
        deltas = [d for d in deltas if not pd.isna(d)]
        row["mean_delta"] = sum(deltas) / len(deltas) if complete and deltas else float("nan")
        row["targets_above_reference"] = sum(d > 0 for d in deltas)
        row["targets_compared"] = len(deltas)
        out.append(row)
    return pd.DataFrame(out)


def _tabular(header: list[str], align: str, body: list[tuple[list[str], str]]) -> str:
    """Rows come as (cells, family); a rule separates families."""
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + r" \\",
             "\\midrule"]
    family = None
    for cells, fam in body:
        if family is not None and fam != family:
            lines.append("\\midrule")
        family = fam
        lines.append(" & ".join(cells) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def results_table_latex(table: pd.DataFrame) -> str:
    """A booktabs tabular of :func:`results_table` (accuracies in %, Δ in points)."""
    header = ["Method", "Test acc.\\ (\\%)", "Final (\\%)", "Best-test$^\\dagger$ (\\%)",
              "$\\Delta$ (pp)", "$p$", "Wins", "Model-epochs$^\\ddagger$", "Wall (s)$^\\ddagger$",
              "Fitness runs"]
    body = []
    for r in table.itertuples(index=False):
        is_ref = r.method == r.reference
        delta = "ref." if is_ref else fmt_signed_pct(r.delta)
        wins = DASH if pd.isna(r.wins) else f"{r.wins}/{r.n_paired}"
        cells = [escape_latex(r.label), fmt_pm(r.test_mean, r.test_std),
                 fmt_pm(r.final_test_mean, r.final_test_std),
                 fmt_pm(r.best_test_mean, r.best_test_std), delta,
                 DASH if is_ref else fmt_p(r.p_value), DASH if is_ref else wins,
                 fmt_num(r.total_model_epochs), fmt_num(r.total_wall_time_s, 1),
                 fmt_num(r.search_evaluations)]
        body.append((cells, r.family))
    return _tabular(header, "l" + "r" * (len(header) - 1), body)


def summary_table_latex(summary: pd.DataFrame) -> str:
    """A booktabs tabular of :func:`summary_table`."""
    targets = [c.split(":")[0] for c in summary.columns if c.endswith(":test_mean")]
    header = (["Method"] + [f"\\texttt{{{escape_latex(t)}}}" for t in targets]
              + ["Mean", "Mean best-test$^\\dagger$", "Mean $\\Delta$ (pp)", "Above ref."])
    body = []
    for r in summary.to_dict("records"):
        cells = [escape_latex(r["label"])]
        cells += [fmt_pm(r[f"{t}:test_mean"], r[f"{t}:test_std"]) for t in targets]
        cells += [fmt_pct(r["mean_test"]), fmt_pct(r["mean_best_test"]),
                  fmt_signed_pct(r["mean_delta"]),
                  f"{r['targets_above_reference']}/{r['targets_compared']}"
                  if r["targets_compared"] else DASH]
        body.append((cells, r["family"]))
    return _tabular(header, "l" + "r" * (len(header) - 1), body)


def slug(name: str) -> str:
    """A file-name-safe form of a target name."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-").lower() or "target"


def write_tables(
    frame: pd.DataFrame, out_dir: str | os.PathLike, candidates: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write ``results-<target>.{csv,tex}`` and ``summary.{csv,tex}`` into ``out_dir``."""
    out = Path(out_dir)
    targets = sorted(frame["target"].unique())
    slugs = [slug(t) for t in targets]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"targets {targets} give clashing file names {slugs}; rename a target")
    written: dict[str, Path] = {}
    for target in sorted(frame["target"].unique()):
        table = results_table(frame, target, candidates)
        stem = out / f"results-{slug(target)}"
        written[f"{target}.csv"] = write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
        written[f"{target}.tex"] = write_text(stem.with_suffix(".tex"), results_table_latex(table))
    summary = summary_table(frame, candidates)
    written["summary.csv"] = write_text(out / "summary.csv", summary.to_csv(index=False))
    written["summary.tex"] = write_text(out / "summary.tex", summary_table_latex(summary))
    return written
