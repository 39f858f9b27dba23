"""AMLS: choose how many bottom layers of each source model to freeze, by a swarm search.

The fitness of a scheme (k_1..k_K) is the best fused *validation* accuracy of a short
collaborative run (MC-loss, ``train_config.epochs`` epochs, 5 in the paper) from the
pretrained weights with k_j layers of model j frozen. The paper's script measured it on the
test split; here the test split is withheld from the fitness altogether. The method is
written up in docs/method.md ("AMLS: searching the scheme").

Every fitness run also measures the fused validation cross-entropy, and both numbers go into
the search's history whatever the fitness is; ``FitnessConfig.score`` chooses the fitness
(accuracy, the default; the loss; or accuracy with ties broken by the loss, see
:mod:`amcf.search.scores`). With ``runs_dir`` each run's measurements are kept per scheme, so
a search under another score repeats none of the trainings.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from amcf.datasets import Splits
from amcf.io import read_json, write_json
from amcf.objective import MCLoss
from amcf.search.scores import DEFAULT_SCORE, check_score, score_value
from amcf.search.validate import Measured
from amcf.train.config import TrainConfig, resolve_device
from amcf.train.evaluate import EpochEvaluation
from amcf.train.fit import fit
from amcf.train.state import device_identity

Builder = Callable[[int], nn.Module]  # source index -> model with a fresh num_classes head
Freezer = Callable[..., nn.Module]  # (model, k, freeze_bn_stats=...) -> model


class WithheldSplit(Dataset):
    """Stands in for the test split during the search: any access is a bug, so it raises."""

    def __init__(self, name: str):
        self.name = name

    def _refuse(self, *_: Any) -> Any:
        raise RuntimeError(f"the layer search read the test split of {self.name!r}; its fitness "
                           "must use the validation split only")

    __len__ = __getitem__ = _refuse


def fitness_score(config: TrainConfig) -> str:
    """The score of a fitness config (a plain TrainConfig scores accuracy)."""
    # model_copy(update=...) skips pydantic's checks, so the value is checked here
    return check_score(getattr(config, "score", DEFAULT_SCORE))


def training_identity(config: TrainConfig) -> dict[str, Any]:
    """What determines a fitness run's numbers: its identity without the score."""
    ident = config.identity()
    ident.pop("score", None)
    return ident


def _default_builder(sources: Sequence[Any], splits: Splits) -> Builder:
    from amcf.models import build_model

    num_classes, in_chans = splits.num_classes, splits.in_chans
    return lambda j: build_model(sources[j], num_classes, in_chans=in_chans)


def _default_freezer() -> Freezer:
    from amcf.layers import freeze_bottom

    return freeze_bottom


class SchemeFitness:
    """``fitness(scheme) -> float``: the score (``FitnessConfig.score``, best fused val
    accuracy by default) of a short AMCF run.

    The K pretrained models are built once, under ``train_config.seed``, and every call
    trains deep copies of them: the same models a reseeded fresh build gives, without
    reading the weights from disk 60 times. ``records`` keeps one row per call. The value
    returned carries the run's best val accuracy and lowest val loss (``Measured.details``),
    which the search records in its history. With ``runs_dir`` the per-epoch measurements of
    each scheme are kept there (one file per scheme) and a later call, of this or another
    score, reads them instead of training again.
    """

    def __init__(
        self,
        sources: Sequence[Any],
        splits: Splits,
        train_config: TrainConfig,
        lam: float = 0.2,
        freeze_bn_stats: bool = False,
        build: Builder | None = None,
        freeze: Freezer | None = None,
        runs_dir: str | Path | None = None,
    ):
        if not sources:
            raise ValueError("AMLS needs at least one source model")
        if not isinstance(train_config, TrainConfig):
            raise TypeError(f"train_config must be a TrainConfig, got {type(train_config)}")
        MCLoss(lam)  # validates lam before any model is built
        self.score = fitness_score(train_config)
        self.sources = list(sources)
        self.splits = dataclasses.replace(splits, test=WithheldSplit(splits.name))
        self.config = train_config.model_copy(update={"eval_test": False})
        self.lam = lam
        self.freeze_bn_stats = freeze_bn_stats
        self.runs_dir = None if runs_dir is None else Path(runs_dir)
        self._build = build if build is not None else _default_builder(self.sources, splits)
        self._freeze = freeze if freeze is not None else _default_freezer()
        self._templates: list[nn.Module] | None = None
        self.records: list[dict[str, Any]] = []

    def templates(self) -> list[nn.Module]:
        """The K freshly built models (before any freezing), built once under the seed."""
        if self._templates is None:
            torch.manual_seed(self.config.seed)
            self._templates = [self._build(j) for j in range(len(self.sources))]
        return self._templates

    def layer_counts(self) -> list[int]:
        from amcf.layers import num_layers

        return [num_layers(m) for m in self.templates()]

    def _scheme(self, scheme: Sequence[Any]) -> tuple[int, ...]:
        scheme = tuple(int(k) for k in scheme)
        if len(scheme) != len(self.sources):
            raise ValueError(f"a scheme needs one layer count per source ({len(self.sources)}), "
                             f"got {len(scheme)}: {scheme}")
        return scheme

    def identity(self) -> dict[str, Any]:
        """What a stored run must match to stand for a training of this fitness."""
        return {"dataset": self.splits.name, "lam": self.lam,
                "sources": [s.model_dump(mode="json") if hasattr(s, "model_dump") else str(s)
                            for s in self.sources],
                "freeze_bn_stats": self.freeze_bn_stats,
                "train": training_identity(self.config),
                **device_identity(resolve_device(self.config.device))}

    def _train(self, scheme: tuple[int, ...]) -> dict[str, list[float]]:
        """Train the scheme; per-epoch fused val accuracy and cross-entropy."""
        models = [copy.deepcopy(m) for m in self.templates()]
        for model, k in zip(models, scheme, strict=True):
            self._freeze(model, k, freeze_bn_stats=self.freeze_bn_stats)
        losses: list[float] = []
        everyone = [list(range(len(models)))]

        def measure_loss(epoch: int, row: dict[str, Any], evals: EpochEvaluation) -> None:
            # from the logits of fit's own validation pass: no second pass over val
            (output,), _ = evals.subset_outputs("val", everyone)
            losses.append(output.loss)

        result = fit(models, self.splits, self.config, MCLoss(self.lam),
                     callback=measure_loss)
        return {"val_acc": [row["val_acc"] for row in result.history], "val_loss": losses}

    def _run_path(self, scheme: tuple[int, ...]) -> Path | None:
        if self.runs_dir is None:
            return None
        return self.runs_dir / ("scheme-" + "-".join(str(k) for k in scheme) + ".json")

    def measure(self, scheme: Sequence[Any]) -> dict[str, list[float]]:
        """The scheme's per-epoch ``val_acc`` and ``val_loss``: stored, or trained now."""
        scheme = self._scheme(scheme)
        path = self._run_path(scheme)
        if path is not None and path.exists():
            stored = read_json(path)
            if stored.get("identity") != self.identity():
                raise ValueError(f"{path} was measured by another fitness (target, sources, "
                                 "lam or recipe differ); pass another runs_dir or delete it")
            return {"val_acc": stored["val_acc"], "val_loss": stored["val_loss"]}
        run = self._train(scheme)
        if path is not None:
            write_json(path, {"identity": self.identity(), "scheme": list(scheme), **run})
        return run

    def __call__(self, scheme: Sequence[Any]) -> float:
        scheme = self._scheme(scheme)
        t0 = time.perf_counter()
        run = self.measure(scheme)
        fitness = score_value(self.score, run["val_acc"], run["val_loss"], len(self.splits.val))
        self.records.append({"scheme": list(scheme), "fitness": fitness, **run,
                             "seconds": time.perf_counter() - t0})
        return Measured(fitness, {"val_acc": float(max(run["val_acc"])),
                                  "val_loss": float(min(run["val_loss"]))})


def make_fitness(
    sources: Sequence[Any],
    splits: Splits,
    train_config: TrainConfig,
    lam: float = 0.2,
    freeze_bn_stats: bool = False,
    build: Builder | None = None,
    freeze: Freezer | None = None,
    runs_dir: str | Path | None = None,
) -> SchemeFitness:
    """The AMLS fitness for these sources and target (see :class:`SchemeFitness`).

    ``build(j)`` defaults to ``amcf.models.build_model(sources[j], num_classes, in_chans=...)``
    and ``freeze`` to ``amcf.layers.freeze_bottom``; both can be replaced (e.g. in tests).
    """
    return SchemeFitness(sources, splits, train_config, lam, freeze_bn_stats, build, freeze,
                         runs_dir)


_COMPUTED = frozenset({"fitness", "dims", "high", "state_path"})


def _settings_dict(search_settings: Any) -> dict[str, Any]:
    if hasattr(search_settings, "model_dump"):
        search_settings = search_settings.model_dump()
    if search_settings is None:
        return {}
    if not isinstance(search_settings, Mapping):
        raise TypeError("search_settings must be a dict (or pydantic model) of search options "
                        f"such as particles, iterations, seed; got {type(search_settings)}")
    clash = sorted(_COMPUTED & set(search_settings))
    if clash:
        raise ValueError(f"search_settings must not set {clash}: run_amls derives them from "
                         "the models (high_j = number of layers of model j - 1)")
    return dict(search_settings)


def run_amls(
    sources: Sequence[Any],
    splits: Splits,
    search_settings: Mapping[str, Any] | Any,
    train_config: TrainConfig,
    lam: float = 0.2,
    state_path: Any = None,
    *,
    freeze_bn_stats: bool = False,
    build: Builder | None = None,
    freeze: Freezer | None = None,
    search: Callable[..., Any] | None = None,
    runs_dir: str | Path | None = None,
    executor: Executor | None = None,
) -> Any:
    """Search the freezing scheme with PSO (``amcf.search.pso`` unless ``search`` is given).

    One dimension per source with range [low, num_layers_j - 1], as in the paper (49 layers
    -> [0, 48]: the last layer and the head always train). ``search_settings`` holds the
    search's own options (particles, iterations, seed, c1, c2, w_start, w_end, v_max, low).
    ``runs_dir`` keeps each training's measurements for reuse by a search under another score
    (see :class:`SchemeFitness`). ``executor`` evaluates a generation's schemes side by side
    for a search that takes one (:func:`amcf.search.pso.pso_sync`); the paper's swarm is
    sequential and ignores it. Returns the search's result (``best``, ``best_fitness``,
    ``history``, ...).
    """
    settings = _settings_dict(search_settings)
    fitness = make_fitness(sources, splits, train_config, lam, freeze_bn_stats, build, freeze,
                           runs_dir)
    counts = fitness.layer_counts()
    if min(counts) < 1:
        raise ValueError(f"every source model needs at least one layer to search over, got "
                         f"layer counts {counts}")
    if search is None:
        from amcf.search.pso import pso as search
    params = inspect.signature(search).parameters
    if "context" in params and "context" not in settings:
        # The search's memo records what the fitness measured, so a state file written for
        # another target, source set or recipe is refused instead of reused.
        settings["context"] = {
            "method": "amls", "dataset": splits.name, "lam": lam,
            "sources": [s.model_dump() if hasattr(s, "model_dump") else str(s)
                        for s in fitness.sources],
            "freeze_bn_stats": freeze_bn_stats, "train": fitness.config.identity(),
        }
    if "executor" in params and "executor" not in settings:
        # a synchronous search evaluates a generation's schemes through the executor given
        # (a process pool, Ray tasks), else one after another
        settings["executor"] = executor
    return search(fitness, len(counts), high=[n - 1 for n in counts], state_path=state_path,
                  **settings)
