"""The paper datasets' real fetch-verify-extract-split code, on miniature archives built in
each dataset's own layout and served over HTTP from 127.0.0.1."""

import csv
import dataclasses
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from data_support import image_bytes, md5, serve, sha256

from amcf.feed import DeviceFeed
from compendium.data.commands import damaged_limit, prepare_dataset
from compendium.data.errors import DataError
from compendium.data.fetch import FetchContext, fetch_all
from compendium.data.prepared import load_splits, read_info
from compendium.data.registry import get_info
from scripts.rehearsal import miniatures


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _served(info, site: Path, url: str, hashes: dict[str, str | None]):
    """``info`` with every remote file pointed at the local server and the miniature's hash."""
    files = tuple(dataclasses.replace(f, urls=(f"{url}/{Path(f.path).name}",),
                                      known_hash=hashes[Path(f.path).name]) for f in info.files)
    return dataclasses.replace(info, files=files)


def _run(info, site, hashes, tmp_path):
    with serve(site) as url:
        served = _served(info, site, url, hashes)
        fetch_all(served.files, FetchContext(tmp_path / "data"))
    prepare_dataset(served, tmp_path / "data", tmp_path / "out")
    return load_splits(info.name, tmp_path / "out"), read_info(info.name, tmp_path / "out")


def _ids(tmp_path: Path, name: str, split: str) -> list[str]:
    """The raw image ids of one split, from the prepared dataset's manifest."""
    with open(tmp_path / "out" / name / "manifest.csv", newline="") as f:
        return [row["id"] for row in csv.DictReader(f) if row["split"] == split]


def _check_sample(splits):
    x, y = splits.train[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    xv, _ = splits.test[0]
    assert xv.shape == (3, 224, 224)


def test_cifar100(tmp_path):
    site = tmp_path / "site"
    rng = np.random.default_rng(0)
    names = [f"class{i:02d}" for i in range(100)]

    def part(n, labels):
        return pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                             b"fine_labels": labels,
                             b"filenames": [f"img_{i}.png".encode() for i in range(n)]})

    train_labels = [i % 5 for i in range(50)]
    _tar(site / "cifar-100-python.tar.gz", {
        "cifar-100-python/meta": pickle.dumps({b"fine_label_names": [n.encode() for n in names]}),
        "cifar-100-python/train": part(50, train_labels),
        "cifar-100-python/test": part(15, [i % 5 for i in range(15)]),
    }, "w:gz")
    info = get_info("cifar100")
    splits, meta = _run(info, site, {"cifar-100-python.tar.gz":
                                     "md5:" + md5(site / "cifar-100-python.tar.gz")}, tmp_path)
    assert meta["counts"] == {"train": 45, "val": 5, "test": 15}
    assert splits.num_classes == 100 and splits.classes[3] == "class03"
    _check_sample(splits)


def test_cifar100_refuses_code_in_pickles(tmp_path):
    site = tmp_path / "site"
    _tar(site / "cifar-100-python.tar.gz", {
        "cifar-100-python/meta": pickle.dumps({b"x": dataclasses.field}),
    }, "w:gz")
    info = get_info("cifar100")
    with pytest.raises(DataError, match="refusing to load"):
        _run(info, site, {"cifar-100-python.tar.gz": None}, tmp_path)


def test_mit_indoor67(tmp_path):
    site = tmp_path / "site"
    classes = ["airport_inside", "bar", "kitchen"]
    members, train, test = {}, [], []
    for c in classes:
        for i in range(12):
            rel = f"{c}/{c}_{i}.jpg"
            members[f"Images/{rel}"] = image_bytes(i)
            (train if i < 10 else test).append(rel)
    _tar(site / "indoorCVPR_09.tar", members)
    (site / "TrainImages.txt").write_text("\n".join(train) + "\n")
    (site / "TestImages.txt").write_text("\n".join(test) + "\n")
    splits, meta = _run(get_info("mit-indoor67"), site, {n: None for n in (
        "indoorCVPR_09.tar", "TrainImages.txt", "TestImages.txt")}, tmp_path)
    assert meta["counts"] == {"train": 27, "val": 3, "test": 6}
    assert splits.classes == classes
    assert isinstance(splits.train, DeviceFeed)
    assert sorted(_ids(tmp_path, "mit-indoor67", "test")) == sorted(f"Images/{t}" for t in test)
    _check_sample(splits)


def _cell(strings):
    arr = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        arr[i, 0] = np.array([s])
    return arr


def test_stanford_dogs(tmp_path):
    site = tmp_path / "site"
    folders = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    members, lists = {}, {"train": [], "test": []}
    for label, folder in enumerate(folders):
        for i in range(14):
            rel = f"{folder}/{folder.split('-')[0]}_{i}.jpg"
            members[f"Images/{rel}"] = image_bytes(i + 20 * label)
            lists["train" if i < 10 else "test"].append((rel, label + 1))
    _tar(site / "images.tar", members)
    mats = {}
    for s, rows in lists.items():
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"file_list": _cell([r for r, _ in rows]),
                               "labels": np.array([[lab] for _, lab in rows])})
        mats[f"{s}_list.mat"] = buf.getvalue()
    _tar(site / "lists.tar", mats)
    hashes = {n: "md5:" + md5(site / n) for n in ("images.tar", "lists.tar")}
    splits, meta = _run(get_info("stanford-dogs"), site, hashes, tmp_path)
    assert meta["counts"] == {"train": 18, "val": 2, "test": 8}
    assert splits.classes == ["Chihuahua", "Japanese_spaniel"]
    assert splits.test.labels.tolist().count(1) == 4
    _check_sample(splits)


def test_fgvc_aircraft_variants_with_spaces(tmp_path):
    site = tmp_path / "site"
    variants = ["707-320", "Cessna 172", "A300B4"]
    base = "fgvc-aircraft-2013b/data"
    members = {f"{base}/variants.txt": ("\n".join(variants) + "\n").encode()}
    lines = {"train": [], "val": [], "test": []}
    k = 0
    for v in variants:
        for s, n in (("train", 3), ("val", 2), ("test", 2)):
            for _ in range(n):
                k += 1
                members[f"{base}/images/{1000000 + k}.jpg"] = image_bytes(k)
                lines[s].append(f"{1000000 + k} {v}")
    for s, rows in lines.items():
        members[f"{base}/images_variant_{s}.txt"] = ("\n".join(rows) + "\n").encode()
    _tar(site / "fgvc-aircraft-2013b.tar.gz", members, "w:gz")
    splits, meta = _run(get_info("fgvc-aircraft"), site,
                        {"fgvc-aircraft-2013b.tar.gz": sha256(site / "fgvc-aircraft-2013b.tar.gz")},
                        tmp_path)
    assert meta["counts"] == {"train": 9, "val": 6, "test": 6}
    assert splits.classes == variants
    assert splits.val.labels.tolist() == [0, 0, 1, 1, 2, 2]
    _check_sample(splits)


@pytest.mark.parametrize("n_train", [30, 60])
def test_caltech256_drops_clutter_and_keeps_n_per_class(tmp_path, n_train):
    site = tmp_path / "site"
    members = {}
    for folder, n in (("001.ak47", n_train + 4), ("002.american-flag", n_train + 7),
                      ("257.clutter", 5)):
        for i in range(n):
            name = f"256_ObjectCategories/{folder}/{folder[:3]}_{i:04d}.jpg"
            members[name] = image_bytes(i, size=8)
    _tar(site / "256_ObjectCategories.tar", members)
    info = get_info(f"caltech256-{n_train}")
    splits, meta = _run(info, site, {"256_ObjectCategories.tar":
                                     "md5:" + md5(site / "256_ObjectCategories.tar")}, tmp_path)
    val = n_train // 10
    assert meta["counts"] == {"train": 2 * (n_train - val), "val": 2 * val, "test": 4 + 7}
    assert splits.classes == ["ak47", "american-flag"]
    ids = _ids(tmp_path, info.name, "test") + _ids(tmp_path, info.name, "train")
    assert not any("clutter" in f for f in ids)
    _check_sample(splits)


@pytest.mark.parametrize("task", ["ucf101", "omniglot"])
def test_decathlon(tmp_path, task):
    site = tmp_path / "site"
    inner, ann = {}, {}
    for part, n in (("train", 10), ("val", 4)):
        images, annotations = [], []
        for c in (1, 2):
            for _ in range(n):
                k = len(images) + 1
                name = f"{task}/{part}/{c:04d}/{k:07d}.jpg"
                inner[name] = image_bytes(k, size=16)
                images.append({"id": k, "file_name": f"data/{name}", "width": 16, "height": 16})
                annotations.append({"id": k, "image_id": k, "category_id": 10 + c})
        ann[f"decathlon-1.0/annotations/{task}_{part}.json"] = json.dumps({
            "images": images, "annotations": annotations,
            "categories": [{"id": 11, "name": "first"}, {"id": 12, "name": "second"}]}).encode()
    inner_tar = _tar(tmp_path / "build" / f"{task}.tar", inner)
    _tar(site / "decathlon-1.0-data.tar.gz", {f"{task}.tar": inner_tar.read_bytes(),
                                              "other.tar": b"x" * 10}, "w:gz")
    _tar(site / "decathlon-1.0-devkit.tar.gz", ann, "w:gz")
    hashes = {n: sha256(site / n) for n in ("decathlon-1.0-data.tar.gz",
                                            "decathlon-1.0-devkit.tar.gz")}
    splits, meta = _run(get_info(f"decathlon-{task}"), site, hashes, tmp_path)
    assert meta["counts"] == {"train": 18, "val": 2, "test": 8}
    assert splits.classes == ["first", "second"]
    _check_sample(splits)


def test_truncated_archive_is_named_with_the_fix(tmp_path):
    site = tmp_path / "site"
    members = {f"Images/a/{i}.jpg": image_bytes(i) for i in range(4)}
    members.update({f"Images/b/{i}.jpg": image_bytes(i) for i in range(4)})
    full = _tar(tmp_path / "full.tar.gz", members, "w:gz").read_bytes()
    site.mkdir()
    (site / "indoorCVPR_09.tar").write_bytes(full[: len(full) // 2])
    (site / "TrainImages.txt").write_text("a/0.jpg\na/1.jpg\nb/0.jpg\nb/1.jpg\n")
    (site / "TestImages.txt").write_text("a/2.jpg\nb/2.jpg\n")
    with pytest.raises(DataError, match=r"indoorCVPR_09.tar is truncated or corrupt.*Fix: "
                                        r"delete it and run `amcf data fetch --only mit-indoor67`"):
        _run(get_info("mit-indoor67"), site, {n: None for n in (
            "indoorCVPR_09.tar", "TrainImages.txt", "TestImages.txt")}, tmp_path)
    assert not (tmp_path / "out/mit-indoor67/images").exists()  # nothing half-extracted


def _miniature_mit(site: Path, damaged: str | None = None) -> None:
    """The rehearsal's miniature MIT Indoor-67 under ``site``, with the image ``damaged``
    (a path under Images/) cut off halfway, as a truncated JPEG in a real archive is."""
    files = miniatures.mit_indoor67()
    with tarfile.open(fileobj=io.BytesIO(files["mit-indoor67/indoorCVPR_09.tar"])) as tf:
        members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    if damaged is not None:
        members[f"Images/{damaged}"] = members[f"Images/{damaged}"][:600]
    _tar(site / "indoorCVPR_09.tar", members)
    for name in ("TrainImages.txt", "TestImages.txt"):
        (site / name).write_bytes(files[f"mit-indoor67/{name}"])


_MIT = {n: None for n in ("indoorCVPR_09.tar", "TrainImages.txt", "TestImages.txt")}


def _manifest(out: Path) -> list[tuple[str, ...]]:
    rows = (out / "manifest.csv").read_text().splitlines()[1:]
    return [tuple(r.split(",")[1:]) for r in rows]  # id, label, class, split (no index)


def test_a_damaged_image_is_left_out_counted_and_named(tmp_path):
    bad = "kitchen/kitchen_0003.jpg"
    _miniature_mit(tmp_path / "clean" / "site")
    _miniature_mit(tmp_path / "damaged" / "site", damaged=bad)
    _, clean = _run(get_info("mit-indoor67"), tmp_path / "clean" / "site", _MIT,
                    tmp_path / "clean")
    _, meta = _run(get_info("mit-indoor67"), tmp_path / "damaged" / "site", _MIT,
                   tmp_path / "damaged")
    out_clean, out = tmp_path / "clean" / "out" / "mit-indoor67", tmp_path / "damaged" / "out" \
        / "mit-indoor67"
    rows = _manifest(out_clean)
    [lost] = [r for r in rows if r[0] == f"Images/{bad}"]
    assert _manifest(out) == [r for r in rows if r != lost]  # every other image: same split
    assert sum(meta["counts"].values()) == sum(clean["counts"].values()) - 1
    assert [d["id"] for d in meta["damaged_images"]] == [f"Images/{bad}"]
    assert "truncated" in meta["damaged_images"][0]["error"].lower()
    assert str(tmp_path) not in meta["damaged_images"][0]["error"]  # no machine's path
    card = (out / "card.md").read_text()
    assert "## Damaged images left out" in card
    assert f"- `Images/{bad}` (drawn into {lost[3]}): OSError: Truncated File Read" in card
    assert "Damaged" not in (out_clean / "card.md").read_text()
    assert "damaged_images" not in clean
    assert sum(len(np.load(f)) for f in (out / "views").glob("*.idx.npy")) == len(rows) - 1


def test_more_damaged_images_than_allowed_stop_prepare(tmp_path):
    _miniature_mit(tmp_path / "site", damaged="bakery/bakery_0001.jpg")
    with pytest.raises(DataError, match=r"mit-indoor67: 1 of its 30 images cannot be decoded, "
                                        r"more than the 0 it may leave out \(max_damaged is 0\)"
                                        r": Images/bakery/bakery_0001.jpg \(OSError: "
                                        r"Truncated File Read\)"
                                        r".*fetching again gives the same bytes.*"
                                        r"`max_damaged: 1` in datasets.mit-indoor67"):
        with serve(tmp_path / "site") as url:
            served = _served(get_info("mit-indoor67"), tmp_path / "site", url, _MIT)
            fetch_all(served.files, FetchContext(tmp_path / "data"))
        prepare_dataset(served, tmp_path / "data", tmp_path / "out", max_damaged=0)
    out = tmp_path / "out" / "mit-indoor67"
    assert not (out / "manifest.csv").exists() and not (out / "views").exists()


def test_the_default_limit_is_a_thousandth_of_the_images():
    assert [damaged_limit(None, n) for n in (30, 999, 2000, 29780)] == [1, 1, 2, 29]
    assert damaged_limit(0, 29780) == 0 and damaged_limit(50, 30) == 50
