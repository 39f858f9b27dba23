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
class DiskShape:
    """What preparing a dataset puts on disk, for the disk plan (compendium.data.disk).

    ``images``: the images its prepared copy holds (every image of a split); ``size``: a
    typical original (width, height), of which the copy keeps the aspect ratio; ``kind``:
    "files" (uint8 views of each image, resized) or "tensor" (uint8
    pixels in tensors.pt, ``channels`` x the original size); ``extracted``: each folder (or
    file) that preparing unpacks, relative to the dataset's prepared folder, and its bytes.
    The bytes of the copy itself come from the module that writes it
    (:func:`compendium.data.prepared.planned_copy`), so that they follow its format.
    """

    images: int
    size: tuple[int, int]
    kind: Literal["files", "tensor"] = "files"
    channels: int = 3
    extracted: tuple[tuple[str, int], ...] = ()


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
    disk: DiskShape | None = None  # the paper profile's datasets: what preparing writes
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    if info.name in REGISTRY:
        raise ValueError(f"dataset {info.name!r} is registered twice")
    REGISTRY[info.name] = info
    return info
