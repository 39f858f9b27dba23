"""A small synthetic result tree in the pipeline's layout, for the reporting tests. Its
numbers are random draws, not results."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from amcf.io import write_json, write_text
from compendium.plan import AnalysisPlan
from compendium.timing_summary import SUMMARY_NAME, render_summary
from compendium.timings import metrics_digest

DEMO_SOURCES = ("mnist", "animals", "twemoji")
DEMO_TARGETS = ("digits", "omniglot-small")
PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"


def demo_plan(targets: Sequence[str] = DEMO_TARGETS) -> AnalysisPlan:
    """The committed profile's analysis plan, drawn on ``targets``."""
    plan = yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8"))["analysis_plan"]
    return AnalysisPlan(**{**plan, "targets": list(targets)})


def _methods(sources: Sequence[str]) -> list[tuple[str, int]]:
    """(method id, number of models) for a representative subset of the method table."""
    single = [(f"finetune-{s}", 1) for s in sources] + [(f"linear-{s}", 1) for s in sources]
    k = len(sources)
    return [("scratch", 1), *single, ("ensemble", k), ("amcf-lam0", k), ("amcf", k)]


def _history(rng: np.random.Generator, epochs: int, models: int) -> tuple[pd.DataFrame, float]:
    """A history table and the run's (synthetic) wall time."""
    ep = np.arange(1, epochs + 1)
    rise = 1 - np.exp(-ep / 3)
    seconds = rng.uniform(0.5, 1.0, epochs)
    frame = pd.DataFrame({"epoch": ep, "train_loss": 2.3 * np.exp(-ep / 4) + 0.05, "lr": 0.01})
    for split in ("val", "test"):
        frame[f"{split}_acc"] = np.clip(0.9 * rise + rng.normal(0, 0.02, epochs), 0, 1)
    for m in range(models):
        for split in ("val", "test"):
            frame[f"{split}_acc_m{m}"] = np.clip(frame[f"{split}_acc"] - rng.uniform(0, .05), 0, 1)
    return frame, float(seconds.sum())


TEST_IMAGES = 60


def _run(out: Path, rng: np.random.Generator, epochs: int, models: int, classes: int,
         labels: np.ndarray) -> dict:
    """Write one run; returns its row of the timings summary. ``labels``: the target's test
    labels; the run's predictions are right on exactly its test accuracy's share of them, as
    a real run's are (the bootstrap checks that they agree)."""
    hist, wall_time = _history(rng, epochs, models)
    for col in [c for c in hist.columns if c.startswith("test_acc")]:  # a whole image count
        hist[col] = np.round(hist[col] * TEST_IMAGES) / TEST_IMAGES
    write_text(out / "history.csv", hist.to_csv(index=False))
    sel = int(hist["val_acc"].idxmax())
    member = {"val_acc": float(hist["val_acc_m0"].max()),
              "test_acc": float(hist["test_acc_m0"][sel]),
              "best_test_acc": float(hist["test_acc_m0"].max())}
    write_json(out / "metrics.json", {
        "selected_epoch": int(hist["epoch"][sel]), "val_acc": float(hist["val_acc"][sel]),
        "test_acc": float(hist["test_acc"][sel]), "best_test_acc": float(hist["test_acc"].max()),
        "final_test_acc": float(hist["test_acc"].iloc[-1]), "members": [member] * models,
        "epochs": epochs, "num_models": models, "model_epochs": epochs * models,
        "trainable_params": 300_000 * models, "device": "cpu",
    })
    # the draws the tree has always made, so the other synthetic values stay what tests saw
    rng.integers(0, classes, TEST_IMAGES), rng.random(TEST_IMAGES)
    rng.integers(0, classes, TEST_IMAGES)
    right = round(float(hist["test_acc"][sel]) * TEST_IMAGES)
    wrong = np.random.default_rng(int(right)).permutation(TEST_IMAGES)[right:]
    preds = labels.copy()
    preds[wrong] = (labels[wrong] + 1) % classes
    write_text(out / "test_predictions.csv", pd.DataFrame(
        {"index": np.arange(TEST_IMAGES), "label": labels, "prediction": preds}
    ).to_csv(index=False))
    return {"wall_time_s": wall_time, "shared_by": 1, "machine": "synthetic",
            "metrics_sha256": metrics_digest(out / "metrics.json")}


def _search(rng: np.random.Generator, dims: int, particles: int = 4, iterations: int = 2) -> dict:
    rows, memo = [], {}
    pos = rng.uniform(0, 10, (particles, dims))
    for it in range(iterations + 1):
        for p in range(particles):
            scheme = tuple(int(x) for x in pos[p])
            cached = scheme in memo
            memo.setdefault(scheme, float(rng.uniform(0.5, 0.9)))
            rows.append({"iteration": it, "particle": p, "position": pos[p].tolist(),
                         "velocity": [0.0] * dims, "scheme": list(scheme),
                         "fitness": memo[scheme], "cached": cached, "inertia": 1.4 - 0.14 * it})
        pos = np.clip(pos + rng.uniform(-2, 2, pos.shape), 0, 10)
    best = max(memo, key=memo.get)
    return {"best": list(best), "best_fitness": memo[best], "calls": len(rows),
            "evaluations": len(memo), "model_epochs": 2 * dims * len(memo), "history": rows}


def write_demo_results(
    results_dir: str | os.PathLike,
    *,
    targets: Sequence[str] = DEMO_TARGETS,
    sources: Sequence[str] = DEMO_SOURCES,
    seeds: int = 3,
    epochs: int = 6,
    classes: int = 5,
    seed: int = 0,
) -> Path:
    """Write a synthetic tree (metrics, history, predictions, search, layers.json, and the
    timings summary)."""
    root, rng = Path(results_dir), np.random.default_rng(seed)
    timed = []
    for number, target in enumerate(targets):
        # one test split per target, from its own stream (the tree's other draws stay as they were)
        labels = np.random.default_rng([seed, number]).integers(0, classes, TEST_IMAGES)
        for method, models in _methods(sources):
            for s in range(seeds):
                row = _run(root / target / method / f"seed{s}", rng, epochs, models, classes,
                           labels)
                timed.append({"run": f"{target}/{method}/seed{s}", **row})
        write_json(root / target / "search.json", _search(rng, len(sources)))
        timed.append({"run": f"{target}/search", "wall_time_s": float(rng.uniform(5, 10)),
                      "shared_by": 1, "machine": "synthetic",
                      "metrics_sha256": metrics_digest(root / target / "search.json")})
    layers = {s: [[i, f"layer{i}.conv.weight", f"layer{i}", int(10 ** rng.uniform(2, 5))]
                  for i in range(11)] for s in sources}
    write_json(root / "layers.json", layers)
    write_text(root / SUMMARY_NAME, render_summary(timed))
    return root


DEMO_PARAMS = {
    "sources": list(DEMO_SOURCES), "source_arch": "amcf_resnet_tiny", "image_size": 28,
    "lam": 0.2, "particles": 4, "iterations": 2, "w_start": 1.4, "w_end": 0.7, "c1": 1.5,
    "c2": 1.5, "v_max": 5.0, "search_epochs": 2, "epochs": 6, "batch_size": 64, "lr": 0.01,
    "momentum": 0.9, "weight_decay": 5e-4, "step_size": 30, "gamma": 0.1,
}
