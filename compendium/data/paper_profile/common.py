"""Extraction, image checks and file-based :class:`Prepared` for the paper datasets."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image, UnidentifiedImageError

from compendium.data.errors import DataError
from compendium.data.prepared import Prepared
from compendium.data.transforms import IMAGENET_MEAN, IMAGENET_STD

SEED = 0
VAL_FRACTION = 0.1  # of the official training images, where no official val split exists
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


def _corrupt(archive: Path, exc: BaseException, dataset: str) -> DataError:
    return DataError(f"archive {archive} is truncated or corrupt ({type(exc).__name__}: {exc}). "
                     f"Fix: delete it and run `amcf data fetch --only {dataset}`.")


def extract(archive: Path, dest: Path, dataset: str,
            members: Callable[[str], bool] | None = None) -> Path:
    """Extract ``archive`` (tar of any compression, or zip) into ``dest``, all or nothing.

    The files land in a temporary folder beside ``dest`` that is renamed when extraction is
    complete, so an interrupted run leaves no half-extracted tree for the next run to trust.
    Two processes may ask for the same ``dest`` at once (caltech256-30 and -60 share one
    extraction): a lock beside ``dest`` lets one extract while the other waits and then uses
    the finished folder.
    """
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(dest.parent / f".{dest.name}.lock"):
        if dest.is_dir():  # extracted by the process that held the lock before us
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            try:
                _extract_all(archive, tmp, members)
            except _ARCHIVE_ERRORS as exc:
                raise _corrupt(archive, exc, dataset) from exc
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _extract_all(archive: Path, into: Path, members: Callable[[str], bool] | None) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into, [n for n in zf.namelist() if members is None or members(n)])
    else:
        with tarfile.open(archive, "r:*") as tf:
            picked = [m for m in tf if members is None or members(m.name)]
            tf.extractall(into, picked, filter="data")


def read_member(archive: Path, name: str, dataset: str) -> bytes:
    """One member's bytes from a tar archive."""
    try:
        with tarfile.open(archive, "r:*") as tf:
            f = tf.extractfile(name)
            if f is None:
                raise KeyError(name)
            return f.read()
    except KeyError as exc:
        raise DataError(f"archive {archive} has no member {name!r}; it is not the expected "
                        f"release. Fix: delete it and run `amcf data fetch --only {dataset}`."
                        ) from exc
    except _ARCHIVE_ERRORS as exc:
        raise _corrupt(archive, exc, dataset) from exc


def scan_images(root: Path, files: Sequence[str]) -> tuple[dict[str, tuple[int, int]],
                                                             dict[str, str]]:
    """Decode every image once: the (width, height) of each, and the error of each that
    cannot be decoded (a truncated or corrupt file), by relative path."""
    sizes, damaged = {}, {}
    for rel in files:
        try:
            with Image.open(root / rel) as img:
                img.load()
                sizes[rel] = img.size
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            # without this machine's folders: the error goes into the committed card
            damaged[rel] = f"{type(exc).__name__}: {exc}".replace(f"{root}/", "")
    return sizes, damaged


def check_images(root: Path, files: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Decode every image once, so that a bad file stops preparation, not training (your own
    folder: you can mend or remove the file); returns their sizes."""
    sizes, damaged = scan_images(root, files)
    if damaged:
        rel, error = next(iter(damaged.items()))
        raise DataError(f"unreadable image {root / rel}: {error}. Fix: mend or remove the "
                        "file, then prepare again.")
    return sizes


def file_prepared(root: Path, files: list[str], labels: Sequence[int], classes: list[str],
                  split: np.ndarray, meta: dict | None = None) -> Prepared:
    """A file-based dataset from a published archive. An image of a split that cannot be
    decoded is left out, after the split is drawn (so every other image keeps its split),
    and named in ``damaged_images``; prepare_dataset stops when there are too many."""
    sizes, damaged = scan_images(root, [f for f, s in zip(files, split, strict=True) if s])
    meta = dict(meta or {})
    if damaged:
        meta["damaged_images"] = [{"id": f, "split": str(s), "error": damaged[f]}
                                  for f, s in zip(files, split, strict=True) if f in damaged]
    keep = [i for i, f in enumerate(files) if f not in damaged]
    return Prepared(classes=classes, labels=np.asarray(labels, dtype=np.int64)[keep],
                    ids=[files[i] for i in keep], split=np.asarray(split, dtype=object)[keep],
                    root=root, transform="paper", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    meta=meta, image_sizes=sizes)
