"""Argument checks shared by the searches: every mistake fails before the first fitness call."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}; pass a larger {name}")
    return int(value)


def check_float(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    value = check_float(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}; pass a positive {name}")
    return value


def check_fitness(fitness: Any) -> Callable[[tuple[int, ...]], float]:
    if not callable(fitness):
        raise TypeError(
            f"fitness must be a callable taking a tuple of ints and returning a float, "
            f"got {type(fitness).__name__}"
        )
    return fitness


def check_context(context: Any) -> Any:
    """The caller's description of what the fitness measures, as it will round-trip in JSON."""
    try:
        return json.loads(json.dumps(context, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(
            "context must be JSON-serialisable (a str, or a dict of str/number/list values, "
            f"e.g. {{'dataset': 'digits', 'sources': ['mnist']}}): {err}"
        ) from err


def check_bounds(
    dims: int, low: float | Sequence[float], high: float | Sequence[float], *, integer: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension float arrays of the bounds; ``integer`` demands whole-number bounds."""
    arrays = []
    for name, value in (("low", low), ("high", high)):
        values = list(value) if isinstance(value, Sequence | np.ndarray) else [value] * dims
        if len(values) != dims:
            raise ValueError(
                f"{name} has {len(values)} entries but dims is {dims}; pass one bound per "
                "dimension or a single number for all"
            )
        checked = [check_float(f"{name}[{j}]", v) for j, v in enumerate(values)]
        if integer and not all(v.is_integer() for v in checked):
            raise ValueError(f"{name} must hold whole numbers for an integer search, got {values}")
        arrays.append(np.array(checked, dtype=np.float64))
    lo, hi = arrays
    bad = [j for j in range(dims) if not lo[j] < hi[j]]
    if bad:
        j = bad[0]
        raise ValueError(
            f"low must be < high in every dimension; dimension {j} has low={lo[j]:g}, "
            f"high={hi[j]:g}"
        )
    return lo, hi


def fitness_value(value: Any, scheme: tuple[int, ...]) -> float:
    """The fitness as a finite float: anything else would poison comparisons and the JSON."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"fitness{scheme} returned {value!r} ({type(value).__name__}); it must return a "
            "real number (higher is better)"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"fitness{scheme} returned {value}; it must return a finite number (higher is "
            "better)"
        )
    return value


class Measured(float):
    """A fitness value that carries what else its run measured (e.g. ``{"val_acc": ...,
    "val_loss": ...}``): the search compares the float, its ledger records ``details``
    beside it in the memo and in every history row of that scheme."""

    details: dict[str, Any]

    def __new__(cls, value: float, details: dict[str, Any]) -> Measured:
        obj = super().__new__(cls, value)
        obj.details = dict(details)
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the details across processes (Ray)
        return (Measured, (float(self), self.details))


def measured_details(value: Any) -> dict[str, Any]:
    """The JSON-ready details of a fitness value (empty for a plain number)."""
    details = getattr(value, "details", None) or {}
    return check_context(details)
