"""The paper's sentences follow the numbers: built from synthetic frames where AMCF is clearly
above the ensemble, clearly below it, or equal within noise."""

import numpy as np
import pandas as pd
import pytest

from compendium.report.claims import (
    PAIR_MACROS,
    claim_comparisons,
    claim_macros,
    comparisons_table_latex,
    render_claims,
    reproduction_claim,
)
from compendium.report.stats import holm

TARGETS = ("t1", "t2", "t3")
SEEDS = 10


def _frame(amcf_shift: float, *, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """AMCF = ensemble + amcf_shift + seed noise; a single source well below both."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, base in zip(TARGETS, (0.6, 0.7, 0.8), strict=True):
        shared = rng.normal(0, 0.02, SEEDS)  # seed effects both methods share (pairing)
        accs = {"ensemble": base + shared,
                "amcf": base + amcf_shift + shared + rng.normal(0, noise, SEEDS),
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
    return claim_macros(frame, claim_comparisons(frame))


def test_ensemble_claim_says_higher_when_amcf_is_clearly_above():
    claims = _claims(_frame(+0.05))
    assert claims["ClaimEnsemble"].startswith("AMCF is more accurate than the independent "
                                              "ensemble")
    assert "collaboration adds accuracy" in claims["ClaimEnsemble"]
    assert "Per target, AMCF is higher on" in claims["ClaimEnsemble"]
    assert "more accurate than the independent ensemble" in claims["ClaimHeadline"]


def test_ensemble_claim_says_lower_when_amcf_is_clearly_below():
    claims = _claims(_frame(-0.05))
    assert claims["ClaimEnsemble"].startswith("AMCF is less accurate than the independent "
                                              "ensemble")
    assert "not from collaborating" in claims["ClaimEnsemble"]
    assert "less accurate than the independent ensemble" in claims["ClaimHeadline"]


def test_ensemble_claim_says_no_clear_difference_when_equal_within_noise():
    claims = _claims(_frame(0.0, noise=0.02, seed=3))
    assert claims["ClaimEnsemble"].startswith("AMCF and the independent ensemble show no clear "
                                              "difference")
    assert "not clearly different from the independent ensemble" in claims["ClaimHeadline"]


def test_claims_cite_the_pooled_numbers_and_absent_pairs_say_not_run():
    frame = _frame(+0.05)
    comparisons = claim_comparisons(frame)
    pooled = comparisons[(comparisons.scope == "pooled") & (comparisons.method_b == "ensemble")]
    claims = claim_macros(frame, comparisons)
    assert f"{100 * pooled.mean_diff.item():+.1f} percentage points" in claims["ClaimEnsemble"]
    assert set(PAIR_MACROS.values()) <= set(claims)
    assert "was not run" in claims["ClaimLamZero"]
    assert "was not run" in claims["ClaimSelectVsAmcf"]
    # the best single source is well below AMCF on every target
    assert claims["ClaimBestSingle"].startswith("AMCF is more accurate than the best single")
    assert "3.0 times the 12" not in claims["ClaimCost"]
    assert "36 model-epochs" in claims["ClaimCost"]


def test_rendered_claims_are_tex_macros_and_the_table_has_every_row():
    frame = _frame(+0.05)
    comparisons = claim_comparisons(frame)
    text = render_claims(claim_macros(frame, comparisons))
    assert text.count("\\newcommand{\\Claim") >= len(PAIR_MACROS) + 2
    table = comparisons_table_latex(comparisons, {})
    assert table.count(r"\\") - 1 == len(comparisons)  # header row + one per comparison
    with pytest.raises(ValueError, match="no comparison can be made"):
        claim_comparisons(frame[frame.method == "ensemble"])


def test_holm_runs_over_decisive_and_secondary_comparisons_together():
    frame = _frame(+0.05)
    extra = frame[frame.method == "amcf"].assign(method="amcf-k2", label="K2")
    extra["test_acc"] -= 0.03 + np.random.default_rng(1).normal(0, 0.005, len(extra))
    frame = pd.concat([frame, extra], ignore_index=True)
    comparisons = claim_comparisons(frame)
    assert set(comparisons["group"]) == {"decisive", "secondary"}
    assert comparisons["p_holm"].tolist() == pytest.approx(holm(comparisons["p"]).tolist(),
                                                           nan_ok=True)
    claims = claim_macros(frame, comparisons)
    # two decisive pairs and one secondary, each on three targets and pooled
    assert claims["ClaimHolmFamily"] == "all 12 comparisons, 8 decisive and 4 secondary"
    assert claims["ClaimSecondaryAblations"].startswith("AMCF is more accurate than K2")


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
