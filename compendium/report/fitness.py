"""Does the layer search choose on noise? Three measurements per target, from what the
search stage recorded (``searches.json``) and AMCF's final runs:

- **resolution**: per search, how many distinct fitness values its calls produced and the
  spread between the best and the worst (a search whose calls all score alike chooses its
  first scheme by the tie rule, not on merit);

- **agreement**: in how many searches the scheme chosen on validation accuracy is also the
  one with the lowest validation loss among the schemes the search evaluated (every call
  records both), and, where the search stage reran the swarm scored by loss
  (``search.compare_scores``), in how many that swarm chose the same scheme;
- **rank correlation**: Spearman's rho, over the schemes the searches chose, between a
  scheme's fitness (validation accuracy, or minus the validation loss, as its search measured
  it) and its final test accuracy (the mean over AMCF's training seeds that trained with it).
  Training seed s uses search s mod n, so several seeds share one scheme and one fitness
  value: correlating over seeds would count each scheme several times, as ties. A fitness that
  ranks schemes as their full training does gives rho near 1; one that measures noise, rho
  near 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from amcf.io import write_text
from compendium import results
from compendium.report.latex import escape_latex, fmt_num

COLUMNS = ["target", "searches", "loss_agrees", "compared", "same_scheme", "distinct_schemes",
           "distinct_fitness", "fitness_spread", "rho_accuracy", "p_accuracy", "rho_loss",
           "p_loss", "pairs", "seeds", "schemes", "note"]


def fitness_resolution(history: Sequence[dict]) -> tuple[int, float]:
    """How finely one search's fitness told its schemes apart: the number of distinct fitness
    values its calls produced, and the best minus the worst (0 and NaN without calls)."""
    values = [float(h["fitness"]) for h in history if h.get("fitness") is not None]
    if not values:
        return 0, math.nan
    return len(set(values)), max(values) - min(values)


def rank_correlation(fitness: Sequence[float], test_acc: Sequence[float]) -> dict[str, Any]:
    """Spearman's rank correlation between fitness values and the final test accuracies of
    the same schemes: does the fitness rank schemes as their full training does?

    Returns ``{"rho", "p_value", "n", "reason"}``; rho and p_value are NaN, with the reason,
    when there are fewer than 3 pairs or either list is constant (no ranking to compare).
    """
    from scipy.stats import spearmanr

    fitness, test_acc = [float(v) for v in fitness], [float(v) for v in test_acc]
    if len(fitness) != len(test_acc):
        raise ValueError(f"need one test accuracy per fitness value, got {len(fitness)} "
                         f"fitness values and {len(test_acc)} test accuracies")
    nan = {"rho": math.nan, "p_value": math.nan, "n": len(fitness)}
    if len(fitness) < 3:
        return {**nan, "reason": f"only {len(fitness)} pairs; a rank correlation needs >= 3"}
    for name, values in (("fitness", fitness), ("test_acc", test_acc)):
        if len(set(values)) == 1:
            return {**nan, "reason": f"{name} is constant ({values[0]:g}), so it has no ranking"}
    rho, p_value = spearmanr(fitness, test_acc)
    return {"rho": float(rho), "p_value": float(p_value), "n": len(fitness), "reason": None}


def _rank_correlation(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, str]:
    out = rank_correlation(x, y)
    return out["rho"], out["p_value"], out["reason"] or ""


def lowest_loss_scheme(history: list[dict]) -> list[int] | None:
    """The scheme with the lowest validation loss among a search's calls (None when its
    calls recorded no loss)."""
    rows = [h for h in history if h.get("val_loss") is not None]
    return list(min(rows, key=lambda h: h["val_loss"])["scheme"]) if rows else None


def scheme_pairs(searches: list[dict],
                 amcf_runs: pd.DataFrame) -> tuple[list[tuple[float, float, float]], int]:
    """One (validation accuracy, minus validation loss, mean test accuracy) per chosen scheme
    whose search recorded both, and the number of AMCF runs behind them. A scheme chosen by
    two searches counts once, with the mean of their fitness values."""
    fitness: dict[tuple, list[tuple[float, float]]] = {}
    tests: dict[tuple, list[float]] = {}
    for seed, acc in zip(amcf_runs["seed"], amcf_runs["test_acc"], strict=True):
        search = results.search_for_seed(searches, seed)
        if search.get("val_acc") is None or search.get("val_loss") is None:
            continue
        scheme = tuple(search["best"])
        tests.setdefault(scheme, []).append(float(acc))
        fitness.setdefault(scheme, [])
    for search in searches:
        scheme = tuple(search["best"])
        if scheme in fitness:
            fitness[scheme].append((float(search["val_acc"]), -float(search["val_loss"])))
    pairs = [(sum(f[0] for f in fitness[k]) / len(fitness[k]),
              sum(f[1] for f in fitness[k]) / len(fitness[k]),
              sum(tests[k]) / len(tests[k])) for k in tests]
    return pairs, sum(len(v) for v in tests.values())


def target_fitness_row(target: str, searches: list[dict], amcf_runs: pd.DataFrame) -> dict:
    """The agreement and the two rank correlations of one target (see the module's doc).

    ``amcf_runs`` holds AMCF's runs on the target (columns ``seed`` and ``test_acc``); seed s
    trained with the scheme of :func:`compendium.results.search_for_seed`. ``pairs`` counts
    the schemes correlated, ``seeds`` the runs behind them, ``schemes`` the chosen schemes.
    """
    if not searches:
        raise ValueError(f"{target}: no searches recorded; run the search stage first")
    compared = [s for s in searches if "same_scheme" in s]
    by_loss = [(s["best"], lowest_loss_scheme(s.get("history", []))) for s in searches]
    loss_agrees = sum(list(best) == low for best, low in by_loss if low is not None)
    pairs, seeds = scheme_pairs(searches, amcf_runs)
    resolution = [fitness_resolution(s.get("history", [])) for s in searches]
    notes = []
    rho_acc = rho_loss = p_acc = p_loss = math.nan
    if pairs:
        rho_acc, p_acc, why_acc = _rank_correlation([p[0] for p in pairs], [p[2] for p in pairs])
        rho_loss, p_loss, why_loss = _rank_correlation([p[1] for p in pairs],
                                                       [p[2] for p in pairs])
        notes += [f"accuracy: {why_acc}" if why_acc else "",
                  f"loss: {why_loss}" if why_loss else ""]
    else:
        notes.append("the searches recorded no validation loss of their chosen scheme")
    return {"target": target, "searches": len(searches), "loss_agrees": loss_agrees,
            "compared": len(compared),
            "same_scheme": sum(bool(s["same_scheme"]) for s in compared),
            "distinct_schemes": len({tuple(s["best"]) for s in searches}),
            # per search, in search-seed order
            "distinct_fitness": [n for n, _ in resolution],
            "fitness_spread": [spread for _, spread in resolution],
            "rho_accuracy": rho_acc, "p_accuracy": p_acc, "rho_loss": rho_loss,
            "p_loss": p_loss, "pairs": len(pairs), "seeds": seeds,
            "schemes": [tuple(s["best"]) for s in searches],
            "note": "; ".join(n for n in notes if n)}


def fitness_study(results_dir: str | os.PathLike, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per target with AMCF runs (see :func:`target_fitness_row`)."""
    rows = []
    for target in sorted(frame["target"].unique()):
        runs = frame[(frame["target"] == target) & (frame["method"] == "amcf")]
        if runs.empty:
            continue
        rows.append(target_fitness_row(target, results.target_searches(results_dir, target),
                                       runs.sort_values("seed")))
    return pd.DataFrame(rows, columns=COLUMNS)


def _rho(value: float) -> str:
    return "--" if value is None or math.isnan(value) else f"{value:+.2f}"


def _points(value: float) -> str:
    """A fitness difference (a fraction) in percentage points."""
    return f"{100 * value:.1f}"


def _span(values: Sequence[float], fmt) -> str:
    """'lo--hi' over a target's searches (one value when they agree; a dash without any)."""
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "--"
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}--{hi}"


def fitness_table_latex(study: pd.DataFrame) -> str:
    """A booktabs tabular of :func:`fitness_study`."""
    lines = ["\\begin{tabular}{lrrrrrrrr}", "\\toprule",
             "Target & Searches & Fitness values & Best $-$ worst & Lowest loss & "
             "Same scheme (loss) & Distinct schemes & "
             "$\\rho$ (val.\\ acc.) & $\\rho$ (val.\\ loss) \\\\", "\\midrule"]
    for _, row in study.iterrows():
        same = (f"{row['same_scheme']} of {row['compared']}" if row["compared"] else "--")
        cells = [f"\\texttt{{{escape_latex(row['target'])}}}", fmt_num(row["searches"]),
                 _span(row["distinct_fitness"], str), _span(row["fitness_spread"], _points),
                 f"{row['loss_agrees']} of {row['searches']}", same,
                 fmt_num(row["distinct_schemes"]), _rho(row["rho_accuracy"]),
                 _rho(row["rho_loss"])]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def _distinct_text(study: pd.DataFrame) -> str:
    """'The 10 searches chose 9 distinct schemes (5 of 5 on a, 5 of 5 on b; [6, 2, 0] was
    chosen on both a and b)': a scheme chosen on two targets is one scheme, counted once."""
    where: dict[tuple, list[str]] = {}
    for r in study.itertuples():
        for scheme in dict.fromkeys(tuple(s) for s in r.schemes):
            where.setdefault(scheme, []).append(f"\\texttt{{{escape_latex(r.target)}}}")
    searches = int(study["searches"].sum())
    per_target = ", ".join(f"{int(r.distinct_schemes)} of {int(r.searches)} on "
                           f"\\texttt{{{escape_latex(r.target)}}}" for r in study.itertuples())
    shared = [f"[{', '.join(map(str, k))}] was chosen on {' and '.join(ts)}"
              for k, ts in where.items() if len(ts) > 1]
    return (f"The {searches} searches chose {len(where)} distinct schemes ({per_target}"
            f"{'; ' + '; '.join(shared) if shared else ''})")


def _resolution_text(study: pd.DataFrame) -> str:
    """'the calls of one search produced 3--9 distinct fitness values, 0.7--5.0 points apart
    from worst to best, on a (...)': how finely each target's searches told schemes apart."""
    per_target = []
    for r in study.itertuples():
        values, spread = _span(r.distinct_fitness, str), _span(r.fitness_spread, _points)
        per_target.append(f"{values} distinct values {spread} points apart on "
                          f"\\texttt{{{escape_latex(r.target)}}}")
    return ("the fitness calls of one search produced, from worst to best, "
            + ", and ".join(per_target))


def fitness_claim(study: pd.DataFrame) -> str:
    """The sentence the paper states about the search's fitness, from :func:`fitness_study`."""
    if study.empty:
        return "No search was recorded, so the fitness could not be examined."
    parts = [_distinct_text(study), _resolution_text(study)]
    compared, same = int(study["compared"].sum()), int(study["same_scheme"].sum())
    searches = int(study["searches"].sum())
    agrees = int(study["loss_agrees"].sum())
    parts.append(f"in {agrees} of {searches} searches the scheme chosen on validation accuracy "
                 "was also the one with the lowest validation loss among the schemes the "
                 "search evaluated")
    if compared:
        parts.append(f"scored by validation loss instead of accuracy, the same swarms chose the "
                     f"same scheme in {same} of {compared} searches")
    rhos = [r for r in study.itertuples()
            if not (math.isnan(r.rho_accuracy) and math.isnan(r.rho_loss))]
    text = "; ".join(parts) + "."
    if rhos:
        significant = [f"{kind} on \\texttt{{{escape_latex(r.target)}}}" for r in rhos
                       for kind, p in (("accuracy", r.p_accuracy), ("loss", r.p_loss))
                       if not math.isnan(p) and p < 0.05]
        over = ", ".join(f"{int(r.pairs)} on \\texttt{{{escape_latex(r.target)}}} from "
                         f"{int(r.seeds)} seeds" for r in rhos)
        text += (" Over the chosen schemes (" + over + "; a scheme's final test accuracy is "
                 "the mean over the AMCF seeds that trained with it, so no scheme counts "
                 "twice), Spearman's rank correlation between a scheme's fitness and its final "
                 "test accuracy is "
                 + ", ".join(f"{_rho(r.rho_accuracy)} for accuracy and {_rho(r.rho_loss)} for "
                             f"loss on \\texttt{{{escape_latex(r.target)}}}" for r in rhos)
                 + "; " + (f"only {', '.join(significant)} "
                           f"{'is' if len(significant) == 1 else 'are'} different from zero at "
                           "the 5\\% level (unadjusted)" if significant else
                           "none is different from zero at the 5\\% level (unadjusted), so the "
                           "fitness is not shown to rank schemes as their full training does")
                 + ".")
    return text


def write_fitness_table(path: str | os.PathLike, study: pd.DataFrame) -> Path:
    return write_text(path, fitness_table_latex(study))
