"""Names a package exports, imported on first use (PEP 562).

A package's ``__init__`` maps each public name to the module that defines it (``_EXPORTS``)
instead of importing them all: importing one module of the package (``amcf.numerics``, a
stage's own code) then runs nothing else, and ``compendium.pipeline.deps``, which reads the
same literal map, still sees where each name comes from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                             Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, resolving ``exports`` on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(exports) | {"__version__"})

    return __getattr__, __dir__
