"""What a profile's campaign costs on GPUs, counted from its params and a few measured rates.

Every training the profile's stages start is listed (:func:`trainings`): the search's fitness
calls, AMCF's seeds, every baseline (the finetune and linear runs train the K sources at
once; the single-source ones one model; ALS its own 60-call search; grids their extra points
on the first seed) and every ablation, and the pretraining of each source. A training costs
its epochs of training and evaluation images (validation every epoch; for final runs test
every epoch, or under ``test_eval: selected`` at most 2 + K passes of its K models; never for
fitness calls), a fixed set-up and its resume checkpoints; with the
rates ``benchmarks/gpu_check.py`` measures, :func:`campaign_hours` turns that into GPU-hours
per target.

Upper bounds by construction: frozen layers (fitness calls, linear probes) are charged as
full training, and the search's memo (repeated schemes are not trained again) is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import comb
from typing import Any

# images per split where the registry records none (the Decathlon) or only "the rest"
# (Caltech-256's test split); from the releases' own counts: Caltech-256 has 29,780 images in
# its 256 classes (clutter dropped); the Decathlon's UCF-101 has 7,629 train and 1,908 val
# images, its Omniglot 17,853 and 6,492 (its val serves as test, 10 % of train as val)
APPROX_SIZES = {
    "caltech256-30": {"test": 29_780 - 256 * 30},
    "caltech256-60": {"test": 29_780 - 256 * 60},
    "decathlon-ucf101": {"train": 7_629 - 763, "val": 763, "test": 1_908},
    "decathlon-omniglot": {"train": 17_853 - 1_785, "val": 1_785, "test": 6_492},
}


@dataclass(frozen=True)
class Training:
    """``count`` trainings of ``models`` models for ``epochs`` epochs on one dataset."""

    stage: str  # search, amcf, baselines, ablations, pretrain
    what: str
    count: int
    models: int
    epochs: int
    test_passes: int  # passes over the test split of one training (each with all its models)
    checkpoints: int  # resume checkpoints each training writes


def split_sizes(name: str) -> tuple[dict[str, int], bool]:
    """Images per split of a dataset, and whether any of them is approximate."""
    from compendium.data.registry import get_info

    sizes = dict(get_info(name).sizes or {})
    approx = APPROX_SIZES.get(name, {})
    known = {s: n for s, n in sizes.items() if n is not None and n >= 0}
    return {**approx, **known}, any(s not in known for s in approx)


def _checkpoints(epochs: int, every: int, keep: bool) -> int:
    """Checkpoints fit writes in ``epochs`` epochs (by epochs only: minutes add a few on slow
    epochs), the last epoch's only when the run keeps it."""
    return (epochs - 1) // every + (1 if keep else 0)


def test_passes(test_eval: str, epochs: int, models: int) -> int:
    """Test passes of one final training: one per epoch, or with ``selected`` the last epoch,
    the fused selection and each member's own (at most; never more than the epochs)."""
    return min(epochs, 2 + models) if test_eval == "selected" else epochs


def trainings(params: Any) -> list[Training]:
    """Every training one target's stages start under ``params`` (a compendium Params)."""
    from compendium.methods.entry import by_run, option_grid, seeds_of
    from compendium.stages.ablations import ABLATIONS
    from compendium.stages.baselines import BASELINES, SINGLE_SOURCE

    k = len(params.amcf.sources)
    all_seeds = params.final.seeds
    final = params.final.train
    epochs = final.epochs
    ckpts = _checkpoints(epochs, final.checkpoint_every, keep=False)  # final runs keep none
    pso = params.search.pso
    calls = pso.particles * (pso.iterations + 1)
    fitness = params.search.fitness.epochs
    test_eval = {"amcf": final.test_eval, "baselines": params.baselines.test_eval,
                 "ablations": params.ablations.test_eval}

    def seeds(result_id: str, section: Any, entries: Any) -> int:
        return len(seeds_of(result_id, all_seeds, section.few_seeds, entries))

    def base(result_id: str) -> int:
        return seeds(result_id, params.baselines, BASELINES)

    def abl(result_id: str) -> int:
        return seeds(result_id, params.ablations, ABLATIONS)

    def final_run(stage: str, what: str, count: int, models: int) -> Training:
        return Training(stage, what, count, models, epochs,
                        test_passes(test_eval[stage], epochs, models), ckpts)

    runs = [Training("search", "fitness calls (AMLS)", len(params.search.search_seeds) * calls,
                     k, fitness, 0, 0),
            final_run("amcf", "AMCF (and amcf-select)", len(all_seeds), k)]
    single = {m.run for m in SINGLE_SOURCE}
    for method in params.baselines.methods:
        if method in ("finetune", "linear"):  # the K sources in one run
            runs.append(final_run("baselines", method, base(f"{method}-x"), k))
        elif method == "als":  # a search of its own (K = 1, AMLS's budget), then its seeds
            runs.append(Training("baselines", "als search", calls, 1, fitness, 0, 0))
            runs.append(final_run("baselines", "als", base("als"), 1))
        elif method in single:
            points = len(option_grid(by_run(SINGLE_SOURCE, method),
                                     params.baselines.options.get(method, {})))
            # a grid trains each point on the first seed; the chosen one is that seed's run
            runs.append(final_run("baselines", method, base(method) + points - 1, 1))
        else:  # a method this count does not know: one single-model run a seed
            runs.append(final_run("baselines", f"{method} (assumed: 1 model)", base(method), 1))
    for method in params.ablations.methods:
        if method == "amcf-lam":  # lam = 0 decides, on every seed; the others on few_seeds
            count = sum(abl("amcf-lam0" if lam == 0 else "amcf-lam1")
                        for lam in params.ablations.lams)
            runs.append(final_run("ablations", method, count, k))
        elif method == "amcf-k":  # each k-subset on the first seed, the chosen one after
            for sub in range(1, k):
                runs.append(final_run("ablations", f"amcf-k{sub}",
                                      comb(k, sub) + abl(f"amcf-k{sub}") - 1, sub))
        else:
            runs.append(final_run("ablations", method, abl(method), k))
    return runs


def pretrainings(params: Any) -> list[tuple[str, Training]]:
    """(dataset, training) of each source the profile pretrains (its checkpoint kept), once
    per draw."""
    return [(entry.dataset, Training("pretrain", name, entry.draws, 1, entry.train.epochs,
                                     test_passes(entry.train.test_eval, entry.train.epochs, 1),
                                     _checkpoints(entry.train.epochs,
                                                  entry.train.checkpoint_every, keep=True)))
            for name, entry in params.pretrain.items()]


def training_seconds(run: Training, sizes: Mapping[str, int], rates: Mapping[str, float]
                     ) -> float:
    """GPU seconds of all ``run.count`` trainings with ``rates``: ``train`` and ``eval``
    (model-images/s: a pair's images/s count twice), ``setup_s`` (a training's fixed cost)
    and ``checkpoint_s`` (one checkpoint of one model)."""
    per_epoch = run.models * (sizes["train"] / rates["train"] + sizes["val"] / rates["eval"])
    tests = run.test_passes * run.models * sizes["test"] / rates["eval"]
    one = (run.epochs * per_epoch + tests + rates["setup_s"]
           + run.checkpoints * run.models * rates["checkpoint_s"])
    return run.count * one


def campaign_hours(params: Any, rates: Mapping[str, float]) -> dict[str, Any]:
    """GPU-hours of every target (per stage) and of the pretraining, one training per GPU at
    a time; ``rates["two_at_once"]`` (the throughput two trainings sharing a GPU give,
    relative to one) gives the hours when trainings share GPUs in pairs."""
    per_target, approximate = {}, []
    runs = trainings(params)
    for target in params.targets:
        sizes, approx = split_sizes(target)
        if approx:
            approximate.append(target)
        stages: dict[str, float] = {}
        for run in runs:
            stages[run.stage] = stages.get(run.stage, 0.0) + training_seconds(run, sizes,
                                                                              rates) / 3600
        per_target[target] = {**{s: round(h, 2) for s, h in stages.items()},
                              "total": round(sum(stages.values()), 2),
                              "images": sizes}
    pretrain = {}
    for dataset, run in pretrainings(params):
        sizes, _ = split_sizes(dataset)
        pretrain[run.what] = round(training_seconds(run, sizes, rates) / 3600, 2)
    total = sum(t["total"] for t in per_target.values()) + sum(pretrain.values())
    share = rates.get("two_at_once") or 1.0
    return {"targets": per_target, "pretrain": pretrain, "total": round(total, 1),
            "total_two_per_gpu": round(total / share, 1),
            "days_one_gpu_two_per_gpu": round(total / share / 24, 1),
            "approximate_sizes": approximate,
            "trainings_per_target": [run.__dict__ for run in runs]}
