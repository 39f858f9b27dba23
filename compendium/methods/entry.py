"""One method of the compendium, as its own file declares it, and finding those files.

Every method (AMCF, each baseline, each ablation) is one :class:`Method` entry in a file of
its family's package (``compendium/methods/baselines/``, ``.../ablations/``,
``.../proposed/``): ``METHODS = (Method(...), ...)``. :func:`discover` collects a package's
entries, so a new method is its file (and its settings in ``params.yaml``), and nothing else.

A **run id** (``Method.run``) names what runs: what ``params.yaml`` lists under
``baselines.methods`` / ``ablations.methods`` and keys ``options`` by. A run publishes one or
more **result ids** (``Method.id``), the folders under ``results/<target>/[<group>/]``; a
template's ``{}`` is filled when the run publishes (``finetune-{}`` -> ``finetune-mnist``).
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

FAMILIES = ("baseline", "ablation", "amcf")


@dataclass(frozen=True)
class Method:
    """One result id: how a reader sees it, its family, and how it runs.

    ``order`` places it in tables (baselines, then ablations, AMCF last). ``reference``: a
    candidate for the best single-source reference (each source's fine-tuning and linear
    probe). ``decisive``: the result ids (templates allowed) of this entry that decide the
    paper's question and so run on every seed; the others run on the first ``few_seeds``.
    ``searched``: it trains with the target's searched AMLS scheme, so that search is part of
    its cost (a method with a search of its own, ALS, publishes it beside its seeds).

    A baseline built from a configuration gives its ``recipe``: ``recipe(sources, num_classes,
    *, in_chans, **options) -> (models, objective)``, ``seed=`` as well when ``seeded`` (it
    draws its own initialisation). A **single-source** baseline also names the source it runs
    on (``on``: the best single source on validation, or the first source), and the baselines
    stage runs it generically; ``options`` is the pydantic schema of a method's ``options``
    entry in ``params.yaml`` (for a baseline, a list is a grid chosen on validation).
    """

    id: str
    label: str
    family: Literal["baseline", "ablation", "amcf"]
    order: int
    run: str
    reference: bool = False
    decisive: tuple[str, ...] = ()
    searched: bool = False
    recipe: Callable[..., tuple[list, Any]] | None = None
    options: type[BaseModel] | None = None
    seeded: bool = False
    on: Literal["best", "first"] | None = None


@dataclass(frozen=True)
class MethodInfo:
    """A result id looked up in a table of entries, its template filled in."""

    id: str
    label: str
    family: str
    run: str
    reference: bool = False  # a candidate for the best single-source reference
    order: int = 0  # position in tables: baselines first, AMCF last
    searched: bool = False  # trains with the target's searched scheme


def discover(package: str) -> tuple[Method, ...]:
    """The entries (``METHODS``) of every module of ``package`` whose name does not start
    with ``_`` (those are helpers), in table order.

    ``compendium.pipeline.deps`` reads a call with a literal package name as an import of
    each of those modules, so a stage that discovers a family depends on all its files."""
    root = importlib.import_module(package)
    found: list[Method] = []
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found += getattr(importlib.import_module(f"{package}.{info.name}"), "METHODS", ())
    orders = [m.order for m in found]
    if len(set(orders)) != len(orders):
        raise ValueError(f"two methods of {package} share a table position (order): {orders}")
    return tuple(sorted(found, key=lambda m: m.order))


def runs(entries: Sequence[Method]) -> tuple[str, ...]:
    """The run ids of ``entries``, in table order (each once)."""
    return tuple(dict.fromkeys(m.run for m in entries))


def by_run(entries: Sequence[Method], run: str) -> Method:
    """The entry whose run id is ``run`` (its first result id, for a run publishing several)."""
    for m in entries:
        if m.run == run:
            return m
    raise ValueError(f"unknown method {run!r}; choose one of {list(runs(entries))}")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.escape(template).replace(r"\{\}", r"(.+)") + r"\Z")


def matches(template: str, result_id: str) -> re.Match[str] | bool | None:
    return _pattern(template).match(result_id) if "{}" in template else template == result_id


def method_info(result_id: str, entries: Sequence[Method]) -> MethodInfo:
    """Look a result id up in ``entries`` (exact ids win over templates)."""
    for m in entries:
        if "{}" not in m.id and m.id == result_id:
            return MethodInfo(result_id, m.label, m.family, m.run, m.reference, m.order,
                              m.searched)
    for m in entries:
        match = _pattern(m.id).match(result_id) if "{}" in m.id else None
        if match:
            return MethodInfo(result_id, m.label.format(match.group(1)), m.family, m.run,
                              m.reference, m.order, m.searched)
    known = ", ".join(m.id.replace("{}", "<x>") for m in entries)
    raise ValueError(
        f"unknown method id {result_id!r}: the results directory holds a method the table does "
        f"not know. Rename the directory to one of: {known}; or add the method's file under "
        "compendium/methods/ (see compendium/methods/entry.py)"
    )


def is_decisive(result_id: str, entries: Sequence[Method]) -> bool:
    """Whether a result id belongs to the decisive comparisons (run at every seed)."""
    return any(matches(d, result_id) for m in entries for d in m.decisive)


def seeds_of(result_id: str, seeds: Sequence[int], few_seeds: int | None,
             entries: Sequence[Method]) -> list[int]:
    """The seeds a result runs on: all of them for the decisive comparisons, the first
    ``few_seeds`` for the rest (None: all)."""
    if few_seeds is not None and few_seeds < 1:
        raise ValueError(f"few_seeds must be >= 1 or None (all seeds), got {few_seeds}")
    seeds = list(seeds)
    return (seeds if few_seeds is None or is_decisive(result_id, entries)
            else seeds[:few_seeds])


# ---- a single-source baseline's settings: one point, or a grid chosen on validation --------

class Options(BaseModel):
    """Base of a method's options schema: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


def grid(value: Any) -> Any:
    """A setting given as a value or a list of values (a grid axis); a scalar is read as a
    one-point grid, so errors name one shape."""
    return Annotated[list[value], Field(min_length=1), BeforeValidator(_as_list)]


NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(ge=1)]

def settings_of(method: Method) -> list[str]:
    """The settings ``method``'s options schema accepts, in its declared order."""
    return [] if method.options is None else list(method.options.model_fields)


def check_options(method: Method, options: Mapping[str, Any], where: str) -> None:
    """Refuse unknown settings and values the schema rejects; errors name ``where``."""
    accepted = settings_of(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{method.run} has no setting {unknown}; it accepts {accepted}")
    if method.options is None:
        return
    try:
        method.options(**options)
    except ValidationError as err:
        raise ValueError("; ".join(
            f"{'.'.join([where, *map(str, e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors())) from None


def option_grid(method: Method, options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every point of a baseline's settings grid, checked: a list is a grid axis, a scalar a
    one-point axis.

    Points are the product of the axes in the schema's order (for L2-SP, alpha before beta),
    each axis in its listed order, so "the first point" (which wins a tie) does not depend on
    how the settings were passed along; the values are the ones given, as given. ``seed`` is
    not a setting: the run sets it.
    """
    accepted = settings_of(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"baseline {method.run!r} has no setting {unknown}; it accepts "
                         f"{accepted}")
    axes = []
    for key in (p for p in accepted if p in options):
        values = options[key]
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise ValueError(f"{method.run}.{key} is an empty grid; give a value or a list of "
                             "at least one value")
        axes.append([(key, v) for v in values])
    points = [dict(combo) for combo in itertools.product(*axes)]
    for point in points:
        try:
            check_options(method, point, method.run)
        except ValueError as err:
            raise ValueError(f"{method.run} setting {point}: {err}; fix the value in "
                             f"baselines.options.{method.run}") from None
    return points
