"""Every sentence of the paper that states a finding, generated from the paired comparisons.

The paper's text holds no verdict of its own: it \\input-s ``generated/claims.tex``, whose
macros are whole sentences. When the numbers flip, the sentences flip with them ("higher",
"lower", "no clear difference" come from :func:`compendium.report.stats.verdict` on Holm-adjusted
p-values).

One Holm family (see :func:`claim_comparisons`): every comparison the paper reports, each pair
on each target and pooled. The pairs fall in two groups, which the tables label but which share
the correction: the *decisive* comparisons (AMCF against the independent ensemble, the best
single source and the ablations amcf-lam0, amcf-full, amcf-random; amcf-select against AMCF
and the ensemble), which run on every seed; and the *secondary* ablations (other lambdas,
fewer sources, the DML term), run on fewer seeds. Correcting over all of them means no verdict
depends on which comparisons one chose to call decisive.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from amcf.io import write_text
from compendium.report.latex import escape_latex, fmt_num, fmt_p, fmt_signed_pct
from compendium.report.stats import (
    ALPHA,
    BEST_SINGLE,
    CONFIDENCE,
    DECISIVE_PAIRS,
    POOLED,
    comparison_table,
    decisive_pairs,
)

SECONDARY_PATTERN = re.compile(r"amcf-(lam(?!0\Z).+|k.+|dml)\Z")


@dataclass(frozen=True)
class Consequence:
    """What each verdict of one comparison means for the method, in words."""

    higher: str
    lower: str
    unclear: str


# what a verdict on each decisive pair says about AMCF (a = the first method of the pair)
CONSEQUENCES: dict[tuple[str, str], Consequence] = {
    ("amcf", "ensemble"): Consequence(
        "collaboration adds accuracy beyond what more models give on their own",
        "summing independently fine-tuned models does better, so AMCF's gain over one source "
        "comes from having more models, not from collaborating",
        "these runs cannot tell the collaborative method apart from simply having more models"),
    ("amcf", BEST_SINGLE): Consequence(
        "combining the sources improves on the best single one",
        "the best single source, fine-tuned alone, does better than combining the sources",
        "these runs show no accuracy gain from combining the sources"),
    ("amcf", "amcf-lam0"): Consequence(
        "the collaborative term adds accuracy to joint training of the same models",
        "the collaborative term costs accuracy",
        "these runs give no evidence that the collaborative term matters"),
    ("amcf", "amcf-full"): Consequence(
        "freezing the searched layers beats fine-tuning every layer",
        "fine-tuning every layer beats the searched scheme, so the search does not pay off",
        "the searched scheme cannot be told apart from fine-tuning every layer"),
    ("amcf", "amcf-random"): Consequence(
        "the search finds better schemes than chance",
        "a random scheme does better than the searched one",
        "the searched scheme cannot be told apart from a random one: the search is not shown "
        "to add anything"),
    ("amcf-select", "amcf"): Consequence(
        "choosing and weighting the sources on validation data improves on AMCF",
        "choosing and weighting the sources on validation data makes AMCF worse",
        "choosing the sources on validation data makes no clear difference to AMCF"),
    ("amcf-select", "ensemble"): Consequence(
        "with its sources chosen on validation data, AMCF beats the independent ensemble",
        "even with its sources chosen on validation data, AMCF trails the independent ensemble",
        "with its sources chosen on validation data, AMCF cannot be told apart from the "
        "independent ensemble"),
}

# fixed macro names for the decisive pairs, so main.tex can cite them whether or not they ran
PAIR_MACROS = {
    ("amcf", "ensemble"): "ClaimEnsemble",
    ("amcf", BEST_SINGLE): "ClaimBestSingle",
    ("amcf", "amcf-lam0"): "ClaimLamZero",
    ("amcf", "amcf-full"): "ClaimFullScheme",
    ("amcf", "amcf-random"): "ClaimRandomScheme",
    ("amcf-select", "amcf"): "ClaimSelectVsAmcf",
    ("amcf-select", "ensemble"): "ClaimSelectVsEnsemble",
}


def secondary_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """AMCF against each ablation outside the decisive set (run on fewer seeds)."""
    if "amcf" not in set(frame["method"]):
        return []
    found = sorted(m for m in set(frame["method"]) if SECONDARY_PATTERN.match(m))
    return [("amcf", m) for m in found]


def claim_comparisons(frame: pd.DataFrame, column: str = "test_acc") -> pd.DataFrame:
    """The decisive and the secondary comparisons in one table, Holm-corrected as one family,
    with a ``group`` column ("decisive" / "secondary")."""
    decisive, secondary = decisive_pairs(frame), secondary_pairs(frame)
    if not decisive and not secondary:
        raise ValueError("no comparison can be made: the results hold no AMCF runs beside a "
                         "baseline or ablation; run the amcf, baselines and ablations stages")
    table = comparison_table(frame, [*decisive, *secondary], column)
    pairs = list(zip(table["method_a"], table["method_b"], strict=True))
    table["group"] = ["decisive" if pair in decisive else "secondary" for pair in pairs]
    return table


def _with_group(comparisons: pd.DataFrame) -> pd.DataFrame:
    """A table straight from comparison_table holds the decisive group only."""
    return comparisons if "group" in comparisons else comparisons.assign(group="decisive")


# names that read better inside a sentence than the table's labels
IN_TEXT = {BEST_SINGLE: "the best single source", "ensemble": "the independent ensemble",
           "amcf-lam0": "AMCF without its collaborative term ($\\lambda = 0$)",
           "amcf-full": "AMCF with every layer fine-tuned",
           "amcf-random": "AMCF with a random freezing scheme",
           "amcf-select": "AMCF with its sources chosen on validation data"}


def _label(labels: Mapping[str, str], method: str) -> str:
    return IN_TEXT.get(method) or escape_latex(labels.get(method, method))


def _p_text(p: float) -> str:
    if not math.isfinite(p):
        return "no $p$-value (too few seeds, or the same difference on every seed)"
    text = fmt_p(p)
    return f"Holm-adjusted $p$ {text}" if text.startswith("$<$") else f"Holm-adjusted $p = {text}$"


def _interval_text(row: pd.Series) -> str:
    level = f"{100 * CONFIDENCE:.0f}\\%"
    if not math.isfinite(row["ci_low"]):
        return f"{fmt_signed_pct(row['mean_diff'])} percentage points (no {level} interval)"
    return (f"{fmt_signed_pct(row['mean_diff'])} percentage points (unadjusted {level} "
            f"confidence interval {fmt_signed_pct(row['ci_low'])} to "
            f"{fmt_signed_pct(row['ci_high'])}; {_p_text(row['p_holm'])})")


def _targets_text(per_target: pd.DataFrame, name_a: str) -> str:
    """'Per target, A is higher on x, lower on y and not clearly different on z.'"""
    groups = []
    for verdict_, words in (("higher", "higher on"), ("lower", "lower on"),
                            ("no clear difference", "not clearly different on")):
        names = [f"\\texttt{{{escape_latex(t)}}}"
                 for t in per_target.loc[per_target["verdict"] == verdict_, "scope"]]
        if names:
            groups.append(f"{words} {', '.join(names)}")
    if not groups:
        return ""
    joined = groups[0] if len(groups) == 1 else ", ".join(groups[:-1]) + " and " + groups[-1]
    return f" Per target, {name_a} is {joined}."


def pair_sentence(rows: pd.DataFrame, labels: Mapping[str, str],
                  consequence: Consequence | None = None) -> str:
    """The sentence(s) stating one comparison: the pooled verdict with its interval, what it
    means (when the pair has a stated consequence), and the verdict on each target."""
    pooled = rows[rows["scope"] == POOLED]
    per_target = rows[rows["scope"] != POOLED]
    a, b = rows["method_a"].iloc[0], rows["method_b"].iloc[0]
    name_a, name_b = _label(labels, a), _label(labels, b)
    if pooled.empty:
        return f"No pooled comparison of {name_a} with {name_b} could be made."
    row = pooled.iloc[0]
    targets = len(per_target)
    where = f"over the {targets} target{'s' if targets != 1 else ''}"
    if row["verdict"] == "higher":
        head = f"{name_a} is more accurate than {name_b}"
        meaning = consequence.higher if consequence else ""
    elif row["verdict"] == "lower":
        head = f"{name_a} is less accurate than {name_b}"
        meaning = consequence.lower if consequence else ""
    else:
        head = f"{name_a} and {name_b} show no clear difference in accuracy"
        meaning = consequence.unclear if consequence else ""
    sentence = (f"{head}: the mean paired difference {where} is {_interval_text(row)}"
                f"{', so ' + meaning if meaning else ''}.")
    return sentence + _targets_text(per_target, name_a)


def _not_run(pair: tuple[str, str], labels: Mapping[str, str]) -> str:
    return (f"The comparison of {_label(labels, pair[0])} with {_label(labels, pair[1])} was "
            "not run in this profile.")


def comparison_claims(comparisons: pd.DataFrame, labels: Mapping[str, str]) -> dict[str, str]:
    """One macro per decisive pair (a 'not run' sentence when it is absent) and one sentence
    per secondary ablation, joined in ``ClaimSecondaryAblations``."""
    comparisons = _with_group(comparisons)
    out = {}
    for pair, name in PAIR_MACROS.items():
        rows = comparisons[(comparisons["method_a"] == pair[0])
                           & (comparisons["method_b"] == pair[1])]
        out[name] = (_not_run(pair, labels) if rows.empty
                     else pair_sentence(rows, labels, CONSEQUENCES.get(pair)))
    secondary = comparisons[comparisons["group"] == "secondary"]
    sentences = [pair_sentence(rows, labels) for _, rows in
                 secondary.groupby(["method_a", "method_b"], sort=True)]
    out["ClaimSecondaryAblations"] = (" ".join(sentences) if sentences else
                                      "No further ablation was run in this profile.")
    return out


def headline_claim(comparisons: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """The abstract's finding: AMCF against the ensemble first, then the best single source."""
    def pooled_verdict(b: str) -> str | None:
        rows = comparisons[(comparisons["method_a"] == "amcf") & (comparisons["method_b"] == b)
                           & (comparisons["scope"] == POOLED)]
        return None if rows.empty else str(rows["verdict"].iloc[0])

    words = {"higher": "more accurate than", "lower": "less accurate than",
             "no clear difference": "not clearly different from"}
    parts = []
    for b in ("ensemble", BEST_SINGLE):
        verdict_ = pooled_verdict(b)
        if verdict_ is not None:
            parts.append(f"{words[verdict_]} {_label(labels, b)}")
    if not parts:
        return "AMCF was not compared with the ensemble or a single source in this profile."
    return (f"Pooled over targets and seeds, AMCF is {' and '.join(parts)} "
            f"(paired differences, Holm-adjusted at $\\alpha = {ALPHA:g}$).")


def cost_claim(frame: pd.DataFrame) -> str:
    """AMCF's cost including its search, against the independent ensemble's."""
    def mean_cost(method: str, column: str) -> float:
        return float(frame.loc[frame["method"] == method, column].mean(skipna=False))

    if "amcf" not in set(frame["method"]):
        return "No AMCF run was made in this profile."
    amcf_epochs = mean_cost("amcf", "total_model_epochs")
    text = (f"Counting the layer search behind its scheme, an AMCF run costs "
            f"{fmt_num(amcf_epochs)} model-epochs on average")
    if "ensemble" in set(frame["method"]):
        ens = mean_cost("ensemble", "total_model_epochs")
        text += (f", {amcf_epochs / ens:.1f} times the {fmt_num(ens)} of the independent "
                 "ensemble")
    wall = mean_cost("amcf", "total_wall_time_s")
    if math.isfinite(wall):
        text += f", and {fmt_num(wall, 1)} s of wall time"
        # each search is timed on its own (build/timings/<target>/search/seed<k>.json)
        search = (mean_cost("amcf", "search_wall_time_s") if "search_wall_time_s" in frame
                  else math.nan)
        if math.isfinite(search) and search > 0:
            text += f", of which the search took {fmt_num(search, 1)} s"
    else:
        text += "; its wall time including the search was not recorded for every run"
    return text + "."


def reproduction_claim(record: Mapping[str, object] | None) -> dict[str, str]:
    """The measured ``make reproduce`` (``<results>/reproduce-time.json``, see
    :func:`compendium.timings.read_reproduce_time`) in one sentence, ``ClaimReproduction``:
    its wall time, whether the set-up ran within it, and the machine and day. Nothing is
    estimated: without a record that matches the results, the sentence says so."""
    if not record:
        return {"ReproWallTime": "not measured", "ReproMachine": "no recorded machine",
                "ClaimReproduction": (
                    "No measured \\texttt{make reproduce} matches these results yet "
                    "(\\texttt{make reproduce} records its wall time, \\texttt{make "
                    "timings} commits it).")}
    seconds = float(record["wall_time_s"])
    when = (f"{seconds / 3600:.1f} hours" if seconds >= 3600 else
            f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} seconds")
    setup = ("set-up included" if record.get("setup_included")
             else "with the environment already set up")
    machine = escape_latex(record.get("machine") or "an unrecorded machine")
    day = escape_latex(record.get("finished") or "an unrecorded day")
    return {"ReproWallTime": when, "ReproMachine": machine,
            "ClaimReproduction": (f"A measured \\texttt{{make reproduce}} of these results "
                                  f"took {when} ({setup}) on {machine}, on {day}.")}


def numerics_claim(frame: pd.DataFrame) -> dict[str, str]:
    """The sentence on the numerics the runs were computed under (``amcf/numerics.py``): the
    policy's name, or every name found when runs differ, or that runs recorded none."""
    names = sorted({str(n) for n in frame.get("numerics", pd.Series(dtype=str)).fillna("")})
    recorded = [n for n in names if n]
    if not recorded:
        return {"ClaimNumerics": "The runs did not record the numerics they were computed under."}
    if recorded == ["native"]:
        return {"ClaimNumerics": (
            "The runs were computed with the numerical policy switched off (each kernel library "
            "chose its kernels by the CPU), so a rerun on another CPU model gives other bits.")}
    some = " (not recorded for some runs)" if "" in names else ""
    text = (f"Every CPU result was computed under the numerical policy "
            f"\\texttt{{{escape_latex(' and '.join(recorded))}}}{some} "
            "(\\texttt{amcf/numerics.py}): one thread per training, ATen's and oneDNN's kernels "
            "at the AVX2 level, MKL in its cross-vendor reproducible mode, so that a rerun on any "
            "x86-64 CPU with AVX2, Intel or AMD, gives the same bits.")
    return {"ClaimNumerics": text}


def claim_macros(frame: pd.DataFrame, comparisons: pd.DataFrame,
                 reproduction: Mapping[str, object] | None = None) -> dict[str, str]:
    """Every claim macro: per comparison, the headline, the cost and the reproduction facts."""
    labels = dict(zip(frame["method"], frame["label"], strict=True))
    comparisons = _with_group(comparisons)
    out = comparison_claims(comparisons, labels)
    out["ClaimHeadline"] = headline_claim(comparisons, labels)
    out["ClaimCost"] = cost_claim(frame)
    counts = comparisons["group"].value_counts()
    out["ClaimHolmFamily"] = (f"all {len(comparisons)} comparisons, "
                              f"{int(counts.get('decisive', 0))} decisive and "
                              f"{int(counts.get('secondary', 0))} secondary")
    out.update(reproduction_claim(reproduction))
    out.update(numerics_claim(frame))
    return out


def render_claims(macros: Mapping[str, str]) -> str:
    # the header keeps the module's name of the committed paper (it is part of its bytes)
    lines = ["% Generated by amcf.reporting.claims: do not edit; re-run the report stage."]
    lines += [f"\\newcommand{{\\{name}}}{{{text}}}" for name, text in sorted(macros.items())]
    return "\n".join(lines) + "\n"


def write_claims(path: str | os.PathLike, frame: pd.DataFrame, comparisons: pd.DataFrame,
                 reproduction: Mapping[str, object] | None = None,
                 extra: Mapping[str, str] | None = None) -> Path:
    """Write ``claims.tex`` (one \\newcommand per claim; ``extra``: claims made elsewhere,
    e.g. :func:`compendium.report.fitness.fitness_claim`)."""
    return write_text(path, render_claims({**claim_macros(frame, comparisons, reproduction),
                                           **(extra or {})}))


def comparisons_table_latex(comparisons: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """A booktabs tabular of the comparisons: differences and intervals in points."""
    header = ["Group", "Comparison", "Scope", "$n$", "$\\Delta$ (pp)", "CI (pp)", "$p$",
              "$p_{\\mathrm{Holm}}$", "Verdict"]
    lines = ["\\begin{tabular}{lllrrlrrl}", "\\toprule", " & ".join(header) + r" \\", "\\midrule"]
    previous = None
    for r in _with_group(comparisons).to_dict("records"):
        pair = (r["group"], r["method_a"], r["method_b"])
        if previous is not None and pair != previous:
            lines.append("\\midrule")
        previous = pair
        interval = (f"{fmt_signed_pct(r['ci_low'])} to {fmt_signed_pct(r['ci_high'])}"
                    if math.isfinite(r["ci_low"]) else "--")
        scope = r["scope"] if r["scope"] == POOLED else f"\\texttt{{{escape_latex(r['scope'])}}}"
        lines.append(" & ".join([
            escape_latex(r["group"]),
            f"{_label(labels, r['method_a'])} vs {_label(labels, r['method_b'])}", scope,
            str(r["n"]), fmt_signed_pct(r["mean_diff"]), interval, fmt_p(r["p"]),
            fmt_p(r["p_holm"]), r["verdict"]]) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


__all__ = ["CONSEQUENCES", "DECISIVE_PAIRS", "PAIR_MACROS", "claim_comparisons",
           "claim_macros", "comparisons_table_latex", "cost_claim", "headline_claim",
           "pair_sentence", "render_claims", "reproduction_claim", "secondary_pairs",
           "write_claims"]

