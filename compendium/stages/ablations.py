"""``ablations@<target>``: AMCF with one piece changed (lambda, the scheme, K, or the
collaborative term), the methods of ``compendium/methods/ablations/``; the stage's summary
and its figure."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

from amcf.layers import num_layers
from amcf.models.build import build_frozen
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import TrainResult
from compendium import results
from compendium.data.prepared import load_splits
from compendium.methods.ablations.amcf_dml import DeepMutualLearning
from compendium.methods.entry import Method, discover, runs, seeds_of
from compendium.pipeline.fanout import attached, ends_local_workers, run_all
from compendium.stages.choice import (
    SELECTION_SEEDS,
    best_on_validation,
    candidates_json,
    val_acc,
)
from compendium.stages.runs import (
    Setting,
    check_device,
    run_amcf_variant,
    seeded,
    source_fields,
    train,
)
from compendium.summaries import group_frame, write_group_summary

ABLATIONS: tuple[Method, ...] = discover("compendium.methods.ablations")
ABLATION_RUNS = runs(ABLATIONS)


def random_scheme(setting: Setting, seed: int) -> tuple[int, ...]:
    """A freezing scheme drawn uniformly from the search's ranges (the 'random' ablation)."""
    with seeded(seed):
        counts = [num_layers(m) for m in build_frozen(setting.sources, [0] * len(setting.sources),
                                                       setting.splits)]
    rng = random.Random(f"random-scheme-{setting.splits.name}-{seed}")
    return tuple(rng.randint(0, n - 1) for n in counts)


def restricted(scheme: Sequence[int], subset: Sequence[int]) -> tuple[int, ...]:
    """The scheme's entries of the sources in ``subset`` (indices)."""
    return tuple(scheme[i] for i in subset)


def _subset_score(setting: Setting, seed: int, k: int, subset: tuple[int, ...]) -> float | None:
    """The validation accuracy of the ``amcf-k<k>`` run on the sources ``subset`` (indices):
    built exactly as :func:`compendium.stages.runs.run_amcf_variant` builds it, so the chosen
    subset's published run at this seed reuses this run's work directory."""
    def run() -> TrainResult:
        here = setting.for_seed(seed)
        sources = [here.sources[i] for i in subset]
        with seeded(seed):
            models = build_frozen(sources, restricted(setting.scheme_for(seed), subset),
                                  here.splits, here.freeze_bn_stats)
        return train(here, f"amcf-k{k}", seed, models, MCLoss(here.lam))

    return val_acc(run)


def choose_k_subsets(setting: Setting, seeds: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """For each k < K, the k sources (indices into ``setting.sources``) whose AMCF run has
    the best mean validation accuracy over ``seeds``; ties go to the first subset in
    ``itertools.combinations`` order.

    Each candidate is AMCF on that subset with the searched scheme of its seed restricted to
    it. Cost: every k-subset for every k < K on each seed of ``seeds``, i.e. 2^K - 2 runs a
    seed (K = 3: three 1-subsets and three 2-subsets, 6 runs, of which the 2 chosen are
    that seed's published runs: 4 extra). Writes ``amcf-k<k>/subsets.json`` (every
    candidate's validation accuracies and the chosen sources).
    """
    k_total = len(setting.sources)
    jobs = [(k, subset, seed) for k in range(1, k_total)
            for subset in combinations(range(k_total), k) for seed in seeds]
    scores = dict(zip(jobs, run_all([partial(_subset_score, setting, seed, k, subset)
                                     for k, subset, seed in jobs]), strict=True))
    chosen = {}
    for k in range(1, k_total):
        subsets = list(combinations(range(k_total), k))
        accs = [[scores[k, subset, seed] for seed in seeds] for subset in subsets]
        chosen[k] = subsets[best_on_validation(accs, f"the {k}-source subsets")]
        names = [[setting.sources[i].name for i in subset] for subset in subsets]
        results.write_subsets(setting.out_dir(f"amcf-k{k}", 0).parent, {
            "k": k, "selected_on": "val_acc", "seeds": list(seeds),
            "candidate_runs": len(subsets) * len(seeds),
            "chosen": [setting.sources[i].name for i in chosen[k]],
            "candidates": [{"sources": n, "schemes": [list(restricted(setting.scheme_for(s),
                                                                       subset))
                                                       for s in seeds],
                            **candidates_json(a)}
                           for n, subset, a in zip(names, subsets, accs, strict=True)]})
    return chosen


def run_ablations(setting: Setting, seeds: Sequence[int], lams: Sequence[float],
                  methods: Sequence[str] = ABLATION_RUNS, few_seeds: int | None = None) -> None:
    """AMCF with one piece changed: lambda, the scheme, K, or the collaborative term (the
    non-decisive ones for the first ``few_seeds`` seeds only).

    ``amcf-k`` runs, for each k < K, the k sources chosen on validation on its first seed
    (:func:`choose_k_subsets`: 2^K - 2 candidate runs there, 4 extra for K = 3)."""
    unknown = sorted(set(methods) - set(ABLATION_RUNS))
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; choose from {list(ABLATION_RUNS)}")
    k_total = len(setting.sources)
    amcf = partial(run_amcf_variant, setting)

    def seeds_for(result_id: str) -> list[int]:
        return seeds_of(result_id, seeds, few_seeds, ABLATIONS)

    subsets = (choose_k_subsets(setting, seeds_for("amcf-k1")[:SELECTION_SEEDS])
               if "amcf-k" in methods else {})
    calls = []
    for seed in seeds:
        def runs_here(result_id: str, seed: int = seed) -> bool:
            return seed in seeds_for(result_id)

        if "amcf-lam" in methods:
            for lam in lams:
                if lam != setting.lam and runs_here(f"amcf-lam{lam:g}"):
                    calls.append(partial(amcf, seed, method=f"amcf-lam{lam:g}", lam=lam))
        if "amcf-full" in methods:
            calls.append(partial(amcf, seed, method="amcf-full", scheme=(0,) * k_total))
        if "amcf-random" in methods:
            calls.append(partial(amcf, seed, method="amcf-random",
                                 scheme=random_scheme(setting, seed)))
        if "amcf-k" in methods and runs_here("amcf-k1"):
            for k, subset in subsets.items():
                calls.append(partial(amcf, seed, method=f"amcf-k{k}",
                                     sources=[setting.sources[i] for i in subset],
                                     scheme=restricted(setting.scheme_for(seed), subset)))
        if "amcf-dml" in methods and runs_here("amcf-dml"):
            dml = DeepMutualLearning(**setting.options.get("amcf-dml", {}))
            calls.append(partial(amcf, seed, method="amcf-dml", objective=dml))
    run_all(calls)


@ends_local_workers
def ablations_stage(target: str, methods: Sequence[str], seeds: Sequence[int],
                    few_seeds: int | None, sources: Mapping[str, Mapping[str, Any]],
                    lam: float, freeze_bn_stats: bool, train: Mapping[str, Any],
                    lams: Sequence[float], options: Mapping[str, Any],
                    searches: str | os.PathLike, prepared_dir: str | os.PathLike,
                    results_dir: str | os.PathLike, work_dir: str | os.PathLike,
                    test_eval: str = "every", shots: int | None = None) -> None:
    """The whole ``ablations@<target>`` stage: every ablation, then the stage's summary
    (``<target>/ablations-summary.json``) and its accuracies figure. ``test_eval`` is the
    runs' (amcf.train.config.TrainConfig)."""
    check_device(f"ablations@{target}", train, elsewhere=attached())
    splits = load_splits(target, prepared_dir)
    schemes = results.schemes_of(searches)
    setting = Setting(
        splits=splits, **source_fields(sources),
        scheme=schemes[0], schemes=schemes,
        train=TrainConfig(**{"progress": False, **train, "test_eval": test_eval}),
        lam=lam, freeze_bn_stats=freeze_bn_stats, results_dir=results_dir,
        work_dir=work_dir, options=dict(options), group="ablations", shots=shots)
    run_ablations(setting, seeds, lams, methods, few_seeds=few_seeds)
    frame = group_frame(results_dir, target, "ablations", ABLATIONS)
    write_group_summary(results_dir, target, "ablations", frame)
    # imported here: the worker processes that import this module to train draw nothing
    from compendium.plots.methods import plot_method_accuracies

    plot_method_accuracies(frame, Path(results_dir) / target / "ablations" / "accuracies")
