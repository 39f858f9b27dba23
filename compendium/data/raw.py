"""Which folder holds a dataset's raw inputs: what its ``prepare@`` stage depends on.

Each entry of ``datasets:`` names that folder as ``raw``; DVC can only take one path per
entry, so ``raw`` is the narrowest folder that holds every raw file of the dataset (for a
folder of your own images: that folder). Depending on exactly it, and not on the whole data
directory, keeps one dataset's download from re-running every other dataset's stages.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from compendium.data.errors import DataError


def raw_files(name: str) -> list[str]:
    """Paths, relative to the data directory, of a registered dataset's raw inputs."""
    from compendium.data.registry import get_info

    out = []
    for item in get_info(name).files:
        if hasattr(item, "outputs"):
            out.extend(rel for rel, _ in item.outputs())
        else:  # a fetchable of a whole folder (the Twemoji PNGs)
            out.append(f"{item.folder}/*")
    return out


def narrowest_raw(name: str, data_dir: str | os.PathLike) -> str:
    """The narrowest folder under ``data_dir`` that holds every raw input of ``name``."""
    parents = [PurePosixPath(rel).parts[:-1] for rel in raw_files(name)]
    common: list[str] = []
    for parts in zip(*parents, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return str(PurePosixPath(Path(data_dir).as_posix(), *common))


def check_raw(name: str, raw: str, data_dir: str | os.PathLike,
              folder: dict[str, Any] | None = None) -> None:
    """Raise when ``raw`` does not hold every raw input of dataset ``name``."""
    if folder is not None:
        if Path(raw) != Path(folder.get("path", "")):
            raise DataError(f"datasets.{name}.raw is {raw!r}, but its folder is "
                            f"{folder.get('path')!r}. Fix: set raw: {folder.get('path')} (the "
                            "stage depends on the folder it reads).")
        return
    root = Path(raw)
    outside = [rel for rel in raw_files(name)
               if not (Path(data_dir) / rel).is_relative_to(root)]
    if outside:
        raise DataError(f"datasets.{name}.raw is {raw!r}, which does not hold its raw inputs "
                        f"{[str(Path(data_dir) / r) for r in outside]}. Fix: set raw: "
                        f"{narrowest_raw(name, data_dir)}.")
