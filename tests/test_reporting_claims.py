"""The paper's sentences follow every number: built from synthetic frames where AMCF is clearly
above the ensemble, clearly below it, equal within noise, or each of these on different
targets; and the counts the committed claims state, recounted from the committed results."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reporting_support import demo_plan

from compendium.report.claims import (
    PAIR_MACROS,
    claim_comparisons,
    claim_macros,
    comparisons_table_latex,
    excluded_text,
    render_claims,
    reproduction_claim,
)
from compendium.report.stats import holm

TARGETS = ("t1", "t2", "t3")
SEEDS = 10
PLAN = demo_plan(TARGETS)


def _frame(shift: float | dict, *, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """AMCF = ensemble + shift (one per target, or the same on all) + seed noise; a single
    source well below both."""
    rng = np.random.default_rng(seed)
    shifts = shift if isinstance(shift, dict) else dict.fromkeys(TARGETS, shift)
    rows = []
    for t, base in zip(TARGETS, (0.6, 0.7, 0.8), strict=True):
        shared = rng.normal(0, 0.02, SEEDS)  # seed effects both methods share (pairing)
        accs = {"ensemble": base + shared,
                "amcf": base + shifts[t] + shared + rng.normal(0, noise, SEEDS),
                "finetune-a": base - 0.1 + shared + rng.normal(0, noise, SEEDS)}
        for method, values in accs.items():
            for s, acc in enumerate(values):
                rows.append({"target": t, "method": method, "seed": s, "test_acc": acc,
                             "val_acc": acc, "label": method.upper(), "order": 0,
                             "single_source": method == "finetune-a",
                             "total_model_epochs": 36.0 if method != "finetune-a" else 12.0,
                             "total_wall_time_s": 5.0})
    return pd.DataFrame(rows)


def _claims(frame: pd.DataFrame) -> dict[str, str]:
    return claim_macros(frame, claim_comparisons(frame, PLAN), PLAN)


def _verdicts(frame: pd.DataFrame, b: str = "ensemble") -> dict[str, str]:
    table = claim_comparisons(frame, PLAN)
    rows = table[(table.method_b == b) & (table.scope != "pooled")]
    return dict(zip(rows.scope, rows.verdict, strict=True))


def test_agreement_higher_states_the_consequence():
    frame = _frame(+0.05)
    assert set(_verdicts(frame).values()) == {"higher"}
    claims = _claims(frame)
    assert claims["ClaimEnsemble"].startswith("Against the independent ensemble, AMCF (paired "
                                              "over 10 seeds per target): on \\texttt{t1} it is "
                                              "more accurate")
    assert ("This holds on every target, so collaboration adds accuracy"
            in claims["ClaimEnsemble"])
    assert claims["ClaimHeadline"].startswith("AMCF is more accurate than the independent "
                                              "ensemble on every target")


def test_agreement_lower_states_the_opposite_consequence():
    claims = _claims(_frame(-0.05))
    assert "This holds on every target, so summing independently" in claims["ClaimEnsemble"]
    assert "collaboration adds accuracy" not in claims["ClaimEnsemble"]
    assert claims["ClaimHeadline"].startswith("AMCF is less accurate than the independent "
                                              "ensemble on every target")


def test_a_reversal_between_targets_states_no_general_consequence():
    frame = _frame({"t1": +0.05, "t2": -0.05, "t3": +0.05})
    assert _verdicts(frame) == {"t1": "higher", "t2": "lower", "t3": "higher"}
    claim = _claims(frame)["ClaimEnsemble"]
    assert ("Whether collaboration adds accuracy beyond what more models give on their own "
            "depends on the target: it holds on \\texttt{t1} and \\texttt{t3} and reverses on "
            "\\texttt{t2}.") in claim
    assert "so collaboration" not in claim and "so summing" not in claim
    headline = _claims(frame)["ClaimHeadline"]
    assert headline.startswith("AMCF is more accurate than the independent ensemble on "
                               "\\texttt{t1} and \\texttt{t3} and less accurate than it on "
                               "\\texttt{t2}")


def test_mixed_verdicts_say_where_it_holds_reverses_and_is_unclear():
    frame = _frame({"t1": +0.05, "t2": 0.0, "t3": -0.05}, noise=0.02, seed=3)
    assert _verdicts(frame) == {"t1": "higher", "t2": "no clear difference", "t3": "lower"}
    claim = _claims(frame)["ClaimEnsemble"]
    assert ("depends on the target: it holds on \\texttt{t1} and reverses on \\texttt{t3}, "
            "and is unclear on \\texttt{t2}.") in claim
    # the unclear target says what its interval excludes, against the plan's margin
    assert "on \\texttt{t2} there is no clear difference (" in claim
    assert "not shown equivalent within $\\pm$1 point" in claim


def test_an_effect_shown_on_some_targets_only_is_stated_for_those():
    frame = _frame({"t1": +0.05, "t2": 0.0, "t3": 0.0}, noise=0.02, seed=3)
    assert _verdicts(frame) == {"t1": "higher", "t2": "no clear difference",
                                "t3": "no clear difference"}
    claim = _claims(frame)["ClaimEnsemble"]
    assert ("That collaboration adds accuracy beyond what more models give on their own is "
            "shown on \\texttt{t1} only; on \\texttt{t2} and \\texttt{t3} it is unclear.") in claim


def test_no_clear_difference_anywhere_says_so_and_whether_it_is_equivalent():
    wide = _claims(_frame(0.0, noise=0.02, seed=3))["ClaimEnsemble"]
    assert "On no target is there a clear difference, so these runs cannot tell" in wide
    assert "equivalent within $\\pm$1 point" not in wide.split("On no target")[1]
    tight = _frame(0.0, noise=0.001, seed=1)
    assert set(_verdicts(tight).values()) == {"no clear difference"}
    claim = _claims(tight)["ClaimEnsemble"]
    assert claim.endswith("and on every target the two are equivalent within $\\pm$1 point.")


@pytest.mark.parametrize(("low", "high", "equivalence", "expected"), [
    (-0.004, 0.003, "equivalent", "an advantage of AMCF, if any, is below +0.3 points and a "
     "deficit, if any, below 0.4; equivalent within $\\pm$1 point"),
    (-0.02, 0.015, "not shown equivalent", "an advantage of AMCF, if any, is below +1.5 "
     "points and a deficit, if any, below 2.0; not shown equivalent within $\\pm$1 point"),
    (0.002, 0.03, "not shown equivalent", "a deficit of AMCF is excluded and an advantage, "
     "if any, is below +3.0 points"),
    (-0.03, -0.002, "not shown equivalent", "an advantage of AMCF is excluded and a deficit, "
     "if any, is below 3.0 points"),
])
def test_an_unclear_difference_says_what_its_interval_excludes(low, high, equivalence,
                                                                expected):
    row = pd.Series({"ci_low": low, "ci_high": high, "equivalence": equivalence})
    assert excluded_text(row, "AMCF", 0.01).startswith(expected)


def test_pooled_rows_are_described_not_tested():
    frame = _frame(+0.05)
    comparisons = claim_comparisons(frame, PLAN)
    pooled = comparisons[(comparisons.scope == "pooled") & (comparisons.method_b == "ensemble")]
    assert pooled.verdict.item() == "descriptive" and math.isnan(pooled.p_holm.item())
    claim = claim_macros(frame, comparisons, PLAN)["ClaimEnsemble"]
    assert (f"Averaged over the 3 targets, the difference is "
            f"{100 * pooled.mean_diff.item():+.1f} points") in claim
    assert "(descriptive: the pooled difference is not tested)" in claim


def test_claims_name_absent_pairs_and_the_cost():
    claims = _claims(_frame(+0.05))
    assert set(PAIR_MACROS.values()) <= set(claims)
    assert "was not run" in claims["ClaimLamZero"]
    assert "was not run" in claims["ClaimSelectVsAmcf"]
    assert "This holds on every target, so combining the sources improves" in \
        claims["ClaimBestSingle"]
    assert "3.0 times the 12" not in claims["ClaimCost"]
    assert "36 model-epochs" in claims["ClaimCost"]


def test_rendered_claims_are_tex_macros_and_the_table_has_every_row():
    frame = _frame(+0.05)
    comparisons = claim_comparisons(frame, PLAN)
    text = render_claims(claim_macros(frame, comparisons, PLAN))
    assert text.count("\\newcommand{\\Claim") >= len(PAIR_MACROS) + 3
    table = comparisons_table_latex(comparisons, {})
    assert table.count(r"\\") - 1 == len(comparisons)  # header row + one per comparison
    with pytest.raises(ValueError, match="no comparison can be made"):
        claim_comparisons(frame[frame.method == "ensemble"], PLAN)


def test_the_plan_fixes_the_targets_the_claims_are_drawn_on():
    frame = _frame(+0.05)
    with pytest.raises(ValueError, match=r"targets \['t3'\] that the analysis plan does not"):
        claim_comparisons(frame, demo_plan(("t1", "t2")))
    with pytest.raises(ValueError, match=r"names targets \['t4'\] that have no results"):
        claim_comparisons(frame, demo_plan((*TARGETS, "t4")))


def test_holm_runs_over_the_planned_per_target_rows_only():
    frame = _frame(+0.05)
    extra = frame[frame.method == "amcf"].assign(method="amcf-k2", label="K2")
    extra["test_acc"] -= 0.03 + np.random.default_rng(1).normal(0, 0.005, len(extra))
    frame = pd.concat([frame, extra], ignore_index=True)
    comparisons = claim_comparisons(frame, PLAN)
    assert dict(comparisons.groupby("group").size()) == {"exploratory": 4, "primary": 4,
                                                          "secondary": 4}
    family = comparisons[(comparisons.group != "exploratory") & (comparisons.scope != "pooled")]
    assert family["p_holm"].tolist() == pytest.approx(holm(family["p"]).tolist())
    others = comparisons.drop(family.index)
    assert others["p_holm"].isna().all() and (others["verdict"] == "descriptive").all()
    claims = claim_macros(frame, comparisons, PLAN)
    # two planned pairs on three targets; their pooled rows and the exploratory pair's four
    assert claims["ClaimHolmFamily"] == ("the 6 per-target rows of the 2 planned comparisons "
                                         "that ran; 6 pooled or exploratory rows are descriptive")
    assert claims["ClaimSecondaryAblations"].startswith(
        "Against K2, AMCF (paired over 10 seeds per target; descriptive, outside the tested "
        "family): on \\texttt{t1} the difference is +")
    assert "Holm" not in claims["ClaimSecondaryAblations"]


def test_the_counts_of_the_committed_claims_match_the_committed_results():
    """Every count the comparison claims state, recounted from results/embedded."""
    import yaml

    from compendium.plan import AnalysisPlan
    from compendium.report.collect import collect

    root = Path(__file__).resolve().parents[1]
    plan = AnalysisPlan(**yaml.safe_load((root / "params.yaml").read_text())["analysis_plan"])
    frame = collect(root / "results" / "embedded")
    comparisons = claim_comparisons(frame, plan)
    claims = claim_macros(frame, comparisons, plan)
    for (a, b), name in PAIR_MACROS.items():
        rows = comparisons[(comparisons.method_a == a) & (comparisons.method_b == b)
                           & (comparisons.scope != "pooled")]
        if rows.empty:
            continue
        seeds = set()
        for t, resolved in zip(rows.scope, rows.resolved_b, strict=True):
            def run(m, t=t):
                return set(frame.loc[(frame.target == t) & (frame.method == m), "seed"])
            seeds.add(len(run(a) & run(resolved)))
        counted = " and ".join(str(n) for n in sorted(seeds))
        assert f"(paired over {counted} seeds per target" in claims[name], name
    tested = comparisons[comparisons.verdict != "descriptive"]
    pairs = {(a, b) for a, b in zip(tested.method_a, tested.method_b, strict=True)}
    assert claims["ClaimHolmFamily"].startswith(
        f"the {len(tested)} per-target rows of the {len(pairs)} planned comparisons that ran; "
        f"{len(comparisons) - len(tested)} pooled")
    assert len(tested) == len(plan.targets) * len(pairs) == len(plan.targets) * len(PAIR_MACROS)


def test_reproduction_claim_states_only_a_measured_time():
    missing = reproduction_claim(None)
    assert "No measured" in missing["ClaimReproduction"]
    assert not any(ch.isdigit() for ch in missing["ClaimReproduction"])
    record = {"wall_time_s": 1041.0, "setup_included": True, "machine": "x86_64, cpu_a",
              "finished": "2026-12-06"}
    claim = reproduction_claim(record)
    assert claim["ReproWallTime"] == "17.4 minutes"
    assert claim["ClaimReproduction"] == (
        r"A measured \texttt{make reproduce} of these results took 17.4 minutes (set-up "
        r"included) on x86\_64, cpu\_a, on 2026-12-06.")
    warm = reproduction_claim({**record, "setup_included": False, "wall_time_s": 42.0})
    assert "42 seconds (with the environment already set up)" in warm["ClaimReproduction"]


@pytest.mark.parametrize(("values", "expected"), [
    (["x86-avx2-1thread-v1"] * 2, "policy \\texttt{x86-avx2-1thread-v1} (\\texttt"),
    (["x86-avx2-1thread-v1", ""], "x86-avx2-1thread-v1} (not recorded for some runs)"),
    (["native", "native"], "switched off"),
    (["", ""], "did not record"),
])
def test_the_numerics_sentence_names_what_the_runs_recorded(values, expected):
    from compendium.report.claims import numerics_claim

    text = numerics_claim(pd.DataFrame({"numerics": values}))["ClaimNumerics"]
    assert expected in text
