"""``search@<target>``: AMLS once per search seed, and the figures of the first search.

Each search seeds both its swarm and its fitness runs, so the spread over training seeds
includes the search's own variance: training seed s uses the search of
:func:`compendium.results.search_for_seed`. The swarm's state lives in a work directory named
after everything the search depends on, so a killed search resumes and a changed setting
starts afresh.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from amcf.amls import run_amls, training_identity
from amcf.datasets import Splits
from amcf.layers import layer_table
from amcf.models.build import SourceSpec, build_model
from amcf.search.result import SearchResult
from amcf.search.scores import check_score
from amcf.train.config import FitnessConfig, TrainConfig
from compendium import results, timings
from compendium.data.prepared import load_splits
from compendium.pipeline.fanout import attached, ends_local_workers, run_all
from compendium.stages.fewshot import with_shots
from compendium.stages.runs import (
    check_device,
    data_fingerprint,
    device_key,
    draw_for_seed,
    fingerprint,
    source_draws,
    sources_fingerprint,
)


def run_search(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
               fitness: TrainConfig, lam: float, out_dir: str | Path, work_dir: str | Path,
               freeze_bn_stats: bool = False) -> SearchResult:
    """AMLS on one target: search the freezing scheme (resumable), then write
    ``out_dir/search.json`` and ``out_dir/search-summary.json``. Returns the search's result.

    ``fitness`` may be a :class:`amcf.train.config.FitnessConfig`, whose ``score`` chooses the
    fitness; each training's measurements are kept apart from the score (see
    :func:`search_dirs`).
    """
    state, runs = search_dirs(splits, sources, pso, fitness, lam, work_dir, freeze_bn_stats)
    result = run_amls(sources, splits, pso, fitness, lam, state, freeze_bn_stats=freeze_bn_stats,
                      runs_dir=runs)
    results.write_search(out_dir, [s.name for s in sources], result)
    return result


def run_searches(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                 fitness: TrainConfig, lam: float, seeds: Sequence[int], out_dir: str | Path,
                 work_dir: str | Path, freeze_bn_stats: bool = False,
                 compare_scores: Sequence[str] = (),
                 timings_dir: str | Path | None = None,
                 draws: Sequence[Sequence[SourceSpec]] = (),
                 shots: int | None = None) -> list[SearchResult]:
    """AMLS once per search seed (the seed of both the swarm and its fitness runs).

    ``draws``: the sources of each pretraining draw (:func:`compendium.stages.runs.
    source_draws`); the search at position p of ``seeds`` uses draw p mod n, so training seed
    s, which uses search s mod len(seeds) and draw s mod n, trains the sources its scheme was
    searched on (n must divide the number of searches). Empty: ``sources`` for every search.
    ``shots``: the search at position p trains on draw p of ``shots`` images per class of the
    training pool (:mod:`compendium.stages.fewshot`), the images training seed p trains on;
    None: the whole training split.

    Writes each search under ``out_dir/searches/seed<k>/``, the first one's ``search.json``
    and ``search-summary.json`` also in ``out_dir`` (its figures), and ``out_dir/searches.json``:
    every search's scheme, fitness and cost (model-epochs of its distinct trainings), the
    chosen scheme's validation accuracy and loss, and, for each score in ``compare_scores``,
    the scheme the same swarm would have chosen under it (``best_by_score``, sharing every
    training the two searches repeat; their cost is not part of ``model_epochs``).

    Each search that ran from scratch records its wall time under ``timings_dir`` (default:
    beside ``work_dir``) as ``<target>/search/seed<k>`` (:mod:`compendium.timings`), where
    ``<target>`` is ``out_dir``'s name; the results hold no wall time.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"search seeds must be a non-empty list without repeats, got {seeds}")
    draws = [list(d) for d in draws] or [list(sources)]
    if len(seeds) % len(draws):
        raise ValueError(f"{len(draws)} source draws for {len(seeds)} searches: the number of "
                         "draws must divide the number of searches, so that every training "
                         "seed trains the draw its scheme was searched on")
    out = Path(out_dir)
    # the searches are independent (each seeds its own swarm and fitness runs, and keeps its
    # own state and trainings): they run side by side, or as Ray tasks on a cluster
    clock = Path(timings_dir if timings_dir is not None
                 else timings.default_timings_dir(work_dir))
    done = run_all([partial(_search_seed, with_shots(splits, shots, p), draw_for_seed(draws, p),
                            pso, fitness, lam, k, out, work_dir, freeze_bn_stats,
                            compare_scores, clock)
                    for p, k in enumerate(seeds)])
    found, rows = [result for result, _ in done], [row for _, row in done]
    results.write_searches(out, [s.name for s in sources], rows)
    return found


def _search_seed(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                 fitness: TrainConfig, lam: float, k: int, out: Path, work_dir: str | Path,
                 freeze_bn_stats: bool, compare_scores: Sequence[str],
                 timings_dir: Path | None = None) -> tuple[SearchResult, dict]:
    """One search of :func:`run_searches` (search seed ``k``): its result and its row."""
    config = fitness.model_copy(update={"seed": k})
    state, runs = search_dirs(splits, sources, {**pso, "seed": k}, config, lam, work_dir,
                              freeze_bn_stats)
    # a resumed search, or one that reads trainings kept from before, would be timed short:
    # only a search that trains everything now is timed (an earlier record stays valid while
    # its search.json is unchanged)
    fresh = not state.exists() and not (runs.is_dir() and any(runs.iterdir()))
    started = time.perf_counter()
    result = run_search(splits, sources, {**pso, "seed": k}, config, lam,
                        results.search_dir(out, k), work_dir, freeze_bn_stats)
    if fresh and timings_dir is not None:
        timings.write_search_record(timings_dir, out.name, k,
                                    results.search_dir(out, k) / results.SEARCH,
                                    time.perf_counter() - started)
    row = {"seed": k, "best": [int(b) for b in result.best],
           "best_fitness": result.best_fitness, "calls": result.calls,
           "evaluations": result.evaluations,
           "model_epochs": result.evaluations * fitness.epochs * len(sources),
           **_measured(result)}
    score = getattr(fitness, "score", "accuracy")
    others = [s for s in compare_scores if s != score]
    if others:
        compared = compare_search_scores(splits, sources, {**pso, "seed": k}, config, lam,
                                         work_dir, scores=[score, *others],
                                         freeze_bn_stats=freeze_bn_stats)
        row["best_by_score"] = compared["best"]
        row["same_scheme"] = compared["same_scheme"]
    return result, row


def _measured(result: SearchResult) -> dict[str, float | None]:
    """The validation accuracy and loss the search measured for its chosen scheme (every call
    records both, whatever the score; None in a search recorded before they were)."""
    for row in result.history:
        if tuple(row.get("scheme", ())) == tuple(result.best) and "val_loss" in row:
            return {"val_acc": row.get("val_acc"), "val_loss": row.get("val_loss")}
    return {"val_acc": None, "val_loss": None}


def search_dirs(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                fitness: TrainConfig, lam: float, work_dir: str | Path,
                freeze_bn_stats: bool) -> tuple[Path, Path]:
    """The search's state file, and the folder of its trainings' measurements.

    The state depends on the score (through ``fitness.identity()``, which holds it only when
    it is not the default, so existing states keep their path); the measurements do not, so
    searches under other scores or swarm settings share every training they repeat.
    """
    base = Path(work_dir) / splits.name
    common = (sources_fingerprint(sources), lam, freeze_bn_stats, data_fingerprint(splits),
              *device_key(fitness))
    state = base / "amls" / fingerprint(pso, fitness.identity(), *common) / "state.json"
    runs = base / "amls-runs" / fingerprint(training_identity(fitness), *common)
    return state, runs


def compare_search_scores(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                          fitness: TrainConfig, lam: float, work_dir: str | Path,
                          scores: Sequence[str] = ("accuracy", "loss"),
                          freeze_bn_stats: bool = False) -> dict[str, Any]:
    """AMLS under each fitness score, same swarm seed, sharing the trainings they repeat.

    A scheme trained for one score is read back, not trained again, by the others (same
    scheme and fitness seed give the same training; only the scoring differs). Returns the
    chosen scheme and best fitness per score, ``same_scheme`` (whether every score chose the
    same one) and ``trainings``: the fitness runs this call trained (the rest were shared).
    """
    scores = [check_score(s) for s in scores]
    if len(scores) < 2:
        raise ValueError(f"compare at least two scores, got {scores}")
    base = {k: v for k, v in fitness.model_dump().items() if k != "score"}
    found = {}
    trained = 0
    for score in scores:
        config = FitnessConfig(**base, score=score)
        state, runs = search_dirs(splits, sources, pso, config, lam, work_dir, freeze_bn_stats)
        before = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
        found[score] = run_amls(sources, splits, pso, config, lam, state,
                                freeze_bn_stats=freeze_bn_stats, runs_dir=runs)
        trained += len(list(runs.glob("*.json"))) - before
    best = {score: list(r.best) for score, r in found.items()}
    return {"best": best, "best_fitness": {s: r.best_fitness for s, r in found.items()},
            "same_scheme": len({tuple(b) for b in best.values()}) == 1,
            "trainings": trained, "results": found}


@ends_local_workers
def search_stage(target: str, sources: Mapping[str, Mapping[str, Any]], lam: float,
                 freeze_bn_stats: bool, pso: dict[str, Any], fitness: Mapping[str, Any],
                 search_seeds: Sequence[int], compare_scores: Sequence[str],
                 prepared_dir: str | Path, out_dir: str | Path,
                 work_dir: str | Path, shots: int | None = None) -> list[SearchResult]:
    """The whole ``search@<target>`` stage: every search, then the first search's figures
    (``figures/swarm``, ``figures/scheme``). Returns the searches' results."""
    check_device(f"search@{target}", fitness, elsewhere=attached())
    splits = load_splits(target, prepared_dir)
    draws = source_draws(sources)
    specs = draws[0]
    config = FitnessConfig(progress=False, **fitness)  # fitness.score: how a run is scored
    found = run_searches(splits, specs, pso, config, lam, search_seeds, out_dir, work_dir,
                         freeze_bn_stats=freeze_bn_stats, compare_scores=compare_scores,
                         timings_dir=timings.default_timings_dir(work_dir), draws=draws,
                         shots=shots)
    figures = Path(out_dir) / "figures"
    # imported here: the worker processes that import this module to train draw nothing
    from compendium.plots.search import plot_layer_scheme, plot_swarm

    plot_swarm(found[0].to_dict(), figures / "swarm", dim_names=list(sources))
    tables = {s.name: layer_table(build_model(s, splits.num_classes)) for s in specs}
    plot_layer_scheme(tables, found[0].best, figures / "scheme")
    return found
