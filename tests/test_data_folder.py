"""Users' own ImageFolder data as a dataset, configured by a few lines of YAML."""

import json
from pathlib import Path

import pytest
from data_support import image_bytes

from amcf.datasets import BatchAugment, TensorImageDataset
from amcf.feed import DeviceFeed
from compendium.cli import main
from compendium.data.errors import DataError
from compendium.data.folder import load_entries, prepare_folder
from compendium.data.prepared import load_splits, read_info
from compendium.data.transforms import FileImageDataset

EXAMPLE = """\
datasets:
  - name: my-shapes
    kind: folder
    path: {path}
    image_size: 28
    channels: 1
"""


def _folder(root: Path, classes=("circle", "square", "star"), n=20, sub="") -> Path:
    for c in classes:
        d = root / sub / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (d / f"{i:03d}.png").write_bytes(image_bytes(i, fmt="PNG", size=40))
    return root


def test_example_config_without_split_folders(tmp_path):
    root = _folder(tmp_path / "shapes")
    params = tmp_path / "params.yaml"
    params.write_text(EXAMPLE.format(path=root))
    [entry] = load_entries(params)
    prepare_folder(entry, tmp_path / "out")
    splits = load_splits("my-shapes", tmp_path / "out")
    # per class of 20: 6 test (0.3), 3 val (0.2 of 14, rounded), 11 train
    assert (len(splits.train), len(splits.val), len(splits.test)) == (33, 9, 18)
    assert splits.classes == ["circle", "square", "star"]
    assert isinstance(splits.train, TensorImageDataset)
    assert splits.train.augment == BatchAugment(pad=2, flip=False)
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert "my-shapes" in (tmp_path / "out/my-shapes/card.md").read_text()


def test_train_test_folders_are_kept_and_val_carved_from_train(tmp_path):
    root = _folder(tmp_path / "d", n=10, sub="train")
    _folder(root, n=4, sub="test")
    [entry] = load_entries([{"name": "d", "kind": "folder", "path": str(root),
                             "channels": 3, "image_size": 16, "val_fraction": 0.3}])
    prepare_folder(entry, tmp_path / "out")
    info = read_info("d", tmp_path / "out")
    assert info["counts"] == {"train": 21, "val": 9, "test": 12}
    manifest = (tmp_path / "out/d/manifest.csv").read_text().splitlines()[1:]
    assert all(row.endswith(",test") == ("test/" in row) for row in manifest)
    assert load_splits("d", tmp_path / "out").train.images.shape[1:] == (3, 16, 16)


def test_files_mode_uses_the_paper_recipe(tmp_path):
    root = _folder(tmp_path / "f", n=10)
    [entry] = load_entries([{"name": "f", "kind": "folder", "path": str(root),
                             "mode": "files"}])
    prepare_folder(entry, tmp_path / "out")
    splits = load_splits("f", tmp_path / "out")
    assert isinstance(splits.train, DeviceFeed) and splits.train.train
    assert splits.train[0][0].shape == (3, 224, 224)
    # at other sizes than those prepared, the original files through PIL
    other = load_splits("f", tmp_path / "out", image_size=32, resize=40)
    assert isinstance(other.test, FileImageDataset) and other.test[0][0].shape == (3, 32, 32)


def test_bad_entries_and_images_fail_with_the_fix(tmp_path):
    with pytest.raises(DataError, match="image_size"):
        load_entries([{"name": "x", "kind": "folder", "path": "p", "image_size": 4}])
    with pytest.raises(DataError, match="invalid"):
        load_entries([{"name": "x", "kind": "folder", "path": "p", "colour": True}])
    with pytest.raises(DataError, match="does not exist"):
        prepare_folder(load_entries([{"name": "x", "kind": "folder",
                                      "path": str(tmp_path / "none")}])[0], tmp_path / "o")
    root = _folder(tmp_path / "bad", n=10)
    (root / "star/007.png").write_bytes(b"\x89PNG garbage")
    [entry] = load_entries([{"name": "bad", "kind": "folder", "path": str(root)}])
    with pytest.raises(DataError, match=r"unreadable image .*star/007.png"):
        prepare_folder(entry, tmp_path / "o")


def test_cli_prepares_folder_entries(tmp_path, capsys):
    root = _folder(tmp_path / "shapes", n=10)
    params = tmp_path / "params.yaml"
    params.write_text(EXAMPLE.format(path=root))
    out, summaries = tmp_path / "out", tmp_path / "results"
    assert main(["data", "prepare", "--params", str(params), "--only", "my-shapes",
                 "--out", str(out), "--results", str(summaries)]) == 0
    assert read_info("my-shapes", out)["num_classes"] == 3
    # the prepare@ stage's own function: the committed summary too
    assert json.loads((summaries / "my-shapes" / "splits.json").read_text())["classes"] == 3
    assert {"card.md", "samples.png", "samples.pdf"} <= {
        p.name for p in (summaries / "my-shapes").iterdir()}
    assert main(["data", "list"]) == 0
    assert "omniglot-small" in capsys.readouterr().out
