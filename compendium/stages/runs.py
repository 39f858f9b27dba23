"""What the training stages' runs share: the target's :class:`Setting`, building models under
a seed, each run's work directory, and AMCF's run with any scheme, sources and objective
(:func:`run_amcf_variant`: the ablations that vary one piece of it, and ALS).

The trainer's checkpoints go to a work directory named after a fingerprint of everything
that determines the run, so a killed stage resumes, and a changed setting starts afresh
instead of colliding with a stale checkpoint. What a run publishes goes through
:mod:`compendium.results`, the one writer of the results tree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from amcf import numerics
from amcf.datasets import Splits
from amcf.models.build import SourceSpec, build_frozen
from amcf.objective import MCLoss, Objective
from amcf.train.config import TrainConfig, resolve_device
from amcf.train.cuda import require_cuda, requires_cuda
from amcf.train.fit import TrainResult, fit
from amcf.train.state import device_identity, run_identity
from compendium import results, timings
from compendium.stages.fewshot import with_shots

T = TypeVar("T")


@dataclass
class Setting:
    """What one target's runs share: data, sources, the searched scheme and the recipe."""

    splits: Splits
    sources: list[SourceSpec]  # the sources of draw 0 (or of every seed, without ``draws``)
    scheme: tuple[int, ...]
    train: TrainConfig
    # one scheme per search seed, in search.search_seeds' order: training seed s uses the
    # scheme of results.search_for_seed (so that the spread over seeds includes the search's
    # own variance; empty: ``scheme`` for every seed)
    schemes: tuple[tuple[int, ...], ...] = ()
    lam: float = 0.2
    freeze_bn_stats: bool = False
    results_dir: Path = Path("results")
    work_dir: Path = Path("build/work")
    options: dict[str, Any] = field(default_factory=dict)
    group: str = ""  # results go to results_dir/<target>/<group>/<method>/seed<k>
    timings_dir: Path | None = None  # None: beside work_dir (timings.default_timings_dir)
    # the K sources of each pretraining draw (source_draws): training seed s uses draw s mod
    # n (:meth:`for_seed`), so the spread over seeds includes which sources one happened to
    # get; empty: ``sources`` for every seed
    draws: tuple[tuple[SourceSpec, ...], ...] = ()
    # training images per class that seed s draws from the target's training pool (draw s,
    # compendium.stages.fewshot); None: the whole training split trains every seed
    shots: int | None = None
    shots_drawn: bool = False  # splits.train is already the draw of one seed (for_seed)

    def __post_init__(self) -> None:
        self.draws = tuple(tuple(draw) for draw in self.draws)
        if self.draws and [s.name for s in self.draws[0]] != [s.name for s in self.sources]:
            raise ValueError("Setting.sources must be the sources of draw 0 "
                             f"({[s.name for s in self.draws[0]]}), got "
                             f"{[s.name for s in self.sources]}")
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
        return (results.search_for_seed(self.schemes, seed) if self.schemes
                else tuple(self.scheme))

    def for_seed(self, seed: int) -> Setting:
        """This setting as training seed ``seed`` sees it: the sources of its draw
        (:func:`draw_for_seed`) and its few-shot training set (draw ``seed`` of ``shots`` per
        class); itself when there is one source draw and no ``shots``."""
        here = self
        if len(self.draws) > 1:
            here = dataclasses.replace(here, sources=list(draw_for_seed(self.draws, seed)),
                                       draws=())
        if self.shots is not None and not self.shots_drawn:
            here = dataclasses.replace(here, splits=with_shots(self.splits, self.shots, seed),
                                       shots_drawn=True)
        return here

    @property
    def train_facts(self) -> dict[str, int | None]:
        """What every run of this setting trains on, for its metrics: its training images
        (``shots`` per class, drawn per seed, else the whole training split), its classes and
        its ``shots`` (None: no few-shot draw)."""
        classes = self.splits.num_classes
        images = (self.shots * classes if self.shots is not None
                  else len(self.splits.train))
        return {"train_images": images, "classes": classes, "shots": self.shots}

    def out_dir(self, method: str, seed: int) -> Path:
        return results.run_dir(self.results_dir, self.splits.name, self.group, method, seed)

    def source(self, name: str) -> SourceSpec:
        for s in self.sources:
            if s.name == name:
                return s
        raise ValueError(f"no source named {name!r}; sources: {[s.name for s in self.sources]}")


def source_draws(sources: Mapping[str, Mapping[str, Any]]) -> list[list[SourceSpec]]:
    """The K sources of each draw, from ``amcf.sources`` (name -> ``{arch, weights}``).

    ``weights`` is one checkpoint (or "hub", or None) for every draw, or a list of
    checkpoints, one per draw of the source's pretraining (``pretrain.<name>.draws``); the
    lists must be equally long (n draws; a single file serves each of them)."""
    counts = {n: len(s["weights"]) for n, s in sources.items()
              if isinstance(s.get("weights"), (list, tuple))}
    if any(c < 1 for c in counts.values()) or len(set(counts.values())) > 1:
        raise ValueError(f"amcf.sources: every list of weights needs the same number of draws "
                         f"(one checkpoint per draw), got {counts}")
    n = max(counts.values(), default=1)
    return [[SourceSpec(name=name, **{**spec, "weights": _draw_weights(spec.get("weights",
                                                                               "hub"), d)})
             for name, spec in sources.items()] for d in range(n)]


def source_fields(sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """:class:`Setting`'s ``sources`` and ``draws`` from ``amcf.sources``."""
    draws = source_draws(sources)
    return {"sources": draws[0], "draws": draws}


def _draw_weights(weights: Any, draw: int) -> Any:
    return weights[draw] if isinstance(weights, (list, tuple)) else weights


def draw_for_seed(draws: Sequence[T], seed: int) -> T:
    """The source draw training seed ``seed`` uses: position ``seed mod n``, as a search
    (:func:`compendium.results.search_for_seed`); search at position p uses draw p mod n."""
    if not draws:
        raise ValueError("no source draws")
    return draws[int(seed) % len(draws)]


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


def check_device(stage: str, *recipes: Mapping[str, Any] | TrainConfig,
                 elsewhere: bool = False) -> None:
    """Stop ``stage`` at once, before it reads any data, when a recipe asks for CUDA
    (``device: cuda``, the paper profile) and this machine cannot give it: the error says
    which driver the installed torch needs and how to install a build for an older one.

    ``elsewhere``: the stage's trainings run as Ray tasks on whichever node holds a GPU, and
    this process may hold none; each training then checks on its own node (``fit``), and
    ``amcf cluster-run`` has checked before it started any stage."""
    if elsewhere:
        return
    for recipe in recipes:
        device = (recipe.device if isinstance(recipe, TrainConfig)
                  else recipe.get("device", "auto"))
        if requires_cuda(str(device)):
            require_cuda(f"{stage} (its recipe's device: {device})")


def device_key(config: TrainConfig) -> list[dict[str, str]]:
    """What a search memo's folder adds for the device its trainings run on: nothing on the
    CPU (the folders made before keep their names), ``[{"device": "cuda"}]`` on a GPU, so a
    memo of CPU trainings never answers for CUDA ones (nor the reverse)."""
    found = device_identity(resolve_device(config.device))
    return [found] if found else []


def work_dir(base: Path, key: str, seed: int, config: TrainConfig, splits: Splits,
             models: Sequence[nn.Module], objective: Objective) -> Path:
    """A work directory named after the run's full identity (recipe, objective, frozen
    layers, starting weights): a changed setting or new source weights get a fresh
    directory instead of a refused checkpoint, and an unchanged run resumes or is reused."""
    return base / key / f"seed{seed}" / fingerprint(
        run_identity(config.identity(), models, objective, resolve_device(config.device)),
        data_fingerprint(splits))


def train(setting: Setting, key: str, seed: int, models: list[nn.Module],
          objective: Objective) -> TrainResult:
    """Fit in the run's work directory (``result.out_dir``)."""
    config = setting.train.model_copy(update={"seed": seed})
    work = work_dir(setting.work_dir / setting.splits.name, key, seed, config, setting.splits,
                    models, objective)
    # a finished run keeps what resuming and the report read, not its weights (a ResNet-50
    # pair's checkpoint is 0.2-0.4 GB, and a paper target has about 45 runs)
    return fit(models, setting.splits, config, objective, out_dir=work, keep_checkpoint=False)


def publish(setting: Setting, method: str, seed: int, result: TrainResult,
            extra: dict[str, Any] | None = None, shared_by: int = 1) -> Path:
    """Publish a run's result files (``shared_by``: how many published results one training
    makes, each charged its share of the wall time)."""
    return results.publish_run(setting.out_dir(method, seed), setting.results_dir,
                               setting.timings_dir, method, seed, result,
                               {**setting.train_facts, **(extra or {})}, shared_by)


def run_amcf_variant(setting: Setting, seed: int, *, method: str = "amcf",
                     lam: float | None = None, scheme: Sequence[int] | None = None,
                     sources: Sequence[SourceSpec] | None = None,
                     objective: Objective | None = None) -> Path:
    """AMCF with any piece given (lambda, the scheme, the sources, the objective), published
    as ``method``: the ablations' runs and ALS's. With the defaults it is AMCF's own training;
    the ``amcf@`` stage publishes that with amcf-select
    (:func:`compendium.stages.amcf.run_amcf_and_select`)."""
    setting = setting.for_seed(seed)
    # the given sources by name, in this seed's draw
    sources = list(setting.sources if sources is None
                   else [setting.source(s.name) for s in sources])
    scheme = tuple(setting.scheme_for(seed) if scheme is None else scheme)
    lam = setting.lam if lam is None else lam
    objective = MCLoss(lam) if objective is None else objective
    with seeded(seed):
        models = build_frozen(sources, scheme, setting.splits, setting.freeze_bn_stats)
    result = train(setting, method, seed, models, objective)
    return publish(setting, method, seed, result,
                   {"scheme": list(scheme), "lam": lam, "sources": [s.name for s in sources]})
