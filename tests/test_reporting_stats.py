import math

import pandas as pd
import pytest

from amcf.reporting.stats import best_single_source, mean_std, paired_comparison, paired_test


def test_mean_std_is_sample_std_with_n():
    result = mean_std([1.0, 2.0, 3.0, 4.0])
    assert result.mean == pytest.approx(2.5)
    assert result.std == pytest.approx(math.sqrt(5 / 3))  # ddof=1: 5 / (4 - 1)
    assert result.n == 4


def test_mean_std_single_value_has_no_spread():
    result = mean_std([0.7])
    assert result.mean == pytest.approx(0.7) and math.isnan(result.std) and result.n == 1


def test_mean_std_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="at least one"):
        mean_std([])
    with pytest.raises(ValueError, match="non-finite"):
        mean_std([0.5, float("nan")])


def test_paired_test_matches_hand_computed_t_test():
    a, b = [0.80, 0.82, 0.85], [0.78, 0.81, 0.80]
    # differences 0.02, 0.01, 0.05: mean 0.08/3, sample variance (0.0030 - 0.0064/3) / 2
    mean = 0.08 / 3
    sd = math.sqrt((0.0030 - 0.0064 / 3) / 2)
    t = mean / (sd / math.sqrt(3))
    p_two_sided = 1 - t / math.sqrt(2 + t * t)  # Student t with 2 degrees of freedom
    result = paired_test(a, b, names=("x", "y"))
    assert result.n == 3 and result.wins == 3 and result.losses == 0 and result.ties == 0
    assert result.mean_diff == pytest.approx(mean)
    assert result.p_value == pytest.approx(p_two_sided, rel=1e-9)
    assert result.note == ""


def test_paired_test_counts_wins_losses_ties():
    result = paired_test([0.5, 0.6, 0.7, 0.8], [0.6, 0.6, 0.65, 0.7])
    assert (result.wins, result.losses, result.ties) == (2, 1, 1)
    assert result.mean_diff == pytest.approx((-0.1 + 0 + 0.05 + 0.1) / 4)


def test_paired_test_refuses_p_value_below_three_seeds():
    result = paired_test([0.9, 0.8], [0.7, 0.75])
    assert math.isnan(result.p_value)
    assert "n = 2 < 3" in result.note and "meaningless" in result.note
    assert result.mean_diff == pytest.approx(0.125)


def test_paired_test_constant_difference_has_no_p_value():
    result = paired_test([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert math.isnan(result.p_value) and "identical" in result.note


def test_paired_test_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equal length"):
        paired_test([0.1, 0.2, 0.3], [0.1, 0.2])


def _frame(rows):
    return pd.DataFrame(rows, columns=["target", "method", "seed", "val_acc", "test_acc",
                                       "single_source", "order"])


def test_paired_comparison_pairs_by_seed_not_by_position():
    frame = _frame([
        ("t", "a", 0, 0, 0.9, False, 0), ("t", "a", 1, 0, 0.5, False, 0),
        ("t", "a", 2, 0, 0.7, False, 0),
        # b listed in another seed order, and with an extra seed a lacks
        ("t", "b", 2, 0, 0.6, False, 1), ("t", "b", 0, 0, 0.8, False, 1),
        ("t", "b", 1, 0, 0.6, False, 1), ("t", "b", 3, 0, 0.1, False, 1),
    ])
    result = paired_comparison(frame, "t", "a", "b")
    assert result.n == 3
    assert (result.wins, result.losses) == (2, 1)
    assert result.mean_diff == pytest.approx((0.1 - 0.1 + 0.1) / 3)


def test_paired_comparison_unknown_method_names_the_known_ones():
    frame = _frame([("t", "a", 0, 0, 0.9, False, 0)])
    with pytest.raises(ValueError, match=r"'nope'.*\['a'\]"):
        paired_comparison(frame, "t", "a", "nope")


def test_best_single_source_uses_validation_not_test():
    # finetune-x wins on validation, finetune-y would win on test: the choice must be x
    frame = _frame([
        ("t", "finetune-x", s, 0.80, 0.60, True, 1) for s in range(3)
    ] + [
        ("t", "finetune-y", s, 0.70, 0.90, True, 1) for s in range(3)
    ] + [
        ("t", "amcf", s, 0.99, 0.99, False, 9) for s in range(3)  # not a single-source method
    ] + [
        ("u", "finetune-y", 0, 0.95, 0.1, True, 1),  # another target must not leak in
    ])
    assert best_single_source(frame, "t") == "finetune-x"
    assert best_single_source(frame, "t", candidates=["finetune-y"]) == "finetune-y"
    assert best_single_source(frame, "u") == "finetune-y"
    assert best_single_source(frame, "missing") is None


def test_best_single_source_tie_goes_to_table_order():
    frame = _frame([("t", "linear-a", 0, 0.8, 0.1, True, 2),
                    ("t", "finetune-z", 0, 0.8, 0.9, True, 1)])
    assert best_single_source(frame, "t") == "finetune-z"
