"""The schema of ``params.yaml``: every profile is checked before any stage runs.

``amcf params check [FILE]`` (the first step of ``make reproduce``) validates a params file
against this schema, so a typo, an unknown dataset or a value out of range stops the run
with a message naming the key and the fix, before hours of training start. The notebooks
validate their own part again (TrainConfig, SourceSpec, the search's arguments).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from amcf.search.settings import SwarmSettings
from amcf.train.config import FITNESS_SCORES, FitnessConfig, TrainConfig
from amcf.train.cuda import CudaUnavailable, require_cuda, requires_cuda
from compendium.methods.entry import Method, by_run, check_options
from compendium.methods.registry import ABLATION_RUNS, ABLATIONS, BASELINE_RUNS, BASELINES
from compendium.plan import AnalysisPlan


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_repeats(where: str, seeds: list[int], why: str) -> None:
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"{where} must be distinct seeds, but {seeds} repeats {repeated}: "
                         f"{why}. Fix: list each seed once")


class SearchSection(_Strict):
    pso: SwarmSettings  # the swarm's own schema; what it leaves out is the paper's value
    fitness: FitnessConfig  # a TrainConfig plus `score` (amcf.search.scores)
    # one search per seed, each the seed of both its swarm and its fitness runs; training seed
    # s uses search s mod len(seeds), so the spread over seeds includes the search's variance
    # (not `seeds`: the stages unpack this section beside the top-level `seeds`)
    search_seeds: list[int] = Field([0], min_length=1)
    # other fitness scores to run the same swarms under (sharing their trainings), to measure
    # whether the choice depends on the score (searches.json: best_by_score, same_scheme)
    compare_scores: list[str] = []

    @model_validator(mode="after")
    def _one_seed_knob(self) -> SearchSection:
        if self.pso.seed != 0 or self.fitness.seed != 0:
            raise ValueError("search.pso.seed and search.fitness.seed are set by "
                             "search.search_seeds (one search per seed); remove them and list "
                             "the seeds there")
        for score in self.compare_scores:
            if score not in FITNESS_SCORES:
                raise ValueError(f"search.compare_scores: unknown fitness score {score!r}; "
                                 "use the values search.fitness.score takes")
        _refuse_repeats("search.search_seeds", self.search_seeds, "each seed is one search, "
                        "and training seed s uses the search at position s mod their number")
        if min(self.search_seeds) < 0:
            raise ValueError(f"search.search_seeds must be seeds >= 0, got {self.search_seeds}")
        return self


class DatasetEntry(_Strict):
    """A registered dataset (``{}``) or a folder of your own images (``{folder: {...}}``)."""

    folder: dict[str, Any] | None = None
    # --- rehearsal branch: what prepare@ depends on, and the files-mode image size ---
    raw: str  # the folder of its raw inputs (compendium.data.raw)
    image_size: int | None = Field(None, ge=8)  # files mode: the crop (None: the paper's 224)
    # damaged images it may leave out (None: 0.1 % of them, at least one)
    max_damaged: int | None = Field(None, ge=0)


class PretrainEntry(_Strict):
    dataset: str
    arch: str
    init: str | None = None
    # how many times the source is pretrained, draw d under seed train.seed + d, into
    # build/sources/<name>/draw<d>.pt (amcf.sources.<name>.weights lists them)
    draws: int = Field(1, ge=1)
    train: TrainConfig

    def checkpoints(self, name: str) -> list[str]:
        """The files ``pretrain@<name>`` writes, one per draw."""
        return [f"build/sources/{name}/draw{d}.pt" for d in range(self.draws)]


class TargetEntry(_Strict):
    # training images per class, drawn afresh for each seed from the target's training pool
    # (compendium.stages.fewshot); null: the whole training split trains. Required, so that
    # no entry is empty: DVC renders an empty entry as a double space in the stage's command,
    # which the lock file's folded YAML does not keep, and the stage would never be up to date
    shots: int | None = Field(ge=1)


class SourceEntry(_Strict):
    arch: str
    # one checkpoint ("hub": timm's weights; None: random) for every training seed, or a list
    # of them, one per draw of the source's pretraining: training seed s uses draw s mod n
    weights: str | None | list[str] = Field("hub", union_mode="left_to_right")

    @field_validator("weights")
    @classmethod
    def _some_draws(cls, weights: str | None | list[str]) -> str | None | list[str]:
        if isinstance(weights, list) and not weights:
            raise ValueError("give at least one checkpoint (one per draw)")
        return weights

    def draws(self) -> list[str | None]:
        """The weights of each draw (one entry when one file serves every draw)."""
        return list(self.weights) if isinstance(self.weights, list) else [self.weights]


class AmcfSection(_Strict):
    sources: dict[str, SourceEntry] = Field(min_length=1)
    lam: float = Field(0.2, ge=0)
    freeze_bn_stats: bool = False


class FinalSection(_Strict):
    # every seed of the final runs: AMCF's, and the baselines' and ablations' (whose
    # non-decisive methods may run on the first few_seeds only)
    seeds: list[int] = Field(min_length=1)
    train: TrainConfig

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        _refuse_repeats("final.seeds", seeds, "each seed is one run of every method, and a "
                        "repeated seed would publish the same run twice")
        return seeds


def _checked_options(family: str, entries: tuple[Method, ...], known: tuple[str, ...],
                     options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each method's options against its own schema (its file's ``Method.options``; a list is
    a grid of a baseline's setting, chosen on validation); errors name the run id."""
    for run, entry in options.items():
        if run not in known:
            raise ValueError(f"{run!r} is no {family} run id; options are keyed by one of "
                             f"{list(known)}")
        check_options(by_run(entries, run), entry, run)
    return options


# when the runs of a stage read the test split: every epoch (the best-over-epochs column), or
# only the epochs selection reports (amcf.train.selectable: the same test accuracies, faster)
TestEval = Literal["every", "improved", "selected"]


class BaselinesSection(_Strict):
    # the methods outside the decisive comparisons (compendium.methods.DECISIVE) run on the first
    # few_seeds seeds only (None: all)
    few_seeds: int | None = Field(None, ge=1)
    methods: list[Literal[BASELINE_RUNS]] = Field(min_length=1)  # type: ignore[valid-type]
    # per run id; a list is a grid searched on validation, e.g. l2sp: {alpha: [0.001, 0.1]}
    options: dict[str, dict[str, Any]] = {}
    test_eval: TestEval = "every"

    @field_validator("options")
    @classmethod
    def _known_settings(cls, options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return _checked_options("baseline", BASELINES, BASELINE_RUNS, options)


class AblationsSection(_Strict):
    few_seeds: int | None = Field(None, ge=1)  # as baselines.few_seeds
    methods: list[Literal[ABLATION_RUNS]] = Field(min_length=1)  # type: ignore[valid-type]
    lams: list[float] = []
    options: dict[str, dict[str, Any]] = {}
    test_eval: TestEval = "every"  # as baselines.test_eval

    @field_validator("options")
    @classmethod
    def _known_settings(cls, options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return _checked_options("ablation", ABLATIONS, ABLATION_RUNS, options)


class ReportSection(_Strict):
    featured_target: str
    image_size: int = Field(gt=0)


class Params(_Strict):
    """One profile of the pipeline (the whole of ``params.yaml``)."""

    profile: Literal["embedded", "paper", "rehearsal"]
    data_dir: str = "data"  # where `amcf data fetch` put the raw inputs
    datasets: dict[str, DatasetEntry] = Field(min_length=1)
    pretrain: dict[str, PretrainEntry] = {}
    targets: dict[str, TargetEntry] = Field(min_length=1)
    amcf: AmcfSection
    search: SearchSection
    final: FinalSection
    baselines: BaselinesSection
    ablations: AblationsSection
    report: ReportSection
    analysis_plan: AnalysisPlan  # compendium/plan.py, docs/analysis-plan.md

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        from amcf.models import SourceSpec
        from compendium.data.errors import DataError
        from compendium.data.folder import FolderDataset
        from compendium.data.raw import check_raw
        from compendium.data.registry import get_info

        for name, entry in self.datasets.items():
            if entry.folder is not None:
                folder = _checked(f"datasets.{name}.folder", FolderDataset, name=name,
                                  kind="folder", **entry.folder)
            else:
                try:
                    get_info(name)  # an unknown name raises, naming the closest registered
                except DataError as err:
                    raise ValueError(str(err)) from None
            try:
                check_raw(name, entry.raw, self.data_dir, entry.folder)
            except DataError as err:
                raise ValueError(str(err)) from None
            if entry.folder is not None and not folder.path.is_dir():
                raise ValueError(f"datasets.{name}.folder.path: {folder.path} is not a "
                                 "folder; point it at a folder of class subfolders")
        needed = {**{t: "targets" for t in self.targets},
                  **{e.dataset: f"pretrain.{s}.dataset" for s, e in self.pretrain.items()}}
        for name, where in needed.items():
            if name not in self.datasets:
                raise ValueError(f"{where} uses dataset {name!r}, which is not under "
                                 "`datasets:`; add it there so prepare@ builds it")
        built = {path for name, e in self.pretrain.items() for path in e.checkpoints(name)}
        for name, entry in self.amcf.sources.items():
            for d, weights in enumerate(entry.draws()):
                where = (f"amcf.sources.{name}.weights" if len(entry.draws()) == 1
                         else f"amcf.sources.{name}.weights[{d}]")
                _checked(where, SourceSpec, name=name, arch=entry.arch, weights=weights)
                _weights_file(where, weights, built)
        self._check_draws()
        for name, entry in self.pretrain.items():
            _checked(f"pretrain.{name}", SourceSpec, name=name, arch=entry.arch,
                     weights=entry.init)
            _weights_file(f"pretrain.{name}.init", entry.init, set())
        for where, recipe in self.recipes().items():
            if recipe.device.startswith("cuda:"):
                raise ValueError(f"{where}.device: {recipe.device!r} names one GPU; use "
                                 "'cuda': each training runs on the GPU it is given (Ray "
                                 "sets CUDA_VISIBLE_DEVICES), which it sees as the first")
        planned = self.analysis_plan.targets
        if set(planned) != set(self.targets):
            raise ValueError(f"analysis_plan.targets {planned} are not the targets "
                             f"{list(self.targets)}: the plan fixes the targets before the "
                             "results, so change both together (a change of the plan reruns "
                             "every training stage) and say why in docs/analysis-plan.md")
        if self.report.featured_target not in self.targets:
            raise ValueError(f"report.featured_target {self.report.featured_target!r} is not "
                             f"one of the targets {list(self.targets)}")
        return self

    def _check_draws(self) -> None:
        """Every source lists the same number of draws n (or one file for all), and n divides
        the number of searches: training seed s uses search s mod S and draw s mod n, which
        is the draw its search used (p mod n) only when n divides S."""
        counts = {n: len(e.draws()) for n, e in self.amcf.sources.items() if len(e.draws()) > 1}
        if len(set(counts.values())) > 1:
            raise ValueError(f"amcf.sources: the sources list different numbers of draws "
                             f"{counts}; list one checkpoint per draw for each of them (or one "
                             "file that serves every draw)")
        draws = max(counts.values(), default=1)
        searches = len(self.search.search_seeds)
        if searches % draws:
            raise ValueError(f"amcf.sources list {draws} draws, which do not divide the "
                             f"{searches} searches of search.search_seeds: search p uses draw "
                             "p mod n and training seed s uses search s mod S and draw s mod n, "
                             "so n must divide S; change the draws or the search seeds")

    @property
    def seeds(self) -> list[int]:
        """The seeds of the final runs (``final.seeds``)."""
        return self.final.seeds

    def recipes(self) -> dict[str, TrainConfig]:
        """Every training recipe of the profile, by its key path."""
        return {**{f"pretrain.{name}.train": e.train for name, e in self.pretrain.items()},
                "search.fitness": self.search.fitness, "final.train": self.final.train}

    @property
    def requires_cuda(self) -> bool:
        """Whether a recipe asks for CUDA (``device: cuda``, the paper profile): then every
        training stage, ``amcf params check`` and ``amcf cluster-run`` refuse a machine where
        CUDA does not work, rather than train on its CPU."""
        return any(requires_cuda(r.device) for r in self.recipes().values())


# ---- checks that need more than one field (faults branch) ----------------------------------
# Where a source checkpoint may live: the folders the training stages of dvc.yaml depend on,
# so that DVC reruns them when the file changes.
WEIGHTS_DEPS = ("build/sources/", "data/")


def _checked(where: str, model: type[BaseModel], **fields: Any) -> Any:
    """``model(**fields)``; its errors name their key path in params.yaml."""
    try:
        return model(**fields)
    except ValidationError as err:
        raise ValueError("; ".join(
            f"{'.'.join([where, *map(str, e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors())) from None


def _weights_file(where: str, weights: str | None, built: set[str]) -> None:
    """A local weights file must exist (or be built by pretrain@) inside a stage dependency."""
    if weights in (None, "hub"):
        return
    path = Path(weights).as_posix()
    if path in built:
        return
    if not Path(weights).is_file():
        raise ValueError(f"{where}: {weights} does not exist (nor is it built by a pretrain@ "
                         "stage); fix the path, or fetch it (`amcf data fetch` brings "
                         "data/pretrained/)")
    if not path.startswith(WEIGHTS_DEPS):
        raise ValueError(f"{where}: {weights} is outside {' and '.join(WEIGHTS_DEPS)}, which "
                         "the training stages depend on, so DVC would not notice when it "
                         "changes; copy it under data/ (e.g. data/pretrained/) and point "
                         "weights there")


def _yaml_12_floats() -> type[yaml.SafeLoader]:
    """A loader that reads ``1e-5`` as a number, as DVC (YAML 1.2) does; PyYAML's YAML 1.1
    reads it as text, and an untyped setting would then reach the notebook as a string."""
    import re

    class Loader(yaml.SafeLoader):
        pass

    pattern = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)[eE][-+]?\d+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", pattern, list("-+0123456789."))
    return Loader


class ParamsError(ValueError):
    """A params file that does not follow the schema."""


def load_params(path: str | os.PathLike = "params.yaml") -> Params:
    """Read and validate a params file; errors name the file, the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} does not exist; copy params.yaml or profiles/paper.yaml")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_12_floats())  # noqa: S506
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from err
    from compendium.pipeline.notebook import dropped_by_dvc

    empty = dropped_by_dvc(raw) if isinstance(raw, dict) else []
    if empty:
        raise ParamsError(f"{path}: empty list(s) at {', '.join(empty)}. DVC drops an empty "
                          "list when it passes a section to a stage, and the notebook would "
                          "silently use its demo defaults. Fix: give each at least one value "
                          "(or remove the method that needs it)")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        lines = [f"{path} does not follow the params schema (compendium/params.py):"]
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (misspelled?), not part of the schema"
            lines.append(f"  {where}: {msg}" if where else f"  {msg}")
        lines.append("Fix: correct the keys and values named above; params.yaml and "
                     "profiles/paper.yaml show every key with a valid value")
        raise ParamsError("\n".join(lines)) from None


def require_device(params: Params, what: str) -> None:
    """Raise :class:`CudaUnavailable` when ``params`` requires CUDA and it does not work here."""
    if params.requires_cuda:
        require_cuda(f"{what} (profile {params.profile}: its recipes say device: cuda)")


def recipe_devices(tree: Any) -> dict[str, str]:
    """The ``device`` each training recipe of a params tree (as read from YAML) names."""
    if not isinstance(tree, dict):
        return {}
    recipes = {f"pretrain.{name}.train": (entry or {}).get("train")
               for name, entry in (tree.get("pretrain") or {}).items()
               if isinstance(entry, dict)}
    recipes["search.fitness"] = (tree.get("search") or {}).get("fitness")
    recipes["final.train"] = (tree.get("final") or {}).get("train")
    return {where: str(r.get("device", "auto")) for where, r in recipes.items()
            if isinstance(r, dict)}


def launch_problem(path: str | os.PathLike = "params.yaml", remote: bool = False) -> str | None:
    """Why the trainings of the profile in ``path`` cannot run from here (their recipes
    require CUDA and it does not work), or None: ``amcf cluster-run``'s first step. The
    schema is ``amcf params check``'s job (and every stage's); with ``remote`` the trainings
    run on a Ray cluster's nodes, where each training stage checks CUDA on its own node."""
    path = Path(path)
    if remote or not path.is_file():
        return None
    try:
        tree = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_12_floats())  # noqa: S506
    except yaml.YAMLError as err:
        return f"{path} is not valid YAML: {err}"
    cuda = [where for where, device in recipe_devices(tree).items() if requires_cuda(device)]
    if not cuda:
        return None
    try:
        require_cuda(f"amcf cluster-run ({path}: device cuda in {', '.join(cuda)})")
    except CudaUnavailable as err:
        return str(err)
    return None


def check(paths: list[str], device: bool = True) -> int:
    """``amcf params check [FILE ...]``: 0 when every file follows the schema and, with
    ``device``, this machine has the device its recipes require; else 2."""
    import sys

    status = 0
    for path in paths or ["params.yaml"]:
        try:
            params = load_params(path)
            if device:
                require_device(params, str(path))
            print(f"{path}: profile {params.profile}, {len(params.targets)} targets, "
                  f"{len(params.amcf.sources)} sources, {len(params.seeds)} seeds"
                  f"{', CUDA' if params.requires_cuda and device else ''}: ok")
        except (ValueError, CudaUnavailable) as err:  # ParamsError, the schema's checks
            print(f"amcf params: error: {err}", file=sys.stderr)
            status = 2
    return status
