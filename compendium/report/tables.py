"""Per-target results tables and the summary table, as data frames, CSV and booktabs LaTeX.

The CSV files carry the raw numbers (fractions, seconds); the LaTeX files show percentages.
Both come from the same data frame, so they cannot disagree.

Methods ran on different seeds (the decisive ones on every seed, the others on the first few),
and seeds differ in difficulty, so a mean over one seed set cannot sit beside a mean over
another. The written tables are therefore *paired*: their rows fall in seed groups, one per
seed set, each headed by its seeds, and a group whose seeds are fewer than AMCF's and the
reference's shows those two again, computed on the group's seeds only
(:func:`paired_results_table`, :func:`paired_summary_table`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
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
from compendium.report.stats import MeanStd, mean_std, paired_comparison, reference_source

RESULT_COLUMNS = (
    "method", "label", "family", "n", "test_mean", "test_std", "best_test_mean", "best_test_std",
    "final_test_mean", "final_test_std", "val_mean", "reference", "delta", "p_value", "wins",
    "n_paired", "test_note", "model_epochs", "wall_time_s", "search_evaluations",
    "total_model_epochs", "total_wall_time_s", "seeds",
)
# the paired tables' extra columns: the seed group (0: the most seeds) and whether the row is a
# method shown again on a smaller group's seeds
GROUP_COLUMNS = ("seed_group", "restricted")
ANCHOR = "amcf"  # shown again, on its seeds, in every group that lacks it


def seeds_text(seeds, dash: str = "-") -> str:
    """Seeds as a reader reads them: '0-9' for a run of consecutive seeds, else a list."""
    values = sorted(int(s) for s in seeds)
    if not values:
        return ""
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}{dash}{values[-1]}"
    return ", ".join(str(v) for v in values)


def _methods_in_order(rows: pd.DataFrame) -> list[str]:
    order = rows.groupby("method")["order"].first().reset_index()
    return order.sort_values(["order", "method"], kind="stable")["method"].tolist()


def _method_row(frame: pd.DataFrame, rows: pd.DataFrame, method: str,
                reference: str | None) -> dict:
    """One method's row of a results table from ``rows`` (one target's runs); its Δ pairs it
    with ``reference`` on the seeds both have in ``frame``."""
    runs = rows[rows["method"] == method]
    target = runs["target"].iloc[0]
    test = mean_std(runs["test_acc"])
    # runs that read the test split at the selected epochs only have no best-over-epochs
    best = (mean_std(runs["best_test_acc"]) if runs["best_test_acc"].notna().all()
            else MeanStd(float("nan"), float("nan"), 0))
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
        "seeds": seeds_text(runs["seed"]),
    }
    if reference and method != reference:
        cmp = paired_comparison(frame, target, method, reference)
        row.update(delta=cmp.mean_diff, p_value=cmp.p_value, wins=cmp.wins,
                   n_paired=cmp.n, test_note=cmp.note)
    return row


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
    reference = reference_source(frame, target, candidates)
    out = [_method_row(frame, rows, method, reference) for method in _methods_in_order(rows)]
    table = pd.DataFrame(out, columns=list(RESULT_COLUMNS))
    for col in ("wins", "n_paired", "search_evaluations"):
        table[col] = table[col].astype("Int64")
    return table


def _summary_row(method: str, label: str, family: str, targets: Sequence[str],
                 recs: Mapping[str, Mapping | None]) -> dict:
    """One summary row from the method's per-target results rows (None where it did not run):
    means over targets only when it ran on every target, so the means compare like with like."""
    row: dict = {"method": method, "label": label, "family": family}
    present = [t for t in targets if recs.get(t) is not None]
    for t in targets:
        rec = recs.get(t)
        row[f"{t}:test_mean"] = rec["test_mean"] if rec is not None else float("nan")
        row[f"{t}:test_std"] = rec["test_std"] if rec is not None else float("nan")
        row[f"{t}:seeds"] = rec["seeds"] if rec is not None else ""
    complete = len(present) == len(targets)
    done = [recs[t] for t in present]
    nan = float("nan")
    row["mean_test"] = sum(r["test_mean"] for r in done) / len(done) if complete else nan
    row["mean_best_test"] = (
        sum(r["best_test_mean"] for r in done) / len(done) if complete else nan
    )
    # the reference itself differs from the reference by exactly zero
    deltas = [0.0 if r["reference"] == method else r["delta"] for r in done]
    deltas = [d for d in deltas if not pd.isna(d)]
    row["mean_delta"] = sum(deltas) / len(deltas) if complete and deltas else float("nan")
    row["targets_above_reference"] = sum(d > 0 for d in deltas)
    row["targets_compared"] = len(deltas)
    return row


def summary_table(frame: pd.DataFrame, candidates: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per method (each on its own seeds), one accuracy column pair per target, and
    means over targets (only for methods that ran on every target). Rows on different seeds
    do not compare: :func:`paired_summary_table` is the table to read side by side."""
    targets = sorted(frame["target"].unique())
    per_target = {t: results_table(frame, t, candidates).set_index("method") for t in targets}
    out = []
    for method in _methods_in_order(frame):
        first = frame[frame.method == method].iloc[0]
        recs = {t: per_target[t].loc[method] if method in per_target[t].index else None
                for t in targets}
        out.append(_summary_row(method, first["label"], first["family"], targets, recs))
    return pd.DataFrame(out)


# ---- paired tables: rows compared only on the seeds they share -----------------------------

def _seed_sets(frame: pd.DataFrame) -> dict[tuple[str, str], frozenset[int]]:
    """(target, method) -> the seeds it ran."""
    return {key: frozenset(int(s) for s in seeds)
            for key, seeds in frame.groupby(["target", "method"])["seed"]}


def _ordered(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the registry's method order (baselines, ablations, AMCF), as the tables show."""
    order = frame.groupby("method")["order"].first()
    key = table["method"].map(order)
    return table.assign(_order=key).sort_values(["_order", "method"], kind="stable").drop(
        columns="_order").reset_index(drop=True)


def paired_results_table(frame: pd.DataFrame, target: str,
                         candidates: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`results_table` in seed groups: the methods that ran on the same seeds form a group
    (``seed_group`` 0 holds the most seeds), and every group that lacks AMCF or the reference
    shows them again computed on the group's seeds only (``restricted``), so that every mean
    in a group is over the same seeds. Δ stays paired with the reference on common seeds."""
    base = results_table(frame, target, candidates)
    rows = frame[frame["target"] == target]
    sets = {m: s for (t, m), s in _seed_sets(rows).items()}
    reference = base["reference"].iloc[0] or None
    groups = sorted(set(sets.values()), key=lambda s: (-len(s), sorted(s)))
    parts = []
    for g, seeds in enumerate(groups):
        members = base[base["method"].map(sets) == seeds].assign(seed_group=g, restricted=False)
        sub = rows[rows["seed"].isin(seeds)]
        extra = [_method_row(sub, sub, m, reference)
                 for m in dict.fromkeys([reference, ANCHOR])
                 if m in sets and m not in set(members["method"]) and seeds <= sets[m]]
        shown = pd.DataFrame(extra, columns=list(RESULT_COLUMNS)).assign(
            seed_group=g, restricted=True)
        parts.append(_ordered(frame, pd.concat([members, shown], ignore_index=True)
                              if extra else members))
    table = pd.concat(parts, ignore_index=True)
    for col in ("wins", "n_paired", "search_evaluations"):
        table[col] = table[col].astype("Int64")
    table["restricted"] = table["restricted"].astype(bool)
    return table


def paired_summary_table(frame: pd.DataFrame,
                         candidates: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`summary_table` in seed groups: methods with the same seeds on every target form a
    group, and a group that lacks AMCF or a target's reference shows them again on the
    group's seeds only (``restricted``), so that the rows of a group compare like with like."""
    targets = sorted(frame["target"].unique())
    sets = _seed_sets(frame)
    signature = {m: tuple(sets.get((t, m), frozenset()) for t in targets)
                 for m in frame["method"].unique()}
    references = {t: reference_source(frame, t, candidates) for t in targets}
    anchors = [m for m in dict.fromkeys([*references.values(), ANCHOR]) if m in signature]
    full = summary_table(frame, candidates)
    groups = sorted(set(signature.values()),
                    key=lambda sig: (-sum(len(s) for s in sig), [sorted(s) for s in sig]))
    parts = []
    for g, sig in enumerate(groups):
        members = full[full["method"].map(signature) == sig].assign(seed_group=g,
                                                                    restricted=False)
        extra = []
        for m in anchors:
            own = signature[m]
            if m in set(members["method"]) or not all(s <= o for s, o in zip(sig, own,
                                                                               strict=True)):
                continue
            recs = {}
            for t, seeds in zip(targets, sig, strict=True):
                sub = frame[(frame["target"] == t) & frame["seed"].isin(seeds)]
                recs[t] = _method_row(sub, sub, m, references[t]) if seeds else None
            first = frame[frame.method == m].iloc[0]
            extra.append(_summary_row(m, first["label"], first["family"], targets, recs))
        shown = pd.DataFrame(extra).assign(seed_group=g, restricted=True)
        parts.append(_ordered(frame, pd.concat([members, shown], ignore_index=True)
                              if extra else members))
    table = pd.concat(parts, ignore_index=True)
    table["restricted"] = table["restricted"].astype(bool)
    return table


def _group_header(seeds_by_target: Mapping[str, str], width: int) -> str:
    """The row that opens a seed group: its seeds (per target where they differ)."""
    texts = {t: s.replace("-", "--") for t, s in seeds_by_target.items() if s}
    if len(set(texts.values())) == 1:
        words = f"Seeds {next(iter(texts.values()))}"
    else:
        words = "Seeds " + "; ".join(f"\\texttt{{{escape_latex(t)}}} {s}"
                                     for t, s in texts.items())
    return f"\\multicolumn{{{width}}}{{l}}{{\\emph{{{words}}}}} \\\\"


def _tabular(header: list[str], align: str,
             body: list[tuple[list[str], str, str | None]]) -> str:
    """Rows come as (cells, family, group header or None); a rule separates families, and a
    header row opens each seed group."""
    lines = [f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + r" \\",
             "\\midrule"]
    family, started = None, False
    for cells, fam, opens in body:
        if opens is not None:
            if started:
                lines.append("\\midrule")
            lines.append(opens)
        elif family is not None and fam != family:
            lines.append("\\midrule")
        family, started = fam, True
        lines.append(" & ".join(cells) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


RESTRICTED_MARK = ", on these seeds"


def _row_label(label: str, restricted: bool) -> str:
    return escape_latex(label) + (RESTRICTED_MARK if restricted else "")


def results_table_latex(table: pd.DataFrame) -> str:
    """A booktabs tabular of :func:`paired_results_table` (or of :func:`results_table`, in one
    group): accuracies in %, Δ in points."""
    header = ["Method", "Test acc.\\ (\\%)", "Final (\\%)", "Best-test$^\\dagger$ (\\%)",
              "$\\Delta$ (pp)", "$p$", "Wins", "Model-epochs$^\\ddagger$", "Wall (s)$^\\ddagger$",
              "Fitness runs"]
    grouped = "seed_group" in table.columns
    body, group = [], None
    for r in table.to_dict("records"):
        is_ref = r["method"] == r["reference"]
        delta = "ref." if is_ref else fmt_signed_pct(r["delta"])
        wins = DASH if pd.isna(r["wins"]) else f"{r['wins']}/{r['n_paired']}"
        cells = [_row_label(r["label"], grouped and r["restricted"]),
                 fmt_pm(r["test_mean"], r["test_std"]),
                 fmt_pm(r["final_test_mean"], r["final_test_std"]),
                 fmt_pm(r["best_test_mean"], r["best_test_std"]), delta,
                 DASH if is_ref else fmt_p(r["p_value"]), DASH if is_ref else wins,
                 fmt_num(r["total_model_epochs"]), fmt_num(r["total_wall_time_s"], 1),
                 fmt_num(r["search_evaluations"])]
        opens = None
        if grouped and r["seed_group"] != group:
            group = r["seed_group"]
            opens = _group_header({"": r["seeds"]}, len(header))
        body.append((cells, r["family"], opens))
    return _tabular(header, "l" + "r" * (len(header) - 1), body)


def summary_table_latex(summary: pd.DataFrame) -> str:
    """A booktabs tabular of :func:`paired_summary_table` (or of :func:`summary_table`)."""
    targets = [c.split(":")[0] for c in summary.columns if c.endswith(":test_mean")]
    header = (["Method"] + [f"\\texttt{{{escape_latex(t)}}}" for t in targets]
              + ["Mean", "Mean best-test$^\\dagger$", "Mean $\\Delta$ (pp)", "Above ref."])
    grouped = "seed_group" in summary.columns
    body, group = [], None
    for r in summary.to_dict("records"):
        cells = [_row_label(r["label"], grouped and r["restricted"])]
        cells += [fmt_pm(r[f"{t}:test_mean"], r[f"{t}:test_std"]) for t in targets]
        cells += [fmt_pct(r["mean_test"]), fmt_pct(r["mean_best_test"]),
                  fmt_signed_pct(r["mean_delta"]),
                  f"{r['targets_above_reference']}/{r['targets_compared']}"
                  if r["targets_compared"] else DASH]
        opens = None
        if grouped and r["seed_group"] != group:
            group = r["seed_group"]
            opens = _group_header({t: r[f"{t}:seeds"] for t in targets}, len(header))
        body.append((cells, r["family"], opens))
    return _tabular(header, "l" + "r" * (len(header) - 1), body)


def slug(name: str) -> str:
    """A file-name-safe form of a target name."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-").lower() or "target"


def write_tables(
    frame: pd.DataFrame, out_dir: str | os.PathLike, candidates: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write ``results-<target>.{csv,tex}`` and ``summary.{csv,tex}`` into ``out_dir``: the
    paired tables, each mean in a seed group over that group's seeds."""
    out = Path(out_dir)
    targets = sorted(frame["target"].unique())
    slugs = [slug(t) for t in targets]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"targets {targets} give clashing file names {slugs}; rename a target")
    written: dict[str, Path] = {}
    for target in sorted(frame["target"].unique()):
        table = paired_results_table(frame, target, candidates)
        stem = out / f"results-{slug(target)}"
        written[f"{target}.csv"] = write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
        written[f"{target}.tex"] = write_text(stem.with_suffix(".tex"), results_table_latex(table))
    summary = paired_summary_table(frame, candidates)
    written["summary.csv"] = write_text(out / "summary.csv", summary.to_csv(index=False))
    written["summary.tex"] = write_text(out / "summary.tex", summary_table_latex(summary))
    return written
