"""Every sentence of the paper that states a finding, generated from the paired comparisons.

The paper's text holds no verdict of its own: it \\input-s ``generated/claims.tex``, whose
macros are whole sentences. When the numbers flip, the sentences flip with them.

The analysis plan (:class:`compendium.plan.AnalysisPlan`, fixed in ``params.yaml`` before the
results) decides what is tested: its primary and secondary comparisons on each target form one
Holm family, and only those rows get a verdict ("higher", "lower", "no clear difference", from
:func:`compendium.report.stats.verdict`). A pooled row is a function of its pair's per-target
rows, and the exploratory ablations run on fewer seeds: both are described by their interval
alone. A consequence for the method ("so combining the sources improves on the best single
one") is stated only when every target gives the same verdict; otherwise the sentence says
where it holds, where it reverses and where it is unclear. Each unclear difference also says
what its interval excludes, against the plan's equivalence margin.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from amcf.io import write_text
from compendium.plan import AnalysisPlan
from compendium.report.bootstrap import choose_interval, planned_interval, with_bootstrap
from compendium.report.latex import escape_latex, fmt_num, fmt_p, fmt_signed_pct
from compendium.report.stats import (
    BEST_SINGLE,
    DESCRIPTIVE,
    EQUIVALENT,
    POOLED,
    comparison_table,
    decisive_pairs,
    equivalence,
)

# the ablations that run on the first few seeds only (the plan's exploratory families)
FEW_SEED_PATTERN = re.compile(r"amcf-(lam(?!0\Z).+|k.+|dml)\Z")


@dataclass(frozen=True)
class Consequence:
    """What each verdict of one comparison means for the method, in words. ``higher`` and
    ``lower`` must read as clauses after "whether" and "that" (they are also stated per
    target when the targets disagree)."""

    higher: str
    lower: str
    unclear: str


# what a verdict on each planned pair says about AMCF (a = the first method of the pair)
CONSEQUENCES: dict[tuple[str, str], Consequence] = {
    ("amcf", "ensemble"): Consequence(
        "collaboration adds accuracy beyond what more models give on their own",
        "summing independently fine-tuned models does better than collaborating",
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
        "fine-tuning every layer beats the searched scheme",
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
        "AMCF with its sources chosen on validation data beats the independent ensemble",
        "AMCF, even with its sources chosen on validation data, trails the independent "
        "ensemble",
        "with its sources chosen on validation data, AMCF cannot be told apart from the "
        "independent ensemble"),
}

# fixed macro names for the planned pairs, so main.tex can cite them whether or not they ran
PAIR_MACROS = {
    ("amcf", "ensemble"): "ClaimEnsemble",
    ("amcf", BEST_SINGLE): "ClaimBestSingle",
    ("amcf", "amcf-lam0"): "ClaimLamZero",
    ("amcf", "amcf-full"): "ClaimFullScheme",
    ("amcf", "amcf-random"): "ClaimRandomScheme",
    ("amcf-select", "amcf"): "ClaimSelectVsAmcf",
    ("amcf-select", "ensemble"): "ClaimSelectVsEnsemble",
}


def exploratory_pairs(frame: pd.DataFrame, plan: AnalysisPlan) -> list[tuple[str, str]]:
    """AMCF against each method with results that the plan calls exploratory."""
    if "amcf" not in set(frame["method"]):
        return []
    return [("amcf", m) for m in sorted(set(frame["method"]))
            if plan.role(("amcf", m)) == "exploratory"]


def _check_targets(frame: pd.DataFrame, plan: AnalysisPlan) -> None:
    found, planned = set(frame["target"]), set(plan.targets)
    if found - planned:
        raise ValueError(f"the results hold targets {sorted(found - planned)} that the analysis "
                         f"plan does not name (its targets: {plan.targets}); add them to "
                         "analysis_plan.targets in params.yaml (a change of the plan, which "
                         "reruns every training stage) or remove their results")
    if planned - found:
        raise ValueError(f"the analysis plan names targets {sorted(planned - found)} that have "
                         "no results; run their stages (dvc repro) before the report")


def claim_comparisons(frame: pd.DataFrame, plan: AnalysisPlan, column: str = "test_acc",
                      results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The plan's comparisons that have results, in one table with a ``group`` column (the
    pair's role in the plan): Holm over the per-target rows of the primary and secondary pairs,
    the rest descriptive (:func:`compendium.report.stats.comparison_table`). With
    ``results_dir`` each row also gets its paired bootstrap interval over seeds and test images
    (:func:`compendium.report.bootstrap.with_bootstrap`); ``interval`` names the one the plan's
    claims and ``equivalence`` use (t where a row has no bootstrap interval)."""
    _check_targets(frame, plan)
    planned = decisive_pairs(frame, plan.primary_pairs + plan.secondary_pairs)
    pairs = [*planned, *exploratory_pairs(frame, plan)]
    if not pairs:
        raise ValueError("no comparison can be made: the results hold none of the analysis "
                         "plan's pairs; run the amcf, baselines and ablations stages")
    table = comparison_table(frame, pairs, column, plan.alpha, plan.confidence,
                             adjusted=planned, margin=plan.equivalence_margin)
    table = with_bootstrap(table, frame, results_dir, plan.confidence, column)
    table["interval"] = choose_interval(table, plan.interval)
    table["equivalence"] = [equivalence(*planned_interval(r), plan.equivalence_margin)
                            for _, r in table.iterrows()]
    table["group"] = [plan.role(pair) for pair in
                      zip(table["method_a"], table["method_b"], strict=True)]
    return table


# names that read better inside a sentence than the table's labels
IN_TEXT = {BEST_SINGLE: "the best single source", "ensemble": "the independent ensemble",
           "amcf-lam0": "AMCF without its collaborative term ($\\lambda = 0$)",
           "amcf-full": "AMCF with every layer fine-tuned",
           "amcf-random": "AMCF with a random freezing scheme",
           "amcf-select": "AMCF with its sources chosen on validation data"}


def _label(labels: Mapping[str, str], method: str) -> str:
    return IN_TEXT.get(method) or escape_latex(labels.get(method, method))


def _short(labels: Mapping[str, str], method: str) -> str:
    return "AMCF" if method == "amcf" else escape_latex(labels.get(method, method))


def _tt(target: str) -> str:
    return f"\\texttt{{{escape_latex(target)}}}"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _points(value: float) -> str:
    return f"{fmt_signed_pct(value)} points"


def _numbers(row: pd.Series) -> str:
    """'-1.5 points, interval -1.9 to -1.0, Holm-adjusted $p = 0.002$' (what the row has)."""
    parts = [_points(row["mean_diff"])]
    low, high = planned_interval(row)
    if math.isfinite(low):
        kind = "bootstrap interval" if row.get("interval") == "bootstrap" else "interval"
        parts.append(f"{kind} {fmt_signed_pct(low)} to {fmt_signed_pct(high)}")
    if row["verdict"] != DESCRIPTIVE:
        p = row["p_holm"]
        parts.append("no $p$-value (too few seeds, or the same difference on every seed)"
                     if not math.isfinite(p) else
                     f"Holm-adjusted $p$ {fmt_p(p)}" if fmt_p(p).startswith("$<$") else
                     f"Holm-adjusted $p = {fmt_p(p)}$")
    return ", ".join(parts)


def excluded_text(row: pd.Series, short_a: str, margin: float) -> str:
    """What the interval of a difference without a verdict rules out, against the margin:
    'an advantage of AMCF, if any, is below +0.3 points and a deficit below 0.8; not shown
    equivalent within $\\pm$1 point'."""
    low, high = planned_interval(row)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "its size is not bounded (no interval)"
    if low == high:
        bound = ("the two are right on the same test images on every seed"
                 if row.get("interval") == "bootstrap" else
                 "the difference is the same on every seed")
    elif low >= 0:
        bound = (f"a deficit of {short_a} is excluded and an advantage, if any, is below "
                 f"{_points(high)}")
    elif high <= 0:
        bound = (f"an advantage of {short_a} is excluded and a deficit, if any, is below "
                 f"{100 * -low:.1f} points")
    else:
        bound = (f"an advantage of {short_a}, if any, is below {_points(high)} and a deficit, "
                 f"if any, below {100 * -low:.1f}")
    within = f"within $\\pm${_margin_text(margin)}"
    return bound + (f"; equivalent {within}" if row["equivalence"] == EQUIVALENT
                    else f"; not shown equivalent {within}")


def _margin_text(margin: float) -> str:
    points = 100 * margin
    return f"{points:g} point" + ("" if points == 1 else "s")


def _target_clause(row: pd.Series, name_b: str, short_a: str, margin: float) -> str:
    numbers = _numbers(row)
    where = _tt(row["scope"])
    if row["verdict"] == "higher":
        return f"on {where} it is more accurate ({numbers})"
    if row["verdict"] == "lower":
        return f"on {where} it is less accurate ({numbers})"
    if row["verdict"] == DESCRIPTIVE:
        return (f"on {where} the difference is {numbers} "
                f"({excluded_text(row, short_a, margin)})")
    return (f"on {where} there is no clear difference ({numbers}: "
            f"{excluded_text(row, short_a, margin)})")


def _consequence_text(verdicts: Mapping[str, str], consequence: Consequence,
                      margin: float, equivalent_everywhere: bool) -> str:
    """The consequence, stated only as far as every target agrees."""
    by = {v: [_tt(t) for t, x in verdicts.items() if x == v]
          for v in ("higher", "lower", "no clear difference")}
    if len(by["higher"]) == len(verdicts):
        return f" This holds on every target, so {consequence.higher}."
    if len(by["lower"]) == len(verdicts):
        return f" This holds on every target, so {consequence.lower}."
    if len(by["no clear difference"]) == len(verdicts):
        tail = (f", and on every target the two are equivalent within $\\pm$"
                f"{_margin_text(margin)}" if equivalent_everywhere else "")
        return f" On no target is there a clear difference, so {consequence.unclear}{tail}."
    if by["higher"] and by["lower"]:
        unclear = (f", and is unclear on {_join(by['no clear difference'])}"
                   if by["no clear difference"] else "")
        return (f" Whether {consequence.higher} depends on the target: it holds on "
                f"{_join(by['higher'])} and reverses on {_join(by['lower'])}{unclear}.")
    shown = "higher" if by["higher"] else "lower"
    what = consequence.higher if shown == "higher" else consequence.lower
    return (f" That {what} is shown on {_join(by[shown])} only; on "
            f"{_join(by['no clear difference'])} it is unclear.")


def pair_sentence(rows: pd.DataFrame, labels: Mapping[str, str], margin: float,
                  consequence: Consequence | None = None) -> str:
    """The sentences stating one comparison: its verdict on each target with what an unclear
    interval excludes, the pooled difference (descriptive), and what it means for the method
    where every target agrees."""
    pooled = rows[rows["scope"] == POOLED]
    per_target = rows[rows["scope"] != POOLED]
    a, b = rows["method_a"].iloc[0], rows["method_b"].iloc[0]
    name_a, name_b, short_a = _label(labels, a), _label(labels, b), _short(labels, a)
    if per_target.empty:
        return f"No comparison of {name_a} with {name_b} could be made."
    descriptive = bool((per_target["verdict"] == DESCRIPTIVE).all())
    seeds = sorted({int(n) for n in per_target["n"]})
    head = (f"Against {name_b}, {name_a} (paired over "
            f"{_join([str(n) for n in seeds])} seeds per target"
            f"{'; descriptive, outside the tested family' if descriptive else ''}): ")
    clauses = [_target_clause(r, name_b, short_a, margin) for _, r in per_target.iterrows()]
    text = head + "; ".join(clauses) + "."
    if not pooled.empty:
        row = pooled.iloc[0]
        text += (f" Averaged over the {len(per_target)} targets, the difference is "
                 f"{_numbers(row)} (descriptive: the pooled difference is not tested).")
    if consequence is not None and not descriptive:
        verdicts = dict(zip(per_target["scope"], per_target["verdict"], strict=True))
        equivalent = bool((per_target["equivalence"] == EQUIVALENT).all())
        text += _consequence_text(verdicts, consequence, margin, equivalent)
    return text


def _not_run(pair: tuple[str, str], labels: Mapping[str, str]) -> str:
    return (f"The comparison of {_label(labels, pair[0])} with {_label(labels, pair[1])} was "
            "not run in this profile.")


def comparison_claims(comparisons: pd.DataFrame, labels: Mapping[str, str],
                      margin: float) -> dict[str, str]:
    """One macro per planned pair (a 'not run' sentence when it is absent) and one sentence
    per exploratory ablation, joined in ``ClaimSecondaryAblations``."""
    out = {}
    for pair, name in PAIR_MACROS.items():
        rows = comparisons[(comparisons["method_a"] == pair[0])
                           & (comparisons["method_b"] == pair[1])]
        out[name] = (_not_run(pair, labels) if rows.empty
                     else pair_sentence(rows, labels, margin, CONSEQUENCES.get(pair)))
    exploratory = comparisons[comparisons["group"] == "exploratory"]
    sentences = [pair_sentence(rows, labels, margin) for _, rows in
                 exploratory.groupby(["method_a", "method_b"], sort=True)]
    out["ClaimSecondaryAblations"] = (" ".join(sentences) if sentences else
                                      "No further ablation was run in this profile.")
    return out


def headline_claim(comparisons: pd.DataFrame, labels: Mapping[str, str],
                   plan: AnalysisPlan) -> str:
    """The abstract's finding: the plan's primary comparison first, then AMCF against the best
    single source, each with its verdict on every target."""
    words = {"higher": "more accurate than", "lower": "less accurate than",
             "no clear difference": "not clearly different from"}
    parts = []
    for a, b in dict.fromkeys([*plan.primary_pairs, ("amcf", BEST_SINGLE)]):
        rows = comparisons[(comparisons["method_a"] == a) & (comparisons["method_b"] == b)
                           & (comparisons["verdict"] != DESCRIPTIVE)]
        if a != "amcf" or rows.empty:
            continue
        by: dict[str, list[str]] = {}
        for target, v in zip(rows["scope"], rows["verdict"], strict=True):
            by.setdefault(v, []).append(_tt(target))
        if len(by) == 1 and len(rows) > 1:
            parts.append(f"{words[next(iter(by))]} {_label(labels, b)} on every target")
            continue
        clauses = [f"{words[v]} {_label(labels, b) if i == 0 else 'it'} on {_join(ts)}"
                   for i, (v, ts) in enumerate(by.items())]
        parts.append(_join(clauses))
    if not parts:
        return "AMCF was not compared with the ensemble or a single source in this profile."
    return (f"AMCF is {', and it is '.join(parts)} (paired differences over seeds, "
            f"Holm-adjusted at $\\alpha = {plan.alpha:g}$ over the per-target comparisons "
            "fixed in the analysis plan).")


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
    :func:`compendium.timing_summary.read_reproduce_time`) in one sentence, ``ClaimReproduction``:
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


_INTERVAL_WORDS = {
    "bootstrap": "intervals from a paired bootstrap over seeds and test images (t intervals "
                 "over seeds where a run kept no test predictions)",
    "t": "t intervals over seeds"}


def plan_claim(comparisons: pd.DataFrame, plan: AnalysisPlan,
               labels: Mapping[str, str]) -> dict[str, str]:
    """The plan in one sentence (``ClaimPlan``) and the size of its Holm family as run
    (``ClaimHolmFamily``)."""
    (a, b), = plan.primary_pairs
    tested = comparisons[comparisons["verdict"] != DESCRIPTIVE]
    pairs = tested.groupby(["method_a", "method_b"]).ngroups
    targets = ", ".join(_tt(t) for t in plan.targets)
    text = (f"The analysis plan (\\texttt{{docs/analysis-plan.md}}; the "
            f"\\texttt{{analysis\\_plan}} section of \\texttt{{params.yaml}}, which "
            f"\\texttt{{dvc.lock}} records beside every result) fixes the targets ({targets}), "
            f"the primary comparison ({_label(labels, a)} against {_label(labels, b)}), "
            f"{len(plan.secondary_pairs)} secondary ones, Holm's correction at "
            f"$\\alpha = {plan.alpha:g}$ over their per-target rows, pooled rows and the "
            f"ablations run on fewer seeds as descriptive, {100 * plan.confidence:g}\\% "
            f"{_INTERVAL_WORDS[plan.interval]}, and an equivalence margin of "
            f"$\\pm${_margin_text(plan.equivalence_margin)}.")
    family = (f"the {len(tested)} per-target rows of the {pairs} planned comparisons that ran; "
              f"{len(comparisons) - len(tested)} pooled or exploratory rows are descriptive")
    return {"ClaimPlan": text, "ClaimHolmFamily": family}


def claim_macros(frame: pd.DataFrame, comparisons: pd.DataFrame, plan: AnalysisPlan,
                 reproduction: Mapping[str, object] | None = None) -> dict[str, str]:
    """Every claim macro: per comparison, the headline, the plan, the cost and the
    reproduction facts."""
    labels = dict(zip(frame["method"], frame["label"], strict=True))
    out = comparison_claims(comparisons, labels, plan.equivalence_margin)
    out["ClaimHeadline"] = headline_claim(comparisons, labels, plan)
    out["ClaimCost"] = cost_claim(frame)
    out.update(plan_claim(comparisons, plan, labels))
    out.update(reproduction_claim(reproduction))
    out.update(numerics_claim(frame))
    return out


def render_claims(macros: Mapping[str, str]) -> str:
    # the header keeps the module's name of the committed paper (it is part of its bytes)
    lines = ["% Generated by amcf.reporting.claims: do not edit; re-run the report stage."]
    lines += [f"\\newcommand{{\\{name}}}{{{text}}}" for name, text in sorted(macros.items())]
    return "\n".join(lines) + "\n"


def write_claims(path: str | os.PathLike, frame: pd.DataFrame, comparisons: pd.DataFrame,
                 plan: AnalysisPlan, reproduction: Mapping[str, object] | None = None,
                 extra: Mapping[str, str] | None = None) -> Path:
    """Write ``claims.tex`` (one \\newcommand per claim; ``extra``: claims made elsewhere,
    e.g. :func:`compendium.report.fitness.fitness_claim`)."""
    return write_text(path, render_claims({**claim_macros(frame, comparisons, plan, reproduction),
                                           **(extra or {})}))


def comparisons_table_latex(comparisons: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """A booktabs tabular of the comparisons: differences and intervals in points, the verdict
    of the tested rows and each interval against the equivalence margin."""
    header = ["Group", "Comparison", "Scope", "$n$", "$\\Delta$ (pp)", "$t$ CI (pp)",
              "Bootstrap CI (pp)", "$p$", "$p_{\\mathrm{Holm}}$", "Verdict", "Equivalence"]
    lines = ["\\begin{tabular}{lllrrllrrll}", "\\toprule", " & ".join(header) + r" \\",
             "\\midrule"]
    previous = None
    for r in comparisons.to_dict("records"):
        pair = (r["group"], r["method_a"], r["method_b"])
        if previous is not None and pair != previous:
            lines.append("\\midrule")
        previous = pair
        interval = (f"{fmt_signed_pct(r['ci_low'])} to {fmt_signed_pct(r['ci_high'])}"
                    if math.isfinite(r["ci_low"]) else "--")
        low, high = r.get("boot_low", math.nan), r.get("boot_high", math.nan)
        boot = (f"{fmt_signed_pct(low)} to {fmt_signed_pct(high)}" if math.isfinite(low)
                else "--")
        scope = r["scope"] if r["scope"] == POOLED else _tt(r["scope"])
        lines.append(" & ".join([
            escape_latex(r["group"]),
            f"{_label(labels, r['method_a'])} vs {_label(labels, r['method_b'])}", scope,
            str(r["n"]), fmt_signed_pct(r["mean_diff"]), interval, boot, fmt_p(r["p"]),
            fmt_p(r["p_holm"]), r["verdict"], r["equivalence"] or "--"]) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


__all__ = ["CONSEQUENCES", "FEW_SEED_PATTERN", "PAIR_MACROS", "claim_comparisons", "claim_macros",
           "comparisons_table_latex", "cost_claim", "excluded_text", "exploratory_pairs",
           "headline_claim", "pair_sentence", "plan_claim", "render_claims",
           "reproduction_claim", "write_claims"]
