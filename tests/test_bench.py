"""The fast paths compute what the plain ones do: the reference loop (the authors' way) and
amcf's trainer give the same losses and the same chosen scheme, also when amcf's trainings run
side by side; the reference does what the authors' script does; the test-evaluation policy,
pooled DataLoader workers and the images stored at prepare time change no number."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SmallCNN
from PIL import Image

from amcf.datasets import iterate_batches
from amcf.layers import freeze_bottom
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from benchmarks.sidebyside import (
    Setup,
    compare_parallel,
    compare_search,
    compare_training,
    load_reference,
)
from benchmarks.stage_costs import stage_costs
from compendium.data.transforms import FileImageDataset, paper_transform

CONFIG = TrainConfig(epochs=2, batch_size=32, lr=0.05, progress=False, device="cpu")


def _subset(dataset, n):
    return dataset.__class__(dataset.images[:n], dataset.labels[:n],
                             dataset.mean.flatten().tolist(), dataset.std.flatten().tolist(),
                             dataset.augment)


@pytest.fixture
def small(digits):
    return dataclasses.replace(digits, train=_subset(digits.train, 160),
                               val=_subset(digits.val, 64), test=_subset(digits.test, 64))


def small_cnn(j: int) -> SmallCNN:
    """Source j (a module-level function: worker processes unpickle it by name)."""
    return SmallCNN(width=8 + 4 * j)


def _setup(splits, k=2) -> Setup:
    return Setup(name="test", sources=[f"s{j}" for j in range(k)], splits=splits, lam=0.2,
                 freeze_bn_stats=False,
                 pso={"particles": 3, "iterations": 1, "seed": 0, "v_max": 1.0},
                 fitness=CONFIG.model_copy(update={"epochs": 1}), final=CONFIG,
                 scheme=(1, 0)[:k], build_one=small_cnn)


def test_reference_loop_trains_exactly_as_fit(small, tmp_path):
    ref = load_reference()
    setup = _setup(small)
    files = ref.file_splits(small, tmp_path)
    loop = ref.ReferenceLoop(files, setup.lam, ref.Recipe.from_config(CONFIG))
    reference = loop.train(setup.frozen(setup.scheme))
    ours = fit(setup.frozen(setup.scheme), small, CONFIG, MCLoss(setup.lam))
    assert reference.first_loss == pytest.approx(ours.breakdown["first_loss"], rel=1e-5)
    for a, b in zip(reference.history, ours.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert (a["val_acc"], a["test_acc"]) == (b["val_acc"], b["test_acc"])
    row = compare_training(setup, ref, files, epochs=1, device="cpu")
    assert row["steps"] == 5 and row["train_ratio"] > 0


def test_reference_loop_does_what_the_authors_script_does(small, tmp_path, monkeypatch):
    """One loop is one run of the script: its loaders are built once and serve every fitness
    call, start no worker, and decode each image from its file, in this process, every time
    a batch draws it; every fitness call builds its models again (no memo)."""
    ref = load_reference()
    setup = _setup(small)
    files = ref.file_splits(small, tmp_path)
    loop = ref.ReferenceLoop(files, setup.lam, ref.Recipe.from_config(setup.fitness))
    assert {split: ldr.num_workers for split, ldr in loop.loaders.items()} == {
        "train": 0, "val": 0, "test": 0}
    later, reads, builds = [], [], []
    monkeypatch.setattr(ref, "DataLoader", lambda *a, **k: later.append(a))
    read = ref.ImageFiles.__getitem__
    monkeypatch.setattr(ref.ImageFiles, "__getitem__",
                        lambda self, i: reads.append(os.getpid()) or read(self, i))
    fitness = ref.reference_fitness(loop, lambda: builds.append(1) or setup.build(),
                                    freeze_bottom)
    assert fitness((1, 0)) == fitness((1, 0))  # reseeded: the same scheme scores the same
    assert later == [] and len(builds) == 2
    assert len(reads) == 2 * (len(small.train) + len(small.val))  # 1 epoch, val only
    assert set(reads) == {os.getpid()}


def test_trainings_side_by_side_train_what_the_reference_trains(small, tmp_path):
    """amcf's trainings run through the pipeline's fan-out in two worker processes, one
    thread each, and each computes the reference's first-batch loss for its seed."""
    ref = load_reference()
    setup = _setup(small)
    out = compare_parallel(setup, ref, ref.file_splits(small, tmp_path), trainings=3,
                           workers=2, epochs=1, device="cpu")
    assert os.getpid() not in out["worker_pids"] and 1 <= len(out["worker_pids"]) <= 2
    assert out["worker_threads"] == [1]
    assert out["parallel_ratio"] > 0 and out["amcf"]["wall_s"] >= out["amcf"]["trainings_s"]
    assert "AMCF_LOCAL_WORKERS" not in os.environ


def test_paper_search_and_amcf_search_choose_the_same_scheme(small, tmp_path):
    ref = load_reference()
    setup = _setup(small)
    out = compare_search(setup, ref, ref.file_splits(small, tmp_path), device="cpu")
    assert out["same_scheme"]
    assert out["reference"]["best_fitness"] == out["amcf"]["best_fitness"]
    assert out["reference"]["calls"] == out["amcf"]["calls"] == 6
    assert out["reference"]["trainings"] == 6 >= out["amcf"]["trainings"]


def test_reference_swarm_flies_like_amcf_swarm():
    from amcf.search.pso import pso

    def fitness(scheme):  # many ties and repeats, so the memo and strict updates matter
        return float(-abs(scheme[0] - 3) - (scheme[1] % 4))

    ref = load_reference()
    ours = pso(fitness, 2, high=[10, 7], particles=5, iterations=4, seed=3, v_max=2.0)
    theirs = ref.reference_pso(fitness, [10, 7], particles=5, iterations=4, seed=3, v_max=2.0)
    assert [h["scheme"] for h in ours.history] == [h["scheme"] for h in theirs.history]
    assert tuple(theirs.best) == ours.best and theirs.trainings == 25 > ours.evaluations


def test_test_split_only_when_val_improves_selects_the_same(small):
    torch.manual_seed(0)
    every = fit([SmallCNN(), SmallCNN(width=8)], small, CONFIG.model_copy(update={"epochs": 4}))
    torch.manual_seed(0)
    improved = fit([SmallCNN(), SmallCNN(width=8)], small,
                   CONFIG.model_copy(update={"epochs": 4, "test_eval": "improved"}))
    assert every.selected_epoch == improved.selected_epoch
    assert every.test_acc == improved.test_acc
    assert torch.equal(every.test_predictions, improved.test_predictions)
    for a, b in zip(every.metrics["members"], improved.metrics["members"], strict=True):
        assert (a["selected_epoch"], a["test_acc"]) == (b["selected_epoch"], b["test_acc"])
    assert [r["val_acc"] for r in every.history] == [r["val_acc"] for r in improved.history]
    assert improved.best_test_acc is None and every.best_test_acc is not None
    evaluated = [r["epoch"] for r in improved.history if r["test_acc"] is not None]
    assert improved.breakdown["test_evaluations"] == len(evaluated) <= 4
    assert every.breakdown["test_evaluations"] == 4


def test_new_recipe_fields_keep_old_identities_and_workers_follow_the_cores():
    base = TrainConfig()
    assert "test_eval" not in base.identity() and "compile" not in base.identity()
    assert TrainConfig(test_eval="improved").identity()["test_eval"] == "improved"
    assert TrainConfig(num_workers="auto").identity() == base.identity()
    assert 0 <= TrainConfig(num_workers="auto").workers() <= 8
    with pytest.raises(ValueError, match="num_workers"):
        TrainConfig(num_workers=-1)


def _photos(root: Path, n: int = 4, size=(300, 270)) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = rng.integers(0, 256, (size[1] // 10, size[0] // 10, 3), dtype=np.uint8)
            img = Image.fromarray(base).resize(size, Image.BILINEAR)
            img.save(root / c / f"{i}.jpg", quality=90)
    return root


def test_pooled_workers_give_the_batches_of_a_plain_pass(tmp_path):
    root = _photos(tmp_path / "p")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
    data = FileImageDataset(root, files, [0] * 4 + [1] * 4, paper_transform(True, 32, 40))
    passes = {}
    for workers in (0, 2):
        g = torch.Generator().manual_seed(7)
        passes[workers] = [[x for x, _ in iterate_batches(data, 3, train=True, generator=g,
                                                          num_workers=workers)]
                           for _ in range(2)]
    for a, b in zip(passes[0], passes[2], strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(passes[0][0][0], passes[0][1][0])  # a new draw each epoch
    state = torch.get_rng_state()
    list(iterate_batches(data, 3, train=True, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(state, torch.get_rng_state())  # the caller's stream is untouched


def test_stage_costs_split_a_stage_into_overhead_and_training(tmp_path):
    nbs, work = tmp_path / "notebooks", tmp_path / "work"
    nbs.mkdir()
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "+00:00"  # noqa: E731

    def cell(src, seconds, tags=()):
        return {"cell_type": "code", "source": src,
                "metadata": {"tags": list(tags), "papermill": {"duration": seconds}}}

    nb = {"metadata": {"papermill": {"duration": 10.0, "start_time": stamp(now - 10),
                                     "end_time": stamp(now + 1), "exception": None}},
          "cells": [cell("x = 1", 0.1, ["parameters"]), cell("x = 2", 0.1, ["injected-parameters"]),
                    cell("import amcf", 3.0), cell("out = amcf_stage(s)", 5.0),
                    cell("plot()", 0.8)]}
    (nbs / "amcf-digits-0.ipynb").write_text(json.dumps(nb))
    (work / "run").mkdir(parents=True)
    (work / "run" / "metrics.json").write_text(json.dumps({"wall_time_s": 4.0}))
    search = {**nb, "cells": nb["cells"][:3] + [cell("result = run_amls(a)", 6.0)]}
    search["metadata"] = {"papermill": {**nb["metadata"]["papermill"],
                                        "start_time": stamp(now - 100),
                                        "end_time": stamp(now - 90)}}
    (nbs / "search-digits.ipynb").write_text(json.dumps(search))
    out = stage_costs(nbs, work, measure=False)
    amcf, srch = out["kinds"]["amcf"], out["kinds"]["search"]
    assert amcf["training_s"] == 4.0 and amcf["training_from"] == ["fit records"]
    assert amcf["kernel_s"] == pytest.approx(10.0 - 9.0) and amcf["imports_s"] == 3.0
    assert amcf["outside_share"] == pytest.approx(0.6)
    assert srch["training_s"] == 6.0 and srch["training_from"] == ["trainer cells (upper bound)"]
    assert out["outside_share"] == pytest.approx((6.0 + 4.0) / 20.0)
    os.utime(work / "run" / "metrics.json", (now - 1000, now - 1000))  # an older run: not ours
    assert stage_costs(nbs, work, measure=False)["kinds"]["amcf"]["training_s"] == 5.0


@pytest.mark.parametrize("notebook", ["search", "amcf", "baselines", "ablations", "pretrain"])
def test_every_training_notebook_has_a_cell_stage_costs_counts_as_training(notebook):
    """Without a fit record (the search trains in memory), stage_costs finds the training in
    the cells that call the trainer; a notebook whose call it does not know would count its
    whole training as overhead."""
    from benchmarks.stage_costs import TRAINER_CALLS

    nb = json.loads((Path(__file__).parents[1] / "notebooks" / f"{notebook}.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(call in src for src in sources for call in TRAINER_CALLS)
