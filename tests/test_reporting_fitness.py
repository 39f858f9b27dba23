"""Does the search's fitness predict the final accuracy, and does its choice depend on the
score? (compendium.report.fitness)"""

from __future__ import annotations

import math

import pandas as pd

from compendium.report.fitness import fitness_claim, fitness_table_latex, target_fitness_row


def _searches(accs, losses, same):
    return [{"seed": k, "best": [k % 2, 0], "val_acc": a, "val_loss": lo, "same_scheme": s}
            for k, (a, lo, s) in enumerate(zip(accs, losses, same, strict=True))]


def _runs(test_accs):
    return pd.DataFrame({"seed": range(len(test_accs)), "test_acc": test_accs})


def test_a_fitness_that_ranks_as_the_final_accuracy_gets_rho_one():
    searches = _searches([0.5, 0.6, 0.7], [1.5, 1.2, 1.0], [True, False, True])
    # seeds 0..5 use searches 0,1,2,0,1,2: test accuracy rises with the search's fitness
    row = target_fitness_row("t", searches, _runs([0.40, 0.50, 0.60, 0.41, 0.52, 0.61]))
    assert row["rho_accuracy"] > 0.8 and row["rho_loss"] > 0.8
    assert (row["searches"], row["compared"], row["same_scheme"]) == (3, 3, 2)
    assert row["distinct_schemes"] == 2 and row["pairs"] == 6


def test_a_quantised_fitness_has_no_ranking_and_says_why():
    searches = _searches([0.6, 0.6], [1.1, 1.3], [True, True])
    row = target_fitness_row("t", searches, _runs([0.5, 0.4, 0.55, 0.45]))
    assert math.isnan(row["rho_accuracy"]) and "constant" in row["note"]
    assert row["rho_loss"] > 0.5  # the loss still ranks the two schemes


def test_the_claim_follows_the_numbers():
    low = pd.DataFrame([target_fitness_row(
        "t", _searches([0.5, 0.6, 0.7], [1.0, 1.1, 1.2], [True] * 3),
        _runs([0.5, 0.4, 0.6, 0.45, 0.55, 0.5]))])
    high = pd.DataFrame([target_fitness_row(
        "t", _searches([0.5, 0.6, 0.7, 0.8], [1.4, 1.3, 1.2, 1.1], [False] * 4),
        _runs([0.1, 0.2, 0.3, 0.4, 0.11, 0.21, 0.31, 0.41]))])
    assert "none is different from zero" in fitness_claim(low)
    assert "3 of 3 searches" in fitness_claim(low)
    assert "only accuracy on" in fitness_claim(high) or "are different" in fitness_claim(high)
    assert "0 of 4 searches" in fitness_claim(high)
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
