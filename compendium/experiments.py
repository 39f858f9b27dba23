"""Every method of the compendium by id, run through the one trainer on one target.

Methods are named by the run ids of the method table, :mod:`compendium.methods`. Each ``run_*``
function trains one for one seed and publishes each of its result ids: ``metrics.json``,
``history.csv`` and ``test_predictions.csv`` in ``results/<target>/[<group>/]<id>/seed<k>/``,
none of which holds a wall-clock time (a rerun writes the same bytes); the run's wall time
goes to the uncommitted record of :mod:`compendium.timings`. The trainer's checkpoints go to a
work directory named after a fingerprint of everything that determines the run, so a killed
stage resumes, and a changed setting starts afresh instead of colliding with a stale
checkpoint.

Two runs report several ids at once, since they are one computation:

- ``finetune``: the K sources fine-tuned with lam = 0. No gradient crosses between models
  and each has its own optimiser, so each member *is* that source's standalone fine-tuning
  (``finetune-<source>``, selected on its own validation accuracy) and the fused prediction
  is the ensemble baseline (``ensemble``).
- ``linear``: the K linear probes (``linear-<source>``).

The independent runs of a group (methods x seeds) go through
:func:`compendium.pipeline.fanout.run_all`: Ray tasks when a cluster is attached, else in turn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amcf import numerics
from amcf.datasets import Splits
from amcf.io import copy_file, write_json
from amcf.models.build import SourceSpec, build_frozen, build_model
from amcf.objective import MCLoss, Objective
from amcf.train.config import FitnessConfig, TrainConfig
from amcf.train.fit import TrainResult, fit
from amcf.train.records import write_history
from compendium import timings
from compendium.methods import ABLATION_RUNS, BASELINE_RUNS, is_decisive
from compendium.pipeline.fanout import run_all

SINGLE_SOURCE_RUNS = ("scratch", "l2sp", "childtune-f", "childtune-d", "adafilter")


@dataclass
class Setting:
    """What one target's runs share: data, sources, the searched scheme and the recipe."""

    splits: Splits
    sources: list[SourceSpec]
    scheme: tuple[int, ...]
    train: TrainConfig
    # one scheme per search seed; training seed s uses schemes[s % len(schemes)], so that the
    # spread over seeds includes the search's own variance (empty: ``scheme`` for every seed)
    schemes: tuple[tuple[int, ...], ...] = ()
    lam: float = 0.2
    freeze_bn_stats: bool = False
    results_dir: Path = Path("results")
    work_dir: Path = Path("build/work")
    options: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # results go to results_dir/<target>/<group>/<method>/seed<k>
    timings_dir: Path | None = None  # None: beside work_dir (timings.default_timings_dir)

    def __post_init__(self) -> None:
        self.schemes = tuple(tuple(int(k) for k in sch) for sch in self.schemes)
        for sch in (self.scheme, *self.schemes):
            if len(sch) != len(self.sources):
                raise ValueError(f"the layer scheme {sch} needs one entry per source "
                                 f"({len(self.sources)} sources)")
        self.results_dir = Path(self.results_dir)
        self.work_dir = Path(self.work_dir)
        self.timings_dir = Path(self.timings_dir if self.timings_dir is not None
                                else timings.default_timings_dir(self.work_dir))

    def scheme_for(self, seed: int) -> tuple[int, ...]:
        """The searched scheme that training seed ``seed`` uses."""
        return self.schemes[seed % len(self.schemes)] if self.schemes else tuple(self.scheme)

    def out_dir(self, method: str, seed: int) -> Path:
        return self.results_dir / self.splits.name / self.group / method / f"seed{seed}"

    def source(self, name: str) -> SourceSpec:
        for s in self.sources:
            if s.name == name:
                return s
        raise ValueError(f"no source named {name!r}; sources: {[s.name for s in self.sources]}")


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build models under ``seed``: new heads (and random inits) are the same in every process,
    whatever ran before in it, so a resumed or repeated stage builds exactly the same models."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (the work directory of one run), and of the
    numerics the run computes under: a run cached under another policy is not reused."""
    text = json.dumps([numerics.name(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_fingerprint(splits: Splits) -> str:
    """A hash of the images and labels of every split (names alone would let a re-prepared
    dataset reuse runs trained on the old one)."""
    digest = hashlib.sha256(splits.name.encode())
    for part in (splits.train, splits.val, splits.test):
        images, labels = getattr(part, "images", None), getattr(part, "labels", None)
        if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
            digest.update(images.contiguous().numpy().tobytes())
            digest.update(labels.contiguous().numpy().tobytes())
        else:  # file-based: the list of files and labels stands for the data
            digest.update(repr(getattr(part, "ids", getattr(part, "files", len(part)))).encode())
            if isinstance(labels, torch.Tensor):
                digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def sources_fingerprint(sources: Sequence[SourceSpec]) -> list[Any]:
    """Each source's spec and, for a local weights file, a hash of its bytes: a search
    memo must not outlive the source models it measured (retrained into the same path)."""
    out = []
    for s in sources:
        path = Path(s.weights) if s.weights not in (None, "hub") else None
        digest = (hashlib.sha256(path.read_bytes()).hexdigest()[:16]
                  if path is not None and path.is_file() else None)
        out.append([s.model_dump(), digest])
    return out


def _work_dir(base: Path, key: str, seed: int, config: TrainConfig, splits: Splits,
              models: Sequence[nn.Module], objective: Objective) -> Path:
    """A work directory named after the run's full identity (recipe, objective, frozen
    layers, starting weights): a changed setting or new source weights get a fresh
    directory instead of a refused checkpoint, and an unchanged run resumes or is reused."""
    from amcf.train.state import run_identity

    return base / key / f"seed{seed}" / fingerprint(
        run_identity(config.identity(), models, objective), data_fingerprint(splits))


def _train(setting: Setting, key: str, seed: int, models: list[nn.Module],
           objective: Objective) -> TrainResult:
    """Fit in the run's work directory (``result.out_dir``)."""
    config = setting.train.model_copy(update={"seed": seed})
    work = _work_dir(setting.work_dir / setting.splits.name, key, seed, config, setting.splits,
                     models, objective)
    # a finished run keeps what resuming and the report read, not its weights (a ResNet-50
    # pair's checkpoint is 0.2-0.4 GB, and a paper target has about 45 runs)
    return fit(models, setting.splits, config, objective, out_dir=work, keep_checkpoint=False)


def _publish_files(setting: Setting, out: Path, result: TrainResult, metrics: dict[str, Any],
                   shared_by: int = 1) -> Path:
    """Write one published run: its history, its metrics (last: they mark completion), and
    its wall time into the timing record, keyed by the run's path under the results."""
    out.mkdir(parents=True, exist_ok=True)
    write_history(out / "history.csv", result.history, result.metrics["num_models"])
    write_json(out / "metrics.json", {**metrics, "numerics": numerics.name()})
    if result.timing:
        timings.write_record(setting.timings_dir, out.relative_to(setting.results_dir),
                             out / "metrics.json", result.timing, shared_by)
    return out


def _publish(setting: Setting, method: str, seed: int, result: TrainResult,
             extra: dict[str, Any] | None = None, shared_by: int = 1) -> Path:
    """Publish a run's small result files into ``results/`` (``shared_by``: how many
    published results one training makes, each charged its share of the wall time)."""
    out = setting.out_dir(method, seed)
    out.mkdir(parents=True, exist_ok=True)
    src = result.out_dir / "test_predictions.csv"
    if src.exists():
        copy_file(src, out / src.name)
    clean = {k: v for k, v in result.metrics.items() if k != "identity"}
    return _publish_files(setting, out, result,
                          {"method": method, "seed": seed, **clean, **(extra or {})}, shared_by)


def _publish_members(setting: Setting, prefix: str, seed: int, result: TrainResult,
                     sources: Sequence[SourceSpec]) -> None:
    """One ``<prefix>-<source>`` result per member of a lam = 0 run, from its own selection.

    The K members trained in one process on the same batches; the timing record charges
    each an equal share of the wall time."""
    metrics = result.metrics
    for source, member in zip(sources, metrics["members"], strict=True):
        out = setting.out_dir(f"{prefix}-{source.name}", seed)
        _publish_files(setting, out, result, {
            "method": f"{prefix}-{source.name}", "seed": seed,
            "selected_epoch": member["selected_epoch"], "val_acc": member["val_acc"],
            "test_acc": member["test_acc"], "best_test_acc": member["best_test_acc"],
            "final_test_acc": None, "members": [member],
            "epochs": metrics["epochs"], "num_models": 1, "model_epochs": metrics["epochs"],
            "trainable_params": member.get("trainable_params"),
            "device": metrics["device"], "history_member": sources.index(source),
        }, shared_by=len(sources))


# ---- the runs ------------------------------------------------------------------------------

def run_search(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
               fitness: TrainConfig, lam: float, out_dir: str | Path, work_dir: str | Path,
               freeze_bn_stats: bool = False) -> Any:
    """AMLS on one target: search the freezing scheme (resumable), then write
    ``out_dir/search.json`` (the result and every call) and ``out_dir/search-summary.json``
    (the headline numbers, a DVC metric). Returns the search's result.

    The swarm's state lives in a work directory named after everything the search depends
    on, so a killed search resumes and a changed setting starts afresh. ``fitness`` may be an
    :class:`amcf.amls.FitnessConfig`, whose ``score`` chooses the fitness; each training's
    measurements are kept apart from the score (see :func:`_search_dirs`).
    """
    from amcf.amls import run_amls

    state, runs = _search_dirs(splits, sources, pso, fitness, lam, work_dir, freeze_bn_stats)
    result = run_amls(sources, splits, pso, fitness, lam, state, freeze_bn_stats=freeze_bn_stats,
                      runs_dir=runs)
    out = Path(out_dir)
    write_json(out / "search.json", {"sources": [s.name for s in sources], **result.to_dict()})
    write_json(out / "search-summary.json", {
        "best_fitness": result.best_fitness, "calls": result.calls,
        "evaluations": result.evaluations,
        **{f"k_{s.name}": k for s, k in zip(sources, result.best, strict=True)}})
    return result


def run_searches(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                 fitness: TrainConfig, lam: float, seeds: Sequence[int], out_dir: str | Path,
                 work_dir: str | Path, freeze_bn_stats: bool = False,
                 compare_scores: Sequence[str] = ()) -> list[Any]:
    """AMLS once per search seed (the seed of both the swarm and its fitness runs), so that
    the spread over training seeds includes the search's own variance: training seed ``s``
    uses search ``s mod len(seeds)`` (:meth:`Setting.scheme_for`).

    Writes each search under ``out_dir/searches/seed<k>/``, the first one's ``search.json``
    and ``search-summary.json`` also in ``out_dir`` (its figures), and ``out_dir/searches.json``:
    every search's scheme, fitness and cost (model-epochs of its distinct trainings), the
    chosen scheme's validation accuracy and loss, and, for each score in ``compare_scores``,
    the scheme the same swarm would have chosen under it (``best_by_score``, sharing every
    training the two searches repeat; their cost is not part of ``model_epochs``).
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"search seeds must be a non-empty list without repeats, got {seeds}")
    out = Path(out_dir)
    # the searches are independent (each seeds its own swarm and fitness runs, and keeps its
    # own state and trainings): they run side by side, or as Ray tasks on a cluster
    done = run_all([partial(_search_seed, splits, sources, pso, fitness, lam, k, out, work_dir,
                            freeze_bn_stats, compare_scores) for k in seeds])
    results, rows = [result for result, _ in done], [row for _, row in done]
    for name in ("search.json", "search-summary.json"):
        copy_file(out / "searches" / f"seed{seeds[0]}" / name, out / name)
    write_json(out / "searches.json", {"sources": [s.name for s in sources], "searches": rows,
                                       "numerics": numerics.name()})
    return results


def _search_seed(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                 fitness: TrainConfig, lam: float, k: int, out: Path, work_dir: str | Path,
                 freeze_bn_stats: bool, compare_scores: Sequence[str]) -> tuple[Any, dict]:
    """One search of :func:`run_searches` (search seed ``k``): its result and its row."""
    config = fitness.model_copy(update={"seed": k})
    result = run_search(splits, sources, {**pso, "seed": k}, config, lam,
                        out / "searches" / f"seed{k}", work_dir, freeze_bn_stats)
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


def _measured(result: Any) -> dict[str, float | None]:
    """The validation accuracy and loss the search measured for its chosen scheme (every call
    records both, whatever the score; None in a search recorded before they were)."""
    for row in result.history:
        if tuple(row.get("scheme", ())) == tuple(result.best) and "val_loss" in row:
            return {"val_acc": row.get("val_acc"), "val_loss": row.get("val_loss")}
    return {"val_acc": None, "val_loss": None}


def schemes_of(searches_json: str | Path) -> tuple[tuple[int, ...], ...]:
    """The schemes of ``searches.json`` in search-seed order (what ``Setting.schemes`` takes)."""
    path = Path(searches_json)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the search stage (dvc repro "
                                f"search@<target>) first")
    return tuple(tuple(row["best"]) for row in json.loads(path.read_text())["searches"])

def _search_dirs(splits: Splits, sources: Sequence[SourceSpec], pso: dict[str, Any],
                 fitness: TrainConfig, lam: float, work_dir: str | Path,
                 freeze_bn_stats: bool) -> tuple[Path, Path]:
    """The search's state file, and the folder of its trainings' measurements.

    The state depends on the score (through ``fitness.identity()``, which holds it only when
    it is not the default, so existing states keep their path); the measurements do not, so
    searches under other scores or swarm settings share every training they repeat.
    """
    from amcf.amls import training_identity

    base = Path(work_dir) / splits.name
    common = (sources_fingerprint(sources), lam, freeze_bn_stats, data_fingerprint(splits))
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
    from amcf.amls import run_amls
    from amcf.search.scores import check_score

    scores = [check_score(s) for s in scores]
    if len(scores) < 2:
        raise ValueError(f"compare at least two scores, got {scores}")
    base = {k: v for k, v in fitness.model_dump().items() if k != "score"}
    results = {}
    trained = 0
    for score in scores:
        config = FitnessConfig(**base, score=score)
        state, runs = _search_dirs(splits, sources, pso, config, lam, work_dir,
                                   freeze_bn_stats)
        before = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
        results[score] = run_amls(sources, splits, pso, config, lam, state,
                                  freeze_bn_stats=freeze_bn_stats, runs_dir=runs)
        trained += len(list(runs.glob("*.json"))) - before
    best = {score: list(r.best) for score, r in results.items()}
    return {"best": best, "best_fitness": {s: r.best_fitness for s, r in results.items()},
            "same_scheme": len({tuple(b) for b in best.values()}) == 1,
            "trainings": trained, "results": results}


def run_amcf(setting: Setting, seed: int, *, method: str = "amcf", lam: float | None = None,
             scheme: Sequence[int] | None = None, sources: Sequence[SourceSpec] | None = None,
             objective: Objective | None = None) -> Path:
    """AMCF (or one of its ablations): K models, a freezing scheme, the MC-loss."""
    sources = list(setting.sources if sources is None else sources)
    scheme = tuple(setting.scheme_for(seed) if scheme is None else scheme)
    lam = setting.lam if lam is None else lam
    objective = MCLoss(lam) if objective is None else objective
    with seeded(seed):
        models = build_frozen(sources, scheme, setting.splits, setting.freeze_bn_stats)
    result = _train(setting, method, seed, models, objective)
    return _publish(setting, method, seed, result,
                    {"scheme": list(scheme), "lam": lam,
                     "sources": [s.name for s in sources]})


def run_amcf_select(setting: Setting, seed: int) -> Path:
    """AMCF and ``amcf-select`` from one training: AMCF's models, and after every epoch the
    sources chosen on validation for the fused prediction (:mod:`amcf.source_selection`),
    reported with
    AMCF's protocol (epoch selected on validation, best-over-epochs and last epoch beside it).

    The choice is made at every epoch and a finished run keeps no weights, so it is made while
    AMCF trains: the callback only evaluates, so the training, and the published ``amcf``
    result, are those of :func:`run_amcf` (a test checks it), and each of the two results is
    charged half the wall time. ``all_sources_test_acc`` (all sources summed) repeats AMCF's
    own number as a check. Returns the ``amcf-select`` result's folder.
    """
    from amcf.source_selection import SubsetSelection

    scheme = setting.scheme_for(seed)
    objective = MCLoss(setting.lam)
    config = setting.train.model_copy(update={"seed": seed})
    with seeded(seed):
        models = build_frozen(setting.sources, scheme, setting.splits, setting.freeze_bn_stats)
    work = _work_dir(setting.work_dir / setting.splits.name, "amcf-select", seed, config,
                     setting.splits, models, objective)
    tracker = SubsetSelection(models, setting.splits, config, work / "selection.json")
    result = fit(models, setting.splits, config, objective, out_dir=work,
                 keep_checkpoint=False, callback=tracker)
    if not tracker.complete(config.epochs):
        # finished (or checkpointed) without every epoch's choice, e.g. killed between a
        # checkpoint and its callback: only a fresh training brings the weights back
        tracker.reset()
        with seeded(seed):
            models = build_frozen(setting.sources, scheme, setting.splits,
                                  setting.freeze_bn_stats)
        tracker.models = models
        result = fit(models, setting.splits, config, objective, out_dir=work, resume=False,
                     keep_checkpoint=False, callback=tracker)
    _publish(setting, "amcf", seed, result,
             {"scheme": list(scheme), "lam": setting.lam,
              "sources": [s.name for s in setting.sources]}, shared_by=2)
    return _publish_selection(setting, seed, result, tracker, scheme)


def _publish_selection(setting: Setting, seed: int, result: TrainResult, tracker: Any,
                       scheme: Sequence[int]) -> Path:
    """metrics.json of amcf-select (with the sources chosen) and a history whose val/test
    accuracies are those of the chosen subset at each epoch."""
    from amcf.train.records import write_predictions

    names = [s.name for s in setting.sources]
    out = setting.out_dir("amcf-select", seed)
    out.mkdir(parents=True, exist_ok=True)
    if tracker.best_predictions is not None:
        write_predictions(out / "test_predictions.csv",
                          torch.tensor(tracker.best_predictions), torch.tensor(tracker.test_labels))
    history = [{**row, "val_acc": sel["val_acc"], "test_acc": sel["test_acc"]}
               for row, sel in zip(result.history, tracker.rows, strict=True)]
    keep = ("members", "epochs", "num_models", "model_epochs", "trainable_params", "device")
    metrics = {"method": "amcf-select", "seed": seed, **tracker.summary(names),
               **{k: result.metrics[k] for k in keep},
               "scheme": list(scheme), "lam": setting.lam, "sources": names}
    return _publish_files(setting, out, dataclasses.replace(result, history=history), metrics,
                          shared_by=2)


def run_finetune(setting: Setting, seed: int) -> None:
    """Standalone fine-tuning of every source and their ensemble, from one lam = 0 run."""
    from compendium.baselines.recipes import finetune

    with seeded(seed):
        models, objective = finetune(setting.sources, setting.splits.num_classes,
                                     in_chans=setting.splits.in_chans)
    result = _train(setting, "finetune", seed, models, objective)
    _publish(setting, "ensemble", seed, result, {"sources": [s.name for s in setting.sources]})
    _publish_members(setting, "finetune", seed, result, setting.sources)


def run_linear(setting: Setting, seed: int) -> None:
    from compendium.baselines.recipes import linear_probe

    with seeded(seed):
        models, objective = linear_probe(setting.sources, setting.splits.num_classes,
                                         in_chans=setting.splits.in_chans,
                                         freeze_bn_stats=setting.freeze_bn_stats)
    result = _train(setting, "linear", seed, models, objective)
    _publish_members(setting, "linear", seed, result, setting.sources)


def best_single_source(setting: Setting, seeds: Sequence[int]) -> SourceSpec:
    """The source whose standalone fine-tuning has the best mean *validation* accuracy (the
    report's rule for its reference, here among the ``finetune-<source>`` runs only)."""
    from compendium.report import collect
    from compendium.report.stats import best_single_source as best_on_validation

    frame = collect(setting.results_dir)
    frame = frame[frame["seed"].isin(list(seeds))]
    method = best_on_validation(frame, setting.splits.name,
                                [f"finetune-{s.name}" for s in setting.sources])
    if method is None:
        raise ValueError(f"no finetune-<source> results for {setting.splits.name} under "
                         f"{setting.results_dir}: run run_finetune for seeds {list(seeds)} first")
    return setting.source(method.removeprefix("finetune-"))


def _single_result(setting: Setting, seed: int, method: str, source: SourceSpec,
                   options: dict[str, Any]) -> TrainResult:
    """Train (or reuse) one single-source baseline run with the settings ``options``."""
    from compendium.baselines.recipes import build_baseline

    options = dict(options)
    if method in ("scratch", "adafilter"):
        options["seed"] = seed
    with seeded(seed):
        models, objective = build_baseline(method, [source],
                                           setting.splits.num_classes,
                                           in_chans=setting.splits.in_chans, **options)
    return _train(setting, method, seed, models, objective)


def run_single(setting: Setting, seed: int, method: str, source: SourceSpec,
               options: dict[str, Any] | None = None) -> Path:
    """A single-source baseline (scratch, L2-SP, Child-Tuning F/D, AdaFilter) on ``source``.

    ``options`` are its settings (one point; :func:`run_baselines` passes the point of the
    settings grid chosen on validation). None takes ``setting.options[method]``, which must
    then be one point (scalars, or one-value lists). The settings go into metrics.json.
    """
    from compendium.baselines.recipes import option_grid

    if method not in SINGLE_SOURCE_RUNS:
        raise ValueError(f"{method!r} is no single-source run; choose from {SINGLE_SOURCE_RUNS}")
    if options is None:
        points = option_grid(method, setting.options.get(method, {}))
        if len(points) > 1:
            raise ValueError(f"baselines.options.{method} is a grid of {len(points)} settings; "
                             "run_baselines chooses one on validation (select_options), or "
                             "pass the settings to run as options=")
        options = points[0]
    result = _single_result(setting, seed, method, source, options)
    return _publish(setting, method, seed, result,
                    {"sources": [source.name], "options": dict(options)})


# ---- choices made on validation: settings grids and the K ablation's source subsets --------

# Candidates (grid points, source subsets) train on the first seed of their method only: the
# chosen one's run at that seed is then the very same run (same work directory, not retrained),
# so a grid of n points costs n - 1 extra runs per target.
SELECTION_SEEDS = 1


def _val_acc(train: Any) -> float | None:
    """The validation accuracy of one candidate's run; None when its training diverged (an
    absurd grid value can make training impossible: that candidate is then never chosen)."""
    try:
        return float(train().metrics["val_acc"])
    except FloatingPointError:
        return None


def best_on_validation(scores: Sequence[Sequence[float | None]], what: str) -> int:
    """The index of the candidate with the highest mean validation accuracy over its seeds;
    the first wins a tie, and one that diverged on any seed (None) is never chosen."""
    best, best_mean = None, float("-inf")
    for index, accs in enumerate(scores):
        if not accs or any(a is None for a in accs):
            continue
        mean = sum(accs) / len(accs)
        if mean > best_mean:  # strict: ties keep the earlier candidate
            best, best_mean = index, mean
    if best is None:
        raise ValueError(f"no candidate of {what} trained without diverging; lower "
                         "final.train.lr or narrow the grid to sensible values")
    return best


def _candidates_json(accs: Sequence[float | None]) -> dict[str, Any]:
    done = [a for a in accs if a is not None]
    mean = sum(done) / len(done) if done and len(done) == len(accs) else None
    return {"val_acc": list(accs), "mean_val_acc": mean, "diverged": len(done) < len(accs)}


def _grid_score(setting: Setting, seed: int, method: str, source: SourceSpec,
                point: dict[str, Any]) -> float | None:
    return _val_acc(partial(_single_result, setting, seed, method, source, point))


def select_options(setting: Setting, sources: dict[str, SourceSpec],
                   seeds: Sequence[int]) -> dict[str, dict[str, Any]]:
    """For each single-source method (``sources``: method -> the source it runs on), the
    point of its settings grid (``setting.options[method]``, see
    :func:`compendium.baselines.recipes.option_grid`) with the best mean validation accuracy over
    ``seeds``; ties go to the grid's first point. Test data plays no part in the choice.

    Each grid of more than one point trains every point on every seed of ``seeds`` and
    writes ``<method>/grid.json`` beside the method's seeds (each point's validation
    accuracies and the chosen point); a one-point grid trains nothing here.
    """
    from compendium.baselines.recipes import option_grid

    grids = {m: option_grid(m, setting.options.get(m, {})) for m in sources}
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
        write_json(setting.out_dir(method, 0).parent / "grid.json", {
            "method": method, "source": sources[method].name, "selected_on": "val_acc",
            # the selection's trainings, of which len(seeds) are the chosen point's published
            # runs: its cost beyond them is not in the published runs' timing records
            "seeds": list(seeds), "candidate_runs": len(points) * len(seeds),
            "chosen": chosen[method],
            "points": [{"options": p, **_candidates_json(a)}
                       for p, a in zip(points, accs, strict=True)]})
    return chosen


def _subset_score(setting: Setting, seed: int, k: int, subset: tuple[int, ...]) -> float | None:
    """The validation accuracy of the ``amcf-k<k>`` run on the sources ``subset`` (indices):
    built exactly as :func:`run_amcf` builds it, so the chosen subset's published run at this
    seed reuses this run's work directory."""
    def train() -> TrainResult:
        sources = [setting.sources[i] for i in subset]
        with seeded(seed):
            models = build_frozen(sources, _restricted(setting.scheme_for(seed), subset),
                                  setting.splits, setting.freeze_bn_stats)
        return _train(setting, f"amcf-k{k}", seed, models, MCLoss(setting.lam))

    return _val_acc(train)


def _restricted(scheme: Sequence[int], subset: Sequence[int]) -> tuple[int, ...]:
    return tuple(scheme[i] for i in subset)


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
    from itertools import combinations

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
        write_json(setting.out_dir(f"amcf-k{k}", 0).parent / "subsets.json", {
            "k": k, "selected_on": "val_acc", "seeds": list(seeds),
            "candidate_runs": len(subsets) * len(seeds),
            "chosen": [setting.sources[i].name for i in chosen[k]],
            "candidates": [{"sources": n, "schemes": [list(_restricted(setting.scheme_for(s),
                                                                        subset))
                                                       for s in seeds],
                            **_candidates_json(a)}
                           for n, subset, a in zip(names, subsets, accs, strict=True)]})
    return chosen


def run_als(setting: Setting, seeds: Sequence[int], source: SourceSpec,
            search: dict[str, Any], fitness: TrainConfig) -> tuple[int, ...]:
    """ALS: a GA picks k for ``source`` with AMLS's fitness and budget; then one run a seed."""
    from compendium.baselines.als import als_search

    state = setting.work_dir / setting.splits.name / "als" / fingerprint(
        search, fitness.identity(), sources_fingerprint([source]),
        data_fingerprint(setting.splits),
        setting.freeze_bn_stats) / "search-state.json"
    result = als_search(source, setting.splits, fitness, particles=search["particles"],
                        iterations=search["iterations"], seed=search.get("seed", 0),
                        state_path=state, freeze_bn_stats=setting.freeze_bn_stats)
    out = setting.out_dir("als", 0).parent / "search.json"
    write_json(out, {"source": source.name, **result.to_dict()})
    for seed in seeds:
        run_amcf(setting, seed, method="als", scheme=result.best, sources=[source], lam=0.0)
    return tuple(result.best)


def random_scheme(setting: Setting, seed: int) -> tuple[int, ...]:
    """A freezing scheme drawn uniformly from the search's ranges (the 'random' ablation)."""
    from amcf.layers import num_layers

    with seeded(seed):
        counts = [num_layers(m) for m in build_frozen(setting.sources, [0] * len(setting.sources),
                                                       setting.splits)]
    rng = random.Random(f"random-scheme-{setting.splits.name}-{seed}")
    return tuple(rng.randint(0, n - 1) for n in counts)


def seeds_of(result_id: str, seeds: Sequence[int], few_seeds: int | None) -> list[int]:
    """The seeds a result runs on: all of them for the decisive comparisons
    (:data:`compendium.methods.DECISIVE`), the first ``few_seeds`` for the rest (None: all)."""
    if few_seeds is not None and few_seeds < 1:
        raise ValueError(f"few_seeds must be >= 1 or None (all seeds), got {few_seeds}")
    seeds = list(seeds)
    return seeds if few_seeds is None or is_decisive(result_id) else seeds[:few_seeds]


def run_baselines(setting: Setting, seeds: Sequence[int], search: dict[str, Any],
                  fitness: TrainConfig, methods: Sequence[str] = BASELINE_RUNS,
                  few_seeds: int | None = None) -> str:
    """Every baseline for every seed (the non-decisive ones for the first ``few_seeds``);
    returns the best single source (chosen on val).

    A single-source method whose ``setting.options`` hold lists (a settings grid, e.g.
    L2-SP's alpha and beta, Child-Tuning's p) runs the point chosen on validation by
    :func:`select_options` on the first of its seeds (n - 1 extra runs for n points).
    """
    from compendium.baselines.recipes import option_grid

    unknown = sorted(set(methods) - set(BASELINE_RUNS))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINE_RUNS)}")
    single = [m for m in SINGLE_SOURCE_RUNS if m in methods]
    for method in single:  # a bad grid stops the stage before any training
        option_grid(method, setting.options.get(method, {}))
    run_all([partial(run_finetune, setting, seed) for seed in seeds])
    best = best_single_source(setting, seeds)
    on = {m: setting.sources[0] if m == "scratch" else best for m in single}
    single_seeds = seeds_of("scratch", seeds, few_seeds)
    chosen = select_options(setting, on, single_seeds[:SELECTION_SEEDS])
    calls = []
    for seed in single_seeds:
        if "linear" in methods:
            calls.append(partial(run_linear, setting, seed))
        for method in single:
            calls.append(partial(run_single, setting, seed, method, on[method], chosen[method]))
    if "als" in methods:
        calls.append(partial(run_als, setting, seeds_of("als", seeds, few_seeds), best, search,
                             fitness))
    run_all(calls)
    return best.name


def run_ablations(setting: Setting, seeds: Sequence[int], lams: Sequence[float],
                  methods: Sequence[str] = ABLATION_RUNS, few_seeds: int | None = None) -> None:
    """AMCF with one piece changed: lambda, the scheme, K, or the collaborative term (the
    non-decisive ones for the first ``few_seeds`` seeds only).

    ``amcf-k`` runs, for each k < K, the k sources chosen on validation on its first seed
    (:func:`choose_k_subsets`: 2^K - 2 candidate runs there, 4 extra for K = 3)."""
    from compendium.baselines.dml import DeepMutualLearning

    unknown = sorted(set(methods) - set(ABLATION_RUNS))
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; choose from {list(ABLATION_RUNS)}")
    k_total = len(setting.sources)
    amcf = partial(run_amcf, setting)
    subsets = (choose_k_subsets(setting, seeds_of("amcf-k1", seeds, few_seeds)[:SELECTION_SEEDS])
               if "amcf-k" in methods else {})
    calls = []
    for seed in seeds:
        def runs_here(result_id: str, seed: int = seed) -> bool:
            return seed in seeds_of(result_id, seeds, few_seeds)

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
                                     scheme=_restricted(setting.scheme_for(seed), subset)))
        if "amcf-dml" in methods and runs_here("amcf-dml"):
            dml = DeepMutualLearning(**setting.options.get("amcf-dml", {}))
            calls.append(partial(amcf, seed, method="amcf-dml", objective=dml))
    run_all(calls)


def pretrain_source(name: str, splits: Splits, arch: str, init: str | None,
                    train: TrainConfig, checkpoint: str | Path, results_dir: str | Path,
                    work_dir: str | Path, timings_dir: str | Path | None = None
                    ) -> dict[str, Any]:
    """Train one source model on its source dataset and save it as an amcf checkpoint.

    ``init`` is where its weights start: None (random), "hub" (timm's pretrained weights,
    e.g. the paper's ImageNet ResNet-50 before CIFAR-100) or a checkpoint file. The model of
    the last epoch is saved, as a source model is a starting point, not a selected result.
    The wall time is recorded as run ``sources/<name>`` (the pipeline's
    ``results/sources/<name>``) under ``timings_dir`` (default: beside ``work_dir``).
    """
    from amcf.models import save_checkpoint

    spec = SourceSpec(name=name, arch=arch, weights=init)
    with seeded(train.seed):
        model = build_model(spec, splits.num_classes, in_chans=splits.in_chans)
    objective = MCLoss(lam=0.0)
    work = _work_dir(Path(work_dir) / "pretrain", name, train.seed, train, splits, [model],
                     objective)
    result = fit([model], splits, train, objective, out_dir=work)
    save_checkpoint(model.cpu(), checkpoint, arch=arch, classes=splits.classes,
                    in_chans=splits.in_chans,
                    meta={"dataset": splits.name, "epochs": train.epochs,
                          "test_acc": result.metrics["final_test_acc"]})
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_history(out / "history.csv", result.history, 1)
    metrics = {k: v for k, v in result.metrics.items() if k != "identity"}
    write_json(out / "metrics.json", {"source": name, "dataset": splits.name, **metrics,
                                      "numerics": numerics.name()})
    if result.timing:
        timings.write_record(
            timings_dir if timings_dir is not None else timings.default_timings_dir(work_dir),
            f"sources/{name}", out / "metrics.json", result.timing)
    return metrics
