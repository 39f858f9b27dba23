"""The disk a profile's data needs: one line per copy, checked against free space before
anything is written.

Each copy of the data is a line of its own, in the folder it lands in: the archives in the
data directory, what preparing extracts from them, each dataset's prepared copy (the bytes
come from :func:`compendium.data.prepared.planned_copy`, the module that writes it) and room
for checkpoints. ``amcf data fetch`` checks the whole selection before it downloads;
``prepare@`` checks its own dataset before it extracts, and once more before it writes the
uint8 views (with the real image sizes then known). A line already on disk counts in the
total but not in what is still to be written. Lines are checked per filesystem: the archives
may be on another disk than ``build/``.

The registry states each archive's size and what preparing it writes. Where the archive at
hand has another size (a miniature served by the rehearsal, a newer release), the actual
size is used (a file on disk or in the mirror, or the Content-Length that ``$AMCF_DATA_URL``'s
server gives), and what is extracted and copied from it is scaled by the same ratio.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compendium.data.errors import DataError

if TYPE_CHECKING:  # annotations only: prepared.py is read lazily (it is imported by training)
    from compendium.data.info import DatasetInfo
    from compendium.data.prepared import Prepared

# checkpoints: the runs in progress (a ResNet-50 pair with momentum is 0.3-0.45 GB), the
# CIFAR-100 source with its copy in DVC's cache, the pruned finished runs
WORK_BYTES = {"embedded": 200_000_000, "paper": 3_000_000_000}


@dataclass(frozen=True)
class Line:
    """One copy: what it is, whose, where it goes and about how many bytes it takes."""

    what: str
    dataset: str
    path: Path
    bytes: int
    present: bool = False  # already on disk: nothing more to write


@dataclass
class Plan:
    lines: list[Line] = field(default_factory=list)
    unsized: int = 0  # small files whose size no registry entry states

    def add(self, line: Line) -> None:
        """Add ``line`` unless a line already stands for the same path (caltech256-30 and
        -60 share one extraction; two datasets may share an archive)."""
        key = os.path.normpath(line.path)
        if all(os.path.normpath(other.path) != key for other in self.lines):
            self.lines.append(line)

    @property
    def total(self) -> int:
        return sum(line.bytes for line in self.lines)

    @property
    def to_write(self) -> int:
        return sum(line.bytes for line in self.lines if not line.present)

    def table(self) -> str:
        """The plan as aligned text, one line per copy, and its totals."""
        rows = [(line.what, line.dataset, _gb(line.bytes), str(line.path)
                 + ("  (on disk)" if line.present else "")) for line in self.lines]
        widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
        out = [f"  {w:<{widths[0]}}  {d:<{widths[1]}}  {b:>{widths[2]}}  {p}"
               for w, d, b, p in rows]
        out.append(f"  about {_gb(self.total)} in all, {_gb(self.to_write)} still to write"
                   + (f" ({self.unsized} small files not counted)" if self.unsized else ""))
        return "\n".join(out)

    def check(self, who: str, fix: str) -> None:
        """Raise a :class:`DataError` when what is still to be written exceeds the free space
        of a filesystem it goes to; the message names the shortfall and the folders."""
        for anchor, lines in _by_filesystem(line for line in self.lines if not line.present):
            need = sum(line.bytes for line in lines)
            free = shutil.disk_usage(anchor).free
            if need <= free:
                continue
            listed = "; ".join(_summary(lines))
            raise DataError(f"{who} needs about {_gb(need)} more on the disk that holds "
                            f"{_common(anchor, lines)} ({listed}), which has {_gb(free)} "
                            f"free: about {_gb(need - free)} short. Fix: {fix}")


def _summary(lines: list[Line], most: int = 4) -> list[str]:
    """Each line (a few), or the lines summed by kind, each kind with its common folder."""
    kinds: dict[str, list[Line]] = {}
    for line in lines:
        kinds.setdefault(line.what if len(lines) <= most else line.what.split(" (")[0],
                         []).append(line)
    out = []
    for kind, group in kinds.items():
        if len(group) == 1:
            line = group[0]
            out.append(f"{_gb(line.bytes)} {line.what}"
                       + (f" of {line.dataset}" if line.dataset else "") + f" in {line.path}")
        else:
            out.append(f"{_gb(sum(x.bytes for x in group))}: {len(group)} "
                       f"{_PLURAL.get(kind, kind)} in {_common(group[0].path, group)}")
    return out


_PLURAL = {"archive": "archives", "extracted": "extracted folders",
           "uint8 views": "folders of uint8 views", "uint8 tensors": "tensor files"}


def _gb(n: float) -> str:
    """Bytes for people: GB from 1 GB on, MB below (a miniature's plan is all MBs)."""
    return f"{n / 1e9:.1f} GB" if n >= 0.95e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 \
        else f"{n / 1e3:.0f} kB"


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent: where a filesystem can be asked."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _by_filesystem(lines: Iterable[Line]) -> list[tuple[Path, list[Line]]]:
    """The lines grouped by the filesystem they go to, each with an existing folder on it."""
    groups: dict[int, tuple[Path, list[Line]]] = {}
    for line in lines:
        anchor = _existing(line.path)
        groups.setdefault(anchor.stat().st_dev, (anchor, []))[1].append(line)
    return list(groups.values())


def _common(anchor: Path, lines: list[Line]) -> Path:
    """The deepest folder that holds every line of a group (for the message)."""
    try:
        common = os.path.commonpath([os.path.abspath(line.path) for line in lines])
    except ValueError:
        return anchor
    inside = os.path.relpath(common)  # as the lines name it, when under the current folder
    return Path(common if inside.startswith("..") else inside)


def _remote(files: Iterable) -> list:
    """The remote files (RemoteFile) among fetchables."""
    return [item for item in files if hasattr(item, "urls") and hasattr(item, "size")]


def archive_size(item, ctx) -> int | None:
    """The bytes of a remote file: on disk, in the mirror, as the base URL's server states
    them, or (for the official hosts) as the registry does."""
    for local in (ctx.dest(item.path), ctx.mirror_file(item.path)):
        if local is not None and local.is_file():
            return local.stat().st_size
    if ctx.base_url:
        return _content_length(f"{ctx.base_url}/{item.path}") or item.size
    return item.size


def _content_length(url: str) -> int | None:
    import requests

    try:
        response = requests.head(url, timeout=10, allow_redirects=True)
        length = response.headers.get("Content-Length", "")
        return int(length) if response.ok and length.isdigit() else None
    except requests.RequestException:
        return None


def archive_lines(plan: Plan, files: Iterable, ctx, sizes: dict[str, int | None]) -> None:
    """The remote files of known size, in the data directory (``sizes``: by path)."""
    for item in _remote(files):
        size = sizes.get(item.path)
        if size is None:
            plan.unsized += 1
            continue
        dest = ctx.dest(item.path)
        plan.add(Line("archive", "", dest, size, present=dest.is_file()))


def _scale(info: DatasetInfo, sizes: dict[str, int | None]) -> float:
    """Actual over stated bytes of the dataset's archives (1 when any is unknown)."""
    stated = [(item.size, sizes.get(item.path)) for item in _remote(info.files) if item.size]
    if not stated or any(actual is None for _, actual in stated):
        return 1.0
    return sum(actual for _, actual in stated) / sum(size for size, _ in stated)


def dataset_lines(plan: Plan, info: DatasetInfo, out_root: Path, scale: float = 1.0) -> None:
    """What preparing ``info`` writes under ``out_root``: each extracted folder and its
    prepared copy (registry estimates times ``scale``; nothing for a dataset without a
    :class:`DiskShape`)."""
    from compendium.data.prepared import planned_copy

    shape = info.disk
    if shape is None:
        return
    folder = out_root / info.name
    prepared = (folder / "info.json").is_file()
    for rel, size in shape.extracted:
        path = Path(os.path.normpath(folder / rel))
        plan.add(Line("extracted", info.name, path, round(size * scale),
                      present=path.exists()))
    for what, path, size in planned_copy(shape, folder):
        plan.add(Line(what, info.name, path, round(size * scale),
                      present=prepared and path.exists()))


def work_line(plan: Plan, profile: str, build: Path) -> None:
    size = WORK_BYTES.get(profile, 0)
    if size:
        plan.add(Line("checkpoints", "", build / "work", size))


def fetch_plan(files: Iterable, infos: Iterable[DatasetInfo], profile: str, ctx,
               out_root: Path = Path("build/data"), build: Path = Path("build")) -> Plan:
    """Everything the selection will put on disk: archives (into ``ctx.data_dir``),
    extractions, prepared copies, checkpoints."""
    files, infos = list(files), list(infos)
    items = _remote([*files, *(f for info in infos for f in info.files)])
    sizes = {item.path: archive_size(item, ctx) for item in items}
    plan = Plan()
    archive_lines(plan, files, ctx, sizes)
    for info in infos:
        dataset_lines(plan, info, out_root, _scale(info, sizes))
    work_line(plan, profile, build)
    return plan


def prepare_plan(info: DatasetInfo, data_dir: Path, out_root: Path) -> Plan:
    """What ``prepare@<name>`` writes: its extraction (unless another dataset made it) and
    its prepared copy, scaled to the archives in ``data_dir``."""
    sizes = {}
    for item in _remote(info.files):
        path = data_dir / item.path
        sizes[item.path] = path.stat().st_size if path.is_file() else item.size
    plan = Plan()
    dataset_lines(plan, info, out_root, _scale(info, sizes))
    return plan


MOVE_BUILD = ("free space there, or put build/ on a larger disk (a symbolic link build -> "
              "/larger/disk/build works), then run it again")


def check_copy(prep: Prepared, out_dir: Path, name: str) -> None:
    """Before the uint8 views of ``prep`` are written into ``out_dir``: their bytes from the
    images' real sizes (as decoded when they were checked), not the registry's estimate."""
    from compendium.data.prepared import PAPER_SIZES
    from compendium.data.views import DIR, stored_bytes

    if prep.transform != "paper" or prep.root is None or prep.images is not None:
        return
    used = prep.used()
    sizes = used.image_sizes or {}
    resize = used.meta.get("resize", PAPER_SIZES["resize"])
    size = used.meta.get("image_size", PAPER_SIZES["image_size"])
    need = sum(stored_bytes(*(sizes.get(i) or _header_size(used.root / i)), str(split),
                            resize=resize, size=size)
               for i, split in zip(used.ids, used.split, strict=True))
    dest = out_dir / DIR
    have = sum(f.stat().st_size for f in dest.iterdir()) if dest.is_dir() else 0
    Plan([Line(f"uint8 views ({len(used.ids)} images)", name, dest, max(0, need - have))]
         ).check(f"preparing {name}", MOVE_BUILD)


def _header_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:  # the header only
        return img.size
