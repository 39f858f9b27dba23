"""Does the search's fitness predict the final accuracy, and does its choice depend on the
score? (compendium.report.fitness)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from compendium.report.fitness import (
    fitness_claim,
    fitness_study,
    fitness_table_latex,
    scheme_pairs,
    target_fitness_row,
)


def _searches(accs, losses, same, schemes=None):
    schemes = schemes or [[k, 0] for k in range(len(accs))]
    return [{"seed": k, "best": b, "val_acc": a, "val_loss": lo, "same_scheme": s}
            for k, (a, lo, s, b) in enumerate(zip(accs, losses, same, schemes, strict=True))]


def _runs(test_accs):
    return pd.DataFrame({"seed": range(len(test_accs)), "test_acc": test_accs})


def test_a_fitness_that_ranks_as_the_final_accuracy_gets_rho_one():
    searches = _searches([0.5, 0.6, 0.7], [1.5, 1.2, 1.0], [True, False, True])
    # seeds 0..5 use searches 0,1,2,0,1,2: test accuracy rises with the search's fitness
    row = target_fitness_row("t", searches, _runs([0.40, 0.50, 0.60, 0.41, 0.52, 0.61]))
    assert row["rho_accuracy"] > 0.8 and row["rho_loss"] > 0.8
    assert (row["searches"], row["compared"], row["same_scheme"]) == (3, 3, 2)
    # one pair per scheme (the mean of its two seeds), not one per seed
    assert row["distinct_schemes"] == 3 and (row["pairs"], row["seeds"]) == (3, 6)
    assert row["rho_accuracy"] == 1.0


def test_a_quantised_fitness_has_no_ranking_and_says_why():
    searches = _searches([0.6, 0.6, 0.6], [1.1, 1.3, 1.2], [True] * 3)
    row = target_fitness_row("t", searches, _runs([0.5, 0.4, 0.45, 0.55, 0.45, 0.5]))
    assert math.isnan(row["rho_accuracy"]) and "constant" in row["note"]
    assert row["rho_loss"] > 0.5  # the loss still ranks the two schemes


def test_the_claim_follows_the_numbers():
    # per scheme, test accuracies ranked 3, 1, 4, 2 against fitness 1, 2, 3, 4: rho = 0
    low = pd.DataFrame([target_fitness_row(
        "t", _searches([0.5, 0.6, 0.7, 0.8], [1.0, 1.1, 1.2, 1.3], [True] * 4),
        _runs([0.5, 0.4, 0.6, 0.45] * 2))])
    high = pd.DataFrame([target_fitness_row(
        "t", _searches([0.5, 0.6, 0.7, 0.8], [1.4, 1.3, 1.2, 1.1], [False] * 4),
        _runs([0.1, 0.2, 0.3, 0.4, 0.11, 0.21, 0.31, 0.41]))])
    assert "none is different from zero" in fitness_claim(low)
    assert low["rho_accuracy"].item() == pytest.approx(0.0)
    assert "4 of 4 searches" in fitness_claim(low)
    assert "only accuracy on" in fitness_claim(high) or "are different" in fitness_claim(high)
    assert "0 of 4 searches" in fitness_claim(high)
    assert "4 on \\texttt{t} from 8 seeds" in fitness_claim(high)
    assert "\\texttt{t}" in fitness_table_latex(high)


def test_agreement_with_the_loss_among_the_schemes_a_search_evaluated():
    from compendium.report.fitness import lowest_loss_scheme

    history = [{"scheme": [1, 0], "val_loss": 1.2}, {"scheme": [0, 3], "val_loss": 0.9},
               {"scheme": [2, 2], "val_loss": None}]
    assert lowest_loss_scheme(history) == [0, 3]
    assert lowest_loss_scheme([{"scheme": [1, 0]}]) is None
    searches = [{"seed": 0, "best": [0, 3], "history": history, "val_acc": 0.5, "val_loss": 0.9},
                {"seed": 1, "best": [1, 0], "history": history, "val_acc": 0.6, "val_loss": 1.2}]
    row = target_fitness_row("t", searches, _runs([0.5, 0.6, 0.52]))
    assert row["loss_agrees"] == 1 and row["compared"] == 0
    assert "in 1 of 2 searches" in fitness_claim(pd.DataFrame([row]))


def test_seeds_sharing_a_scheme_count_once_in_the_correlation():
    # searches 0 and 2 chose the same scheme: one point, with their mean fitness and the mean
    # test accuracy of the four seeds that trained it (seeds s use search s mod 3)
    searches = _searches([0.5, 0.6, 0.7], [1.5, 1.2, 1.0], [True] * 3,
                         schemes=[[1, 0], [2, 0], [1, 0]])
    runs = _runs([0.40, 0.50, 0.60, 0.42, 0.52, 0.62])
    pairs, seeds = scheme_pairs(searches, runs)
    assert seeds == 6 and len(pairs) == 2
    by_fitness = sorted(pairs)
    assert by_fitness[0] == pytest.approx((0.6, -1.25, (0.40 + 0.60 + 0.42 + 0.62) / 4))
    assert by_fitness[1] == pytest.approx((0.6, -1.2, (0.50 + 0.52) / 2))
    row = target_fitness_row("t", searches, runs)
    assert row["distinct_schemes"] == 2 and row["pairs"] == 2


def test_a_scheme_chosen_on_two_targets_is_one_distinct_scheme():
    # the count the paper once got wrong: per-target counts summed to 10 where 9 were distinct
    a = target_fitness_row("a", _searches([0.5, 0.6], [1.0, 1.1], [True] * 2,
                                          schemes=[[6, 2, 0], [5, 9, 1]]), _runs([0.5, 0.6]))
    b = target_fitness_row("b", _searches([0.5, 0.6], [1.0, 1.1], [True] * 2,
                                          schemes=[[6, 2, 0], [0, 5, 7]]), _runs([0.5, 0.6]))
    claim = fitness_claim(pd.DataFrame([a, b]))
    assert claim.startswith("The 4 searches chose 3 distinct schemes (2 of 2 on \\texttt{a}, "
                            "2 of 2 on \\texttt{b}; [6, 2, 0] was chosen on \\texttt{a} and "
                            "\\texttt{b})")


def test_the_counts_of_the_committed_claim_match_the_committed_searches():
    """Every count \\ClaimFitness states, recounted here from results/embedded directly."""
    from compendium import results
    from compendium.report.collect import collect

    root = Path(__file__).resolve().parents[1] / "results" / "embedded"
    frame = collect(root)
    study = fitness_study(root, frame)
    claim = fitness_claim(study)
    searches = {t: json.loads((root / t / "searches.json").read_text())["searches"]
                for t in sorted(frame["target"].unique())}
    total = sum(len(s) for s in searches.values())
    distinct = {tuple(s["best"]) for ss in searches.values() for s in ss}
    per_target = ", ".join(f"{len({tuple(s['best']) for s in ss})} of {len(ss)} on "
                           f"\\texttt{{{t}}}" for t, ss in searches.items())
    assert claim.startswith(f"The {total} searches chose {len(distinct)} distinct schemes "
                            f"({per_target}")
    agrees = 0
    for t in searches:
        for search in results.target_searches(root, t):
            lowest = min((h for h in search["history"] if h.get("val_loss") is not None),
                         key=lambda h: h["val_loss"])
            agrees += list(lowest["scheme"]) == list(search["best"])
    assert f"in {agrees} of {total} searches" in claim
    for t, ss in searches.items():
        seeds = sorted(frame.loc[(frame.target == t) & (frame.method == "amcf"), "seed"])
        schemes = {tuple(ss[s % len(ss)]["best"]) for s in seeds}
        assert f"{len(schemes)} on \\texttt{{{t}}} from {len(seeds)} seeds" in claim


def test_each_search_reports_how_many_fitness_values_its_calls_gave_and_their_spread():
    from compendium.report.fitness import fitness_resolution

    flat = [{"fitness": 0.27}] * 23 + [{"fitness": 0.28}]  # a digits search of issue 20
    assert fitness_resolution(flat) == (2, pytest.approx(0.01))
    assert fitness_resolution([{"fitness": 0.5}, {"fitness": 0.3}, {"fitness": 0.5},
                               {"fitness": None}]) == (2, pytest.approx(0.2))
    assert fitness_resolution([])[0] == 0 and math.isnan(fitness_resolution([])[1])
    searches = _searches([0.3, 0.6], [1.0, 1.1], [True] * 2)
    searches[0]["history"] = flat
    searches[1]["history"] = [{"fitness": v} for v in (0.2, 0.4, 0.6, 0.6)]
    row = target_fitness_row("t", searches, _runs([0.5, 0.6]))
    assert row["distinct_fitness"] == [2, 3]
    assert row["fitness_spread"] == pytest.approx([0.01, 0.4])
    study = pd.DataFrame([row])
    assert "2--3 distinct values 1.0--40.0 points apart on \\texttt{t}" in fitness_claim(study)
    assert "t} & 2 & 2--3 & 1.0--40.0 &" in fitness_table_latex(study)


def test_the_committed_claims_resolution_matches_the_committed_searches():
    from compendium import results
    from compendium.report.collect import collect

    root = Path(__file__).resolve().parents[1] / "results" / "embedded"
    frame = collect(root)
    claim = fitness_claim(fitness_study(root, frame))
    for t in sorted(frame["target"].unique()):
        counts, spreads = [], []
        for search in results.target_searches(root, t):
            values = [h["fitness"] for h in search["history"]]
            counts.append(len(set(values)))
            spreads.append(100 * (max(values) - min(values)))
        lo, hi = min(counts), max(counts)
        values = str(lo) if lo == hi else f"{lo}--{hi}"
        spread = (f"{min(spreads):.1f}" if f"{min(spreads):.1f}" == f"{max(spreads):.1f}"
                  else f"{min(spreads):.1f}--{max(spreads):.1f}")
        assert f"{values} distinct values {spread} points apart on \\texttt{{{t}}}" in claim
