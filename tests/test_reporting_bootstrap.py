"""The paired bootstrap over seeds and test images (compendium/report/bootstrap.py), on
constructed predictions."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from compendium.report import bootstrap as bs


def _frame(labels: np.ndarray, correct: np.ndarray, index: np.ndarray | None = None):
    index = np.arange(labels.size) if index is None else index
    return pd.DataFrame({"index": index, "label": labels,
                         "prediction": np.where(correct, labels, (labels + 1) % 10)})


def _simulate(rng, n_seeds, n_images, p_a, p_b, image_sd=1.0, seed_sd=0.3):
    """Crossed design: each image has a difficulty shared by seeds and methods, each seed a
    shift; method a is right with probability p_a on an average image."""
    labels = rng.integers(0, 10, n_images)
    difficulty = rng.normal(0, image_sd, n_images)
    pairs = []
    for seed in range(n_seeds):
        shift = rng.normal(0, seed_sd)
        logit = difficulty + shift
        ca = rng.random(n_images) < 1 / (1 + np.exp(-(logit + np.log(p_a / (1 - p_a)))))
        cb = rng.random(n_images) < 1 / (1 + np.exp(-(logit + np.log(p_b / (1 - p_b)))))
        pairs.append((seed, _frame(labels, ca), _frame(labels, cb)))
    return bs.pair_items(pairs)


def _true_difference(n=400_000):
    # the population difference of the simulation, by Monte Carlo over images
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 1.0, n) + rng.normal(0, 0.3, n)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    return float(np.mean(sig(logit + np.log(0.7 / 0.3)) - sig(logit + np.log(0.6 / 0.4))))


def test_the_interval_covers_the_true_difference_on_a_simulated_paired_design():
    truth = _true_difference()
    covered = 0
    trials = 40
    for k in range(trials):
        items = _simulate(np.random.default_rng(100 + k), 10, 300, 0.7, 0.6)
        low, high = bs.paired_bootstrap(items, 0.95, bs.rng_for("sim", str(k)), resamples=2000)
        covered += low < truth < high
    # 95 % nominal: 40 trials leave room for a few misses, not for a systematic shortfall
    assert covered >= 34


def test_the_interval_widens_when_the_test_set_is_smaller():
    rng = np.random.default_rng(3)
    widths = []
    for n_images in (1000, 100):
        items = _simulate(rng, 10, n_images, 0.7, 0.6)
        low, high = bs.paired_bootstrap(items, 0.95, bs.rng_for("w"))
        widths.append(high - low)
    assert widths[1] > 2 * widths[0]


def test_identical_predictions_give_a_zero_width_interval_at_zero():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 200)
    pairs = []
    for seed in range(5):
        correct = rng.random(200) < 0.6  # seeds differ, but a and b agree on every image
        pairs.append((seed, _frame(labels, correct), _frame(labels, correct)))
    items = bs.pair_items(pairs)
    assert bs.paired_bootstrap(items, 0.95, bs.rng_for("z")) == (0.0, 0.0)
    assert bs.item_se(items) == 0.0


def test_pairing_narrows_the_interval_against_unpaired_images():
    # a and b share most of their errors: the paired interval is far narrower than one
    # built from the two accuracies' own image spreads
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 500)
    pairs = []
    for seed in range(5):
        ca = rng.random(500) < 0.6
        cb = ca.copy()
        flip = rng.choice(500, 10, replace=False)
        cb[flip] = ~cb[flip]
        pairs.append((seed, _frame(labels, ca), _frame(labels, cb)))
    items = bs.pair_items(pairs)
    low, high = bs.paired_bootstrap(items, 0.95, bs.rng_for("p"))
    unpaired_se = np.sqrt(2 * 0.6 * 0.4 / 500)
    assert high - low < unpaired_se


def test_the_interval_is_deterministic_for_a_given_generator():
    items = _simulate(np.random.default_rng(6), 4, 150, 0.7, 0.6)
    one = bs.paired_bootstrap(items, 0.95, bs.rng_for("t", "a", "b"))
    two = bs.paired_bootstrap(items, 0.95, bs.rng_for("t", "a", "b"))
    other = bs.paired_bootstrap(items, 0.95, bs.rng_for("t", "a", "c"))
    assert one == two
    assert one != other


def test_per_seed_test_sets_resample_images_within_each_seed():
    rng = np.random.default_rng(7)
    pairs = []
    for seed in range(6):
        labels = rng.integers(0, 10, 300)
        index = rng.choice(10_000, 300, replace=False)  # a fresh test draw per seed
        ca, cb = rng.random(300) < 0.7, rng.random(300) < 0.6
        pairs.append((seed, _frame(labels, ca, index), _frame(labels, cb, index)))
    items = bs.pair_items(pairs)
    assert not items.shared
    low, high = bs.paired_bootstrap(items, 0.95, bs.rng_for("n"))
    assert low < items.diff.mean() < high
    assert low < 0.1 < high


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(index=f["index"] + 1), "different test images"),
    (lambda f: f.iloc[:-1], "different test images"),
    (lambda f: f.assign(label=(f["label"] + 1) % 10), "different labels"),
    (lambda f: f.drop(columns="prediction"), "lacks columns"),
])
def test_mismatched_test_images_or_labels_are_refused(change, message):
    labels = np.arange(50) % 10
    a = _frame(labels, np.ones(50, bool))
    with pytest.raises(ValueError, match=message) as err:
        bs.pair_items([(0, a, a), (3, a, change(a))], "digits: amcf vs ensemble")
    assert "seed 3" in str(err.value)


def test_ten_thousand_resamples_take_well_under_a_second():
    items = _simulate(np.random.default_rng(8), 10, 500, 0.7, 0.6)
    start = time.perf_counter()
    draws = bs.bootstrap_draws(items, bs.rng_for("speed"), 10_000)
    elapsed = time.perf_counter() - start
    assert draws.shape == (10_000,)
    assert elapsed < 1.0


def test_item_se_is_the_spread_of_the_seed_averaged_image_differences():
    labels = np.zeros(4, int)
    pairs = [(0, _frame(labels, np.array([1, 1, 0, 0], bool)),
              _frame(labels, np.array([0, 1, 0, 0], bool))),
             (1, _frame(labels, np.array([1, 0, 0, 1], bool)),
              _frame(labels, np.array([1, 0, 0, 0], bool)))]
    items = bs.pair_items(pairs)
    per_image = np.array([0.5, 0.0, 0.0, 0.5])
    assert bs.item_se(items) == pytest.approx(per_image.std(ddof=1) / 2)


def test_choose_interval_falls_back_to_t_without_predictions():
    table = pd.DataFrame({"ci_low": [-0.02, -0.03], "ci_high": [0.01, 0.0],
                          "boot_low": [-0.01, np.nan], "boot_high": [0.005, np.nan]})
    table["interval"] = bs.choose_interval(table, "bootstrap")
    assert list(table["interval"]) == ["bootstrap", "t"]
    assert bs.planned_interval(table.iloc[0]) == (-0.01, 0.005)
    assert bs.planned_interval(table.iloc[1]) == (-0.03, 0.0)
    assert list(bs.choose_interval(table, "t")) == ["t", "t"]
    with pytest.raises(ValueError, match="unknown interval"):
        bs.choose_interval(table, "wald")


def _tree(root, n_images=400, seeds=5, gained=(3, 7)):
    """digits: AMCF right on the images in ``gained`` where the ensemble is wrong, the two
    alike elsewhere, on every seed: a difference the same on every seed (a t interval of zero
    width) that rests on a handful of test images."""
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 10, n_images)
    rows = []
    for seed in range(seeds):
        base = rng.random(n_images) < 0.6
        base[list(gained)] = False
        amcf = base.copy()
        amcf[list(gained)] = True
        for method, folder, correct in (("amcf", root / "digits" / "amcf", amcf),
                                        ("ensemble", root / "digits" / "baselines" / "ensemble",
                                         base)):
            run = folder / f"seed{seed}"
            run.mkdir(parents=True)
            _frame(labels, correct).to_csv(run / "test_predictions.csv", index=False)
            rows.append({"target": "digits", "method": method, "seed": seed,
                         "test_acc": float(correct.mean()), "val_acc": 0.5,
                         "label": method.upper(), "order": 0, "single_source": False})
    return pd.DataFrame(rows)


def _plan(interval):
    from reporting_support import demo_plan

    return demo_plan(["digits"]).model_copy(update={"interval": interval})


def test_the_claims_use_the_interval_the_plan_names(tmp_path):
    from compendium.report.claims import claim_comparisons, comparison_claims

    frame = _tree(tmp_path)
    boot = claim_comparisons(frame, _plan("bootstrap"), results_dir=tmp_path)
    row = boot[boot.scope == "digits"].iloc[0]
    assert row["ci_low"] == row["ci_high"] == pytest.approx(0.005)  # t: seeds agree exactly
    assert row["boot_low"] < 0.005 < row["boot_high"] and row["boot_high"] > 0.01
    assert row["interval"] == "bootstrap" and row["equivalence"] == "not shown equivalent"
    pooled = boot[boot.scope == "pooled"].iloc[0]
    assert (pooled["boot_low"], pooled["boot_high"]) == (row["boot_low"], row["boot_high"])
    labels = {"amcf": "AMCF", "ensemble": "Ensemble"}
    text = comparison_claims(boot, labels, 0.01)["ClaimEnsemble"]
    assert "bootstrap interval" in text and "not shown equivalent" in text

    t_only = claim_comparisons(frame, _plan("t"), results_dir=tmp_path)
    row = t_only[t_only.scope == "digits"].iloc[0]
    assert row["interval"] == "t" and row["equivalence"] == "equivalent"
    assert row["boot_high"] == boot[boot.scope == "digits"].iloc[0]["boot_high"]


def test_predictions_that_disagree_with_the_metrics_are_refused(tmp_path):
    from compendium.report.claims import claim_comparisons

    frame = _tree(tmp_path)
    frame.loc[frame.method == "amcf", "test_acc"] += 0.01
    with pytest.raises(ValueError, match="test_predictions.csv and metrics.json disagree"):
        claim_comparisons(frame, _plan("bootstrap"), results_dir=tmp_path)
