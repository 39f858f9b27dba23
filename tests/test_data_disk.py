"""The disk plan: every copy of the data on a line of its own, sized from what the prepare
code writes, checked on the rehearsal's miniatures, and checked against free space before
anything is written."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from data_support import serve
from PIL import Image

from compendium.data import disk, views
from compendium.data.commands import prepare_dataset
from compendium.data.errors import DataError
from compendium.data.fetch import FetchContext, fetch_all
from compendium.data.folder import FolderDataset, prepare_folder
from compendium.data.pins import PINS_ENV
from compendium.data.prepared import read_info
from compendium.data.registry import get_info, names
from scripts.rehearsal.miniatures import build_site

ROOT = Path(__file__).resolve().parents[1]
_usage = namedtuple("usage", "total used free")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _paper_plan(root: Path, ctx: FetchContext | None = None) -> disk.Plan:
    infos = [get_info(n) for n in names("paper")]
    return disk.fetch_plan([f for info in infos for f in info.files], infos, "paper",
                           ctx or FetchContext(root / "downloads"), root / "build" / "data",
                           root / "build")


def _kind(line: disk.Line) -> str:
    return line.what.split(" (")[0]


def test_the_paper_plan_lists_every_copy(tmp_path):
    plan = _paper_plan(tmp_path)
    lines = {(_kind(line), line.dataset) for line in plan.lines}
    for name in names("paper"):
        copy = "uint8 tensors" if get_info(name).disk.kind == "tensor" else "uint8 views"
        assert (copy, name) in lines, name
        if get_info(name).disk.kind == "files":
            assert any(k == "extracted" and d in (name, "caltech256-30") for k, d in lines)
    # Caltech-256: extracted once for both datasets, but each keeps uint8 views of it all
    caltech = [line for line in plan.lines if "caltech256" in str(line.path)]
    assert sorted(_kind(line) for line in caltech) == ["archive", "extracted", "uint8 views",
                                                        "uint8 views"]
    by_kind = {}
    for line in plan.lines:
        by_kind[_kind(line)] = by_kind.get(_kind(line), 0) + line.bytes
    assert 7.5e9 < by_kind["archive"] < 8.5e9
    assert 7e9 < by_kind["extracted"] < 8e9
    assert by_kind["uint8 views"] > 15e9  # the largest part, which the plan once left out
    assert 45e9 < plan.total < 60e9
    assert plan.to_write == plan.total  # nothing of it on disk yet


def test_the_docs_quote_the_plan(tmp_path):
    total = f"about {round(_paper_plan(tmp_path).total / 1e9)} GB"
    for doc in ("docs/profiles.md", "docs/data.md", "profiles/paper.yaml"):
        assert total in " ".join((ROOT / doc).read_text(encoding="utf-8").split()), doc


def test_a_view_weighs_what_the_resize_gives():
    """Training images keep Resize(256)'s size (torchvision's rule), evaluation images are
    224-px centre crops; 24 index bytes each."""
    from torchvision.transforms import Resize

    for size in ((640, 427), (427, 640), (500, 375), (72, 72), (96, 72), (1500, 999)):
        w, h = Resize(256)(Image.new("RGB", size)).size
        assert views.stored_bytes(*size, "train") == w * h * 3 + views.INDEX_BYTES
        assert views.stored_bytes(*size, "test") == 224 * 224 * 3 + views.INDEX_BYTES


# ----------------------------------------------------------- the rehearsal's miniatures
@pytest.fixture(scope="module")
def miniatures(tmp_path_factory):
    """The rehearsal's miniature archives, served, fetched and prepared as the paper's;
    with the plan made before the fetch and the one made after."""
    root = tmp_path_factory.mktemp("disk")
    build_site(root / "site", root / "pins.lock")
    infos = [get_info(n) for n in names("paper")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PINS_ENV, str(root / "pins.lock"))
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        with serve(root / "site") as url:
            ctx = FetchContext(root / "downloads", base_url=url)
            before = _paper_plan(root, ctx)
            for info in infos:
                fetch_all(info.files, ctx)
        for info in infos:
            prepare_dataset(info, root / "downloads", root / "build" / "data", image_size=64)
        after = _paper_plan(root)
    return root, before, after


def test_the_plan_covers_what_prepare_writes(miniatures):
    """Every byte prepare writes lies in a folder of the plan (only manifests, cards and
    labels beside them): a new copy of the images cannot go unplanned."""
    root, before, _ = miniatures
    planned = [line.path for line in before.lines]
    written = [f for f in (root / "build" / "data").rglob("*") if f.is_file()]
    outside = [f for f in written if not any(f == p or p in f.parents for p in planned)]
    total = sum(f.stat().st_size for f in written)
    assert sum(f.stat().st_size for f in outside) < 0.01 * total, outside
    assert {f.name for f in outside if not f.name.endswith(".lock")} <= {
        "manifest.csv", "info.json", "card.md", "tensors.pt"}  # and the extraction locks
    for line in before.lines:
        if _kind(line) != "checkpoints":
            assert line.path.exists(), line


def test_the_plan_follows_the_archives_at_hand(miniatures):
    """Sizes of the served archives (not the real ones), and nothing left to write once
    fetched and prepared but the checkpoints."""
    root, before, after = miniatures
    for line in before.lines:
        if line.what == "archive":
            assert line.bytes == (root / "site" / line.path.relative_to(root / "downloads")
                                  ).stat().st_size
    assert before.total - disk.WORK_BYTES["paper"] < 1e9  # scaled down to the miniatures
    assert after.to_write == disk.WORK_BYTES["paper"]
    assert [line.what for line in after.lines if not line.present] == ["checkpoints"]


def test_the_views_are_as_large_as_planned_on_the_miniatures(miniatures):
    """The check before the copy (each image's size, split and the sizes prepared) predicts
    the views' bytes exactly; the registry's line counts every image at its training size,
    an upper bound."""
    root, _, _ = miniatures
    for name in names("paper"):
        info, folder = get_info(name), root / "build" / "data" / name
        if info.disk.kind != "files":
            continue
        meta = read_info(name, root / "build" / "data")
        stored = meta["stored"]
        rows = [r.split(",") for r in (folder / "manifest.csv").read_text().splitlines()[1:]]
        image_root = folder / meta["root"]
        predicted = 0
        for _, id_, _, _, split in rows:
            with Image.open(image_root / id_) as img:
                predicted += views.stored_bytes(*img.size, split, resize=stored["resize"],
                                                 size=stored["size"])
        pixels = sum(f.stat().st_size for f in (folder / views.DIR).glob("*.u8"))
        actual = pixels + views.INDEX_BYTES * len(rows)
        assert predicted == actual, name


def test_prepare_stops_before_writing_when_the_disk_is_short(miniatures, tmp_path,
                                                             monkeypatch):
    root, _, _ = miniatures
    monkeypatch.setattr(shutil, "disk_usage", lambda _: _usage(10**12, 0, 1000))
    with pytest.raises(DataError, match=r"prepare@mit-indoor67 needs about .* on the disk "
                                        r"that holds .*mit-indoor67 .*extracted .*images.*"
                                        r"uint8 views .*views.*, which has 1 kB free"
                                        r".* short. Fix: free space there, or put build/"):
        prepare_dataset(get_info("mit-indoor67"), root / "downloads", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing extracted, nothing written


def test_the_copy_is_checked_again_with_the_real_image_sizes(tmp_path, monkeypatch):
    """A folder of your own images in files mode: no registry estimate, the check before
    the copy sees each image's size."""
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / c / f"{i}.jpg")
    entry = FolderDataset(name="pets", kind="folder", path=tmp_path / "imgs", mode="files")
    least = 12 * views.stored_bytes(400, 300, "test")  # 224-px crops, the smaller form
    most = 12 * views.stored_bytes(400, 300, "train")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: _usage(10**12, 0, least - 10**5))
    with pytest.raises(DataError, match=r"preparing pets needs about \d+ MB more .*uint8 views "
                                        r"\(12 images\).*, which has 2 MB free"):
        prepare_folder(entry, tmp_path / "out")
    assert not (tmp_path / "out" / "pets" / views.DIR).exists()
    monkeypatch.setattr(shutil, "disk_usage", lambda _: _usage(10**12, 0, most + 10**5))
    prepare_folder(entry, tmp_path / "out")
    assert (tmp_path / "out" / "pets" / views.DIR / "train.u8").is_file()
