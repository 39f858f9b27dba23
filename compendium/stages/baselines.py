"""``baselines@<target>``: every baseline of ``compendium/methods/baselines/`` on every seed
(the non-decisive ones on the first ``few_seeds``), its summary and its figure.

Two runs report several result ids at once, since they are one computation:

- ``finetune``: the K sources fine-tuned with lam = 0. No gradient crosses between models
  and each has its own optimiser, so each member *is* that source's standalone fine-tuning
  (``finetune-<source>``, selected on its own validation accuracy) and the fused prediction
  is the ensemble baseline (``ensemble``).
- ``linear``: the K linear probes (``linear-<source>``).

Every entry with a recipe is a single-source baseline, run generically: on the best single
source on validation (or the first source), its settings grid chosen on validation.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from amcf.models.build import SourceSpec
from amcf.train.config import FitnessConfig, TrainConfig
from amcf.train.fit import TrainResult
from compendium import results
from compendium.data.prepared import load_splits
from compendium.methods.baselines.als import als_search
from compendium.methods.baselines.finetune import finetune
from compendium.methods.baselines.linear import linear_probe
from compendium.methods.entry import Method, by_run, discover, option_grid, runs, seeds_of
from compendium.pipeline.fanout import attached, ends_local_workers, run_all
from compendium.seedstats import best_single_source as best_on_val
from compendium.stages.choice import (
    SELECTION_SEEDS,
    best_on_validation,
    candidates_json,
    val_acc,
)
from compendium.stages.runs import (
    Setting,
    check_device,
    data_fingerprint,
    device_key,
    fingerprint,
    publish,
    run_amcf_variant,
    seeded,
    source_fields,
    sources_fingerprint,
    train,
)
from compendium.summaries import group_frame, write_group_summary

BASELINES: tuple[Method, ...] = discover("compendium.methods.baselines")
BASELINE_RUNS = runs(BASELINES)
# the baselines built from a recipe, and among them the single-source ones, in table order
RECIPES = tuple(m for m in BASELINES if m.recipe is not None)
SINGLE_SOURCE = tuple(m for m in RECIPES if m.on is not None)


def single_source_runs() -> tuple[str, ...]:
    return tuple(m.run for m in SINGLE_SOURCE)


def _publish_members(setting: Setting, prefix: str, seed: int, result: TrainResult,
                     sources: Sequence[SourceSpec]) -> None:
    """One ``<prefix>-<source>`` result per member of a lam = 0 run, from its own selection.

    The K members trained in one process on the same batches; the timing record charges
    each an equal share of the wall time."""
    metrics = result.metrics
    for source, member in zip(sources, metrics["members"], strict=True):
        out = setting.out_dir(f"{prefix}-{source.name}", seed)
        results.publish_files(out, setting.results_dir, setting.timings_dir, result, {
            "method": f"{prefix}-{source.name}", "seed": seed,
            "selected_epoch": member["selected_epoch"], "val_acc": member["val_acc"],
            "test_acc": member["test_acc"], "best_test_acc": member["best_test_acc"],
            "final_test_acc": None, "members": [member],
            "epochs": metrics["epochs"], "num_models": 1, "model_epochs": metrics["epochs"],
            "trainable_params": member.get("trainable_params"),
            "device": metrics["device"], "history_member": sources.index(source),
        }, shared_by=len(sources))


def run_finetune(setting: Setting, seed: int) -> None:
    """Standalone fine-tuning of every source and their ensemble, from one lam = 0 run."""
    setting = setting.for_seed(seed)
    with seeded(seed):
        models, objective = finetune(setting.sources, setting.splits.num_classes,
                                     in_chans=setting.splits.in_chans)
    result = train(setting, "finetune", seed, models, objective)
    publish(setting, "ensemble", seed, result, {"sources": [s.name for s in setting.sources]})
    _publish_members(setting, "finetune", seed, result, setting.sources)


def run_linear(setting: Setting, seed: int) -> None:
    setting = setting.for_seed(seed)
    with seeded(seed):
        models, objective = linear_probe(setting.sources, setting.splits.num_classes,
                                         in_chans=setting.splits.in_chans,
                                         freeze_bn_stats=setting.freeze_bn_stats)
    result = train(setting, "linear", seed, models, objective)
    _publish_members(setting, "linear", seed, result, setting.sources)


def best_single_source(setting: Setting, seeds: Sequence[int]) -> SourceSpec:
    """The source whose standalone fine-tuning has the best mean *validation* accuracy (the
    report's rule for its reference, here among this stage's ``finetune-<source>`` runs)."""
    candidates = [f"finetune-{s.name}" for s in setting.sources]
    frame = group_frame(setting.results_dir, setting.splits.name, setting.group or "amcf",
                        BASELINES)
    frame = frame[frame["seed"].isin(list(seeds))]
    method = best_on_val(frame, setting.splits.name, candidates)
    if method is None:
        raise ValueError(f"no finetune-<source> results for {setting.splits.name} under "
                         f"{setting.results_dir}: run run_finetune for seeds {list(seeds)} first")
    return setting.source(method.removeprefix("finetune-"))


def _recipe(method: str) -> Method:
    for entry in RECIPES:
        if entry.run == method:
            return entry
    raise ValueError(f"unknown baseline {method!r}; choose one of "
                     f"{sorted(m.run for m in RECIPES)} (ALS runs through "
                     "compendium.methods.baselines.als.als_search)")


def baseline_params(method: str) -> list[str]:
    """The keyword settings a baseline's recipe accepts (besides sources, num_classes,
    in_chans)."""
    return [p for p in inspect.signature(_recipe(method).recipe).parameters
            if p not in ("sources", "num_classes", "in_chans")]


def build_baseline(method: str, sources: Any, num_classes: int, *, in_chans: int | None = None,
                   **options: Any) -> tuple[list, Any]:
    """(models, objective) of baseline ``method`` with settings ``options`` (one point;
    ``seed`` too for a seeded recipe), checked before anything is built."""
    entry = _recipe(method)
    accepted = baseline_params(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"baseline {method!r} has no setting {unknown}; it accepts {accepted}")
    return entry.recipe(sources, num_classes, in_chans=in_chans, **options)


def _single_result(setting: Setting, seed: int, method: str, source: SourceSpec,
                   options: dict[str, Any]) -> TrainResult:
    """Train (or reuse) one single-source baseline run with the settings ``options``
    (``source`` by its name, in the draw of ``seed``)."""
    setting = setting.for_seed(seed)
    source = setting.source(source.name)
    options = dict(options)
    if by_run(SINGLE_SOURCE, method).seeded:
        options["seed"] = seed
    with seeded(seed):
        models, objective = build_baseline(method, [source], setting.splits.num_classes,
                                           in_chans=setting.splits.in_chans, **options)
    return train(setting, method, seed, models, objective)


def run_single(setting: Setting, seed: int, method: str, source: SourceSpec,
               options: dict[str, Any] | None = None) -> Path:
    """A single-source baseline (scratch, L2-SP, Child-Tuning F/D, AdaFilter...) on ``source``.

    ``options`` are its settings (one point; :func:`run_baselines` passes the point of the
    settings grid chosen on validation). None takes ``setting.options[method]``, which must
    then be one point (scalars, or one-value lists). The settings go into metrics.json.
    """
    if method not in single_source_runs():
        raise ValueError(f"{method!r} is no single-source run; choose from "
                         f"{single_source_runs()}")
    if options is None:
        points = option_grid(by_run(SINGLE_SOURCE, method), setting.options.get(method, {}))
        if len(points) > 1:
            raise ValueError(f"baselines.options.{method} is a grid of {len(points)} settings; "
                             "run_baselines chooses one on validation (select_options), or "
                             "pass the settings to run as options=")
        options = points[0]
    result = _single_result(setting, seed, method, source, options)
    return publish(setting, method, seed, result,
                   {"sources": [source.name], "options": dict(options)})


def _grid_score(setting: Setting, seed: int, method: str, source: SourceSpec,
                point: dict[str, Any]) -> float | None:
    return val_acc(partial(_single_result, setting, seed, method, source, point))


def select_options(setting: Setting, sources: dict[str, SourceSpec],
                   seeds: Sequence[int]) -> dict[str, dict[str, Any]]:
    """For each single-source method (``sources``: method -> the source it runs on), the
    point of its settings grid (``setting.options[method]``, see
    :func:`compendium.methods.entry.option_grid`) with the best mean validation accuracy over
    ``seeds``; ties go to the grid's first point. Test data plays no part in the choice.

    Each grid of more than one point trains every point on every seed of ``seeds`` and
    writes ``<method>/grid.json`` beside the method's seeds (each point's validation
    accuracies and the chosen point); a one-point grid trains nothing here.
    """
    grids = {m: option_grid(by_run(SINGLE_SOURCE, m), setting.options.get(m, {}))
             for m in sources}
    jobs = [(m, i, seed) for m, points in grids.items() if len(points) > 1
            for i in range(len(points)) for seed in seeds]
    scores = dict(zip(jobs, run_all([partial(_grid_score, setting, seed, m, sources[m],
                                             grids[m][i]) for m, i, seed in jobs]),
                      strict=True))
    chosen = {}
    for method, points in grids.items():
        if len(points) == 1:
            chosen[method] = points[0]
            continue
        accs = [[scores[method, i, seed] for seed in seeds] for i in range(len(points))]
        chosen[method] = points[best_on_validation(accs, f"the {method} grid {points}")]
        results.write_grid(setting.out_dir(method, 0).parent, {
            "method": method, "source": sources[method].name, "selected_on": "val_acc",
            # the selection's trainings, of which len(seeds) are the chosen point's published
            # runs: its cost beyond them is not in the published runs' timing records
            "seeds": list(seeds), "candidate_runs": len(points) * len(seeds),
            "chosen": chosen[method],
            "points": [{"options": p, **candidates_json(a)}
                       for p, a in zip(points, accs, strict=True)]})
    return chosen


def run_als(setting: Setting, seeds: Sequence[int], source: SourceSpec,
            search: dict[str, Any], fitness: TrainConfig) -> tuple[int, ...]:
    """ALS: a GA picks k for ``source`` with AMLS's fitness and budget; then one run a seed
    (AMCF's run on that one source with the scheme found, lam = 0). Writes its search beside
    its seeds (``als/search.json``)."""
    here = setting.for_seed(0)  # the search at position 0's draw of sources and shots
    state = here.work_dir / here.splits.name / "als" / fingerprint(
        search, fitness.identity(), sources_fingerprint([source]),
        data_fingerprint(here.splits),
        here.freeze_bn_stats, *device_key(fitness)) / "search-state.json"
    result = als_search(source, here.splits, fitness, particles=search["particles"],
                        iterations=search["iterations"], seed=search.get("seed", 0),
                        state_path=state, freeze_bn_stats=here.freeze_bn_stats)
    results.write_method_search(setting.out_dir("als", 0).parent,
                                {"source": source.name, **result.to_dict()})
    for seed in seeds:
        run_amcf_variant(setting, seed, method="als", scheme=result.best, sources=[source], lam=0.0)
    return tuple(result.best)


def run_baselines(setting: Setting, seeds: Sequence[int], search: dict[str, Any],
                  fitness: TrainConfig, methods: Sequence[str] = BASELINE_RUNS,
                  few_seeds: int | None = None) -> str:
    """Every baseline for every seed (the non-decisive ones for the first ``few_seeds``);
    returns the best single source (chosen on val).

    A single-source method whose ``setting.options`` hold lists (a settings grid, e.g.
    L2-SP's alpha and beta, Child-Tuning's p) runs the point chosen on validation by
    :func:`select_options` on the first of its seeds (n - 1 extra runs for n points).
    """
    unknown = sorted(set(methods) - set(BASELINE_RUNS))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINE_RUNS)}")
    single = [m for m in SINGLE_SOURCE if m.run in methods]
    for entry in single:  # a bad grid stops the stage before any training
        option_grid(entry, setting.options.get(entry.run, {}))
    run_all([partial(run_finetune, setting, seed) for seed in seeds])
    best = best_single_source(setting, seeds)
    on = {m.run: setting.sources[0] if m.on == "first" else best for m in single}
    # a grid's candidates train on the first seed (SELECTION_SEEDS), every method's alike
    chosen = select_options(setting, on, list(seeds)[:SELECTION_SEEDS])
    linear = by_run(BASELINES, "linear")
    # ALS first: its own search makes it the longest call, which, started last, would train
    # alone at the end while the other workers wait
    calls = []
    if "als" in methods:
        calls.append(partial(run_als, setting, seeds_of("als", seeds, few_seeds, BASELINES),
                             best, search, fitness))
    for seed in seeds:
        if "linear" in methods and seed in seeds_of(linear.id, seeds, few_seeds, BASELINES):
            calls.append(partial(run_linear, setting, seed))
        for entry in single:
            if seed in seeds_of(entry.id, seeds, few_seeds, BASELINES):
                calls.append(partial(run_single, setting, seed, entry.run, on[entry.run],
                                     chosen[entry.run]))
    run_all(calls)
    return best.name


@ends_local_workers
def baselines_stage(target: str, methods: Sequence[str], seeds: Sequence[int],
                    few_seeds: int | None, sources: Mapping[str, Mapping[str, Any]],
                    lam: float, freeze_bn_stats: bool, train: Mapping[str, Any],
                    options: Mapping[str, Any], pso: Mapping[str, Any],
                    search_seeds: Sequence[int], fitness: Mapping[str, Any],
                    searches: str | os.PathLike, prepared_dir: str | os.PathLike,
                    results_dir: str | os.PathLike, work_dir: str | os.PathLike,
                    test_eval: str = "every", shots: int | None = None) -> str:
    """The whole ``baselines@<target>`` stage: every baseline, then the stage's summary
    (``<target>/baselines-summary.json``) and its accuracies figure. ALS's genetic search
    gets the swarm's budget and the first search seed. ``test_eval`` is the final runs'
    (amcf.train.config.TrainConfig). Returns the best single source."""
    check_device(f"baselines@{target}", train, fitness, elsewhere=attached())
    splits = load_splits(target, prepared_dir)
    schemes = results.schemes_of(searches)
    setting = Setting(
        splits=splits, **source_fields(sources),
        scheme=schemes[0], schemes=schemes,
        train=TrainConfig(**{"progress": False, **train, "test_eval": test_eval}),
        lam=lam, freeze_bn_stats=freeze_bn_stats, results_dir=results_dir,
        work_dir=work_dir, options=dict(options), group="baselines", shots=shots)
    best = run_baselines(setting, seeds, {**pso, "seed": search_seeds[0]},
                         FitnessConfig(progress=False, **fitness), methods,
                         few_seeds=few_seeds)
    frame = group_frame(results_dir, target, "baselines", BASELINES)
    write_group_summary(results_dir, target, "baselines", frame)
    # imported here: the worker processes that import this module to train draw nothing
    from compendium.plots.methods import plot_method_accuracies

    plot_method_accuracies(frame, Path(results_dir) / target / "baselines" / "accuracies")
    return best
