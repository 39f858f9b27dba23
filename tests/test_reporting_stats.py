import math

import pandas as pd
import pytest

from compendium.report.stats import best_single_source, mean_std, paired_comparison, paired_test


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


def test_the_reports_reference_competes_only_on_the_most_seeds():
    # the probe's three seeds were easy ones: its higher mean over them must not beat
    # fine-tuning's over every seed, whose reference pairs with AMCF on all ten
    from compendium.report.stats import reference_source

    frame = _frame([("t", "linear-a", s, 0.9, 0.9, True, 2) for s in range(3)]
                   + [("t", "finetune-z", s, 0.8, 0.8, True, 1) for s in range(10)])
    assert best_single_source(frame, "t") == "linear-a"  # the rule over any seeds
    assert reference_source(frame, "t") == "finetune-z"
    assert reference_source(frame, "t", candidates=["linear-a"]) == "linear-a"
    assert reference_source(frame, "missing") is None


def test_best_single_source_tie_goes_to_table_order():
    frame = _frame([("t", "linear-a", 0, 0.8, 0.1, True, 2),
                    ("t", "finetune-z", 0, 0.8, 0.9, True, 1)])
    assert best_single_source(frame, "t") == "finetune-z"


# --- intervals, Holm, the comparison table ------------------------------------------------

from compendium.report.stats import (  # noqa: E402
    BEST_SINGLE,
    comparison_table,
    decisive_pairs,
    equivalence,
    holm,
    paired_difference,
    stratified_difference,
)

T_975_DF2 = 4.302652729911275  # Student t quantile, 97.5 %, two degrees of freedom


def test_paired_difference_interval_matches_hand_computation():
    a, b = [0.80, 0.82, 0.85], [0.78, 0.81, 0.80]
    mean = 0.08 / 3
    se = math.sqrt((0.0030 - 0.0064 / 3) / 2) / math.sqrt(3)
    t = mean / se
    result = paired_difference(a, b)
    assert result.n == 3 and result.df == 2
    assert result.mean_diff == pytest.approx(mean)
    assert result.ci_low == pytest.approx(mean - T_975_DF2 * se)
    assert result.ci_high == pytest.approx(mean + T_975_DF2 * se)
    assert result.p == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-9)


def test_paired_difference_without_spread_or_seeds_gives_no_p_value():
    constant = paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert constant.mean_diff == pytest.approx(0.1) and math.isnan(constant.p)
    assert constant.ci_low == pytest.approx(0.1) == constant.ci_high
    single = paired_difference([0.9], [0.8])
    assert math.isnan(single.p) and math.isnan(single.ci_low)
    with pytest.raises(ValueError, match="pair the values by seed"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([0.1, 0.2], [0.0, 0.1], confidence=95)


def test_holm_matches_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_order_and_skips_nan():
    adjusted = holm([0.5, float("nan"), 0.2, 0.9])
    assert math.isnan(adjusted[1])
    # family of three: 0.2*3 = 0.6, 0.5*2 = 1.0, 0.9*1 -> 1.0 (monotone)
    assert adjusted[[2, 0, 3]].tolist() == pytest.approx([0.6, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_stratified_difference_weighs_targets_equally_with_welch_df():
    a1, b1 = [0.9, 0.8, 0.85], [0.8, 0.8, 0.8]  # diffs 0.1, 0.0, 0.05
    a2, b2 = [0.5, 0.6, 0.4, 0.5, 0.7], [0.5, 0.5, 0.5, 0.5, 0.5]  # diffs 0, .1, -.1, 0, .2
    d1, d2 = [0.1, 0.0, 0.05], [0.0, 0.1, -0.1, 0.0, 0.2]
    v1 = sum((x - 0.05) ** 2 for x in d1) / 2 / (3 * 4)
    v2 = sum((x - 0.04) ** 2 for x in d2) / 4 / (5 * 4)
    result = stratified_difference([(a1, b1), (a2, b2)])
    assert result.mean_diff == pytest.approx((0.05 + 0.04) / 2)  # not the mean of all 8 pairs
    assert result.se == pytest.approx(math.sqrt(v1 + v2))
    assert result.df == pytest.approx((v1 + v2) ** 2 / (v1 ** 2 / 2 + v2 ** 2 / 4))
    assert result.n == 8
    one = stratified_difference([(a1, b1)])
    assert one.p == pytest.approx(paired_difference(a1, b1).p)


def _acc_frame(values: dict, val: dict | None = None):
    """A collected-results frame from {(target, method): per-seed test accuracies}."""
    rows = []
    for (target, method), accs in values.items():
        for seed, acc in enumerate(accs):
            rows.append({"target": target, "method": method, "seed": seed, "test_acc": acc,
                         "val_acc": (val or {}).get(method, 0.5),
                         "single_source": method.startswith("finetune-"), "order": 0})
    return pd.DataFrame(rows)


def test_comparison_table_per_target_pooled_holm_and_verdicts():
    seeds = 10
    noise = [0.01 * ((i * 7) % 5 - 2) for i in range(seeds)]
    values = {}
    for target, base in (("t1", 0.6), ("t2", 0.8)):
        values[(target, "ensemble")] = [base + e for e in noise]
        values[(target, "amcf")] = [base + 0.05 + e + 0.002 * (i % 3) for i, e in enumerate(noise)]
        values[(target, "finetune-x")] = [base + 0.1 + e + 0.003 * (i % 2)
                                          for i, e in enumerate(noise)]
        values[(target, "finetune-y")] = [base - 0.1 + e for e in noise]
    frame = _acc_frame(values, val={"finetune-x": 0.4, "finetune-y": 0.9})
    table = comparison_table(frame, [("amcf", "ensemble"), ("amcf", BEST_SINGLE)])
    assert table["scope"].tolist() == ["t1", "t2", "pooled"] * 2
    # the best single source is chosen on validation (finetune-y), not on test (finetune-x)
    best = table[table["method_b"] == BEST_SINGLE]
    assert set(best["resolved_b"]) == {"finetune-y"}
    assert (best.loc[best["scope"] != "pooled", "verdict"] == "higher").all()
    pooled = table[(table["scope"] == "pooled") & (table["method_b"] == "ensemble")].iloc[0]
    assert pooled["n"] == 2 * seeds and pooled["mean_diff"] == pytest.approx(0.052, abs=2e-3)
    assert pooled["ci_low"] < pooled["mean_diff"] < pooled["ci_high"]
    # Holm runs over the four per-target rows; a pooled row is a function of them, so it is
    # descriptive: its unadjusted p is shown, it gets no adjusted p and no verdict
    per_target = table[table["scope"] != "pooled"]
    assert per_target["p_holm"].tolist() == pytest.approx(holm(per_target["p"]).tolist())
    assert (per_target["p_holm"] >= per_target["p"]).all()
    pooled_rows = table[table["scope"] == "pooled"]
    assert pooled_rows["p_holm"].isna().all() and (pooled_rows["verdict"] == "descriptive").all()


def test_comparison_table_says_lower_and_no_clear_difference():
    noise = [0.02 * ((i * 3) % 7 - 3) for i in range(10)]
    values = {("t", "ensemble"): [0.7 + e for e in noise],
              ("t", "amcf"): [0.6 + e + 0.001 * i for i, e in enumerate(noise)],
              ("t", "amcf-lam0"): [0.6 + e + 0.03 * ((i * 5) % 3 - 1) for i, e in enumerate(noise)]}
    table = comparison_table(_acc_frame(values), [("amcf", "ensemble"), ("amcf", "amcf-lam0")])
    by = table[table["scope"] == "t"].set_index("method_b")["verdict"]
    assert by["ensemble"] == "lower" and by["amcf-lam0"] == "no clear difference"


def test_comparison_table_pairs_only_common_seeds():
    values = {("t", "amcf"): [0.5, 0.6, 0.7, 0.8], ("t", "ensemble"): [0.4, 0.55, 0.65]}
    row = comparison_table(_acc_frame(values), [("amcf", "ensemble")]).iloc[0]
    assert row["n"] == 3 and row["mean_diff"] == pytest.approx((0.1 + 0.05 + 0.05) / 3)


def test_decisive_pairs_skip_a_method_that_did_not_run():
    frame = _acc_frame({("t", "amcf"): [0.5], ("t", "ensemble"): [0.4],
                        ("t", "finetune-a"): [0.3]})
    pairs = decisive_pairs(frame)
    assert ("amcf", "ensemble") in pairs and ("amcf", BEST_SINGLE) in pairs
    assert not any("amcf-select" in p or "amcf-lam0" in p for p in pairs)


def test_only_the_adjusted_pairs_form_the_holm_family():
    noise = [0.01 * ((i * 7) % 5 - 2) for i in range(10)]
    values = {("t", "ensemble"): [0.6 + e for e in noise],
              ("t", "amcf"): [0.62 + e + 0.004 * (i % 3) for i, e in enumerate(noise)],
              ("t", "amcf-k1"): [0.55 + e + 0.01 * (i % 2) for i, e in enumerate(noise)]}
    frame = _acc_frame(values)
    pairs = [("amcf", "ensemble"), ("amcf", "amcf-k1")]
    alone = comparison_table(frame, pairs, adjusted=[("amcf", "ensemble")])
    both = comparison_table(frame, pairs)
    row = alone[(alone["scope"] == "t") & (alone["method_b"] == "ensemble")].iloc[0]
    assert row["p_holm"] == pytest.approx(row["p"])  # a family of one: no correction
    per_target = both[both["scope"] == "t"]
    assert per_target["p_holm"].tolist() == pytest.approx(holm(per_target["p"]).tolist())
    assert alone["p_holm"].notna().sum() == 1 and both["p_holm"].notna().sum() == 2
    k1 = alone[alone["method_b"] == "amcf-k1"]
    assert (k1["verdict"] == "descriptive").all() and k1["p_holm"].isna().all()
    assert k1["p"].notna().all()


@pytest.mark.parametrize(("low", "high", "expected"), [
    (-0.004, 0.009, "equivalent"),  # the whole interval inside +-1 point
    (-0.004, 0.012, "not shown equivalent"),  # reaches beyond +1
    (-0.03, -0.011, "not shown equivalent"),  # wholly outside
    (float("nan"), float("nan"), ""),  # no interval, no statement
])
def test_equivalence_compares_the_whole_interval_with_the_margin(low, high, expected):
    assert equivalence(low, high, 0.01) == expected
    assert equivalence(low, high, None) == ""


def test_the_comparison_table_states_equivalence_against_the_margin():
    base = [0.6 + 0.01 * ((i * 7) % 5 - 2) for i in range(10)]
    values = {("t", "ensemble"): base,
              ("t", "amcf"): [b + 0.001 * ((i * 3) % 4 - 1.5) for i, b in enumerate(base)]}
    table = comparison_table(_acc_frame(values), [("amcf", "ensemble")], margin=0.01)
    assert set(table["equivalence"]) == {"equivalent"}
    wide = comparison_table(_acc_frame(values), [("amcf", "ensemble")], margin=0.0001)
    assert set(wide["equivalence"]) == {"not shown equivalent"}
