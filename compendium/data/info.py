"""What a dataset is (:class:`DatasetInfo`) and the table each dataset module registers its
entry in. Reading the table by name is :mod:`compendium.data.registry`'s job; the dataset
modules import only this module, so the two never import each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Role = Literal["source", "target"]
Profile = Literal["embedded", "paper"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, where its raw bytes come from and how it becomes splits.

    ``files`` are fetchables (see :mod:`compendium.data.fetch`) whose outputs live under ``data/``;
    ``prepare(data_dir, work_dir)`` turns them into a :class:`compendium.data.prepared.Prepared`.
    ``sizes`` documents the images per split that ``prepare`` must produce (tests check it).
    """

    name: str
    role: Role
    profile: Profile
    classes: int
    files: tuple[Any, ...]
    prepare: Callable[[Path, Path], Any]
    title: str
    licence: str
    citation: str
    source: str
    sizes: dict[str, int] | None = None
    reasoning: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    if info.name in REGISTRY:
        raise ValueError(f"dataset {info.name!r} is registered twice")
    REGISTRY[info.name] = info
    return info
