"""Mistakes a user plausibly makes, each stopped early with a message naming problem and fix.

Every case runs in its own folder that already holds an earlier result; after the failure
that result must be byte-for-byte unchanged and no temporary file may be left behind.
``python tests/test_bad_input.py`` prints the table: case, message, seconds to fail.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from amcf.io import write_json
from amcf.models import SourceSpec, build_model, save_checkpoint
from amcf.models.build import build_frozen
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from amcf.train.state import load_resume_state
from compendium.data.fetch import FetchContext, check_inputs
from compendium.data.folder import FolderDataset, prepare_folder
from compendium.data.prepared import load_splits
from compendium.data.registry import get_info
from compendium.params import load_params
from compendium.pipeline.notebook import parse_flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from conftest import SmallCNN, _digits_splits  # noqa: E402

EARLIER = "results/earlier/metrics.json"
NOTEBOOK_DEFAULTS = {"target": "digits", "seeds": [0], "lam": 0.2, "scheme": None,
                     "train": {"epochs": 2, "lr": 0.01}}


# ---- helpers ---------------------------------------------------------------------------------
def _params(tmp: Path, edit: Callable[[dict], None], text: str | None = None) -> Path:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(tree)
    path = tmp / "params.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(tree))
    return load_params(path)


def _tiny_checkpoint(tmp: Path, arch: str = "amcf_resnet_tiny", name: str = "src.pt") -> Path:
    torch.manual_seed(0)
    model = build_model(SourceSpec(name="s", arch=arch, weights=None), 10, in_chans=1)
    path = tmp / name
    save_checkpoint(model, path, arch=arch, classes=[str(i) for i in range(10)], in_chans=1)
    return path


def _folder(tmp: Path, per_class: dict[str, int]) -> Path:
    root = tmp / "images"
    rng = np.random.default_rng(0)
    for cls, n in per_class.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 255, (12, 12), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return root


def _prepare(tmp: Path, root: Path) -> None:
    prepare_folder(FolderDataset(name="mine", kind="folder", path=root), tmp / "build")


class _Digits:
    splits = None

    @classmethod
    def get(cls):
        if cls.splits is None:
            cls.splits = _digits_splits()
        return cls.splits


# ---- the cases -------------------------------------------------------------------------------
def misspelled_key(tmp):
    _params(tmp, lambda t: t["final"]["train"].update({"epoch": 3}))


def mistyped_value(tmp):
    _params(tmp, lambda t: t["amcf"].update({"lam": "0,2"}))


def empty_seed_list(tmp):
    _params(tmp, lambda t: t.update({"seeds": []}))


def empty_lambda_list(tmp):
    _params(tmp, lambda t: t["ablations"].update({"lams": []}))


def unknown_dataset(tmp):
    _params(tmp, lambda t: t["datasets"].update({"omniglott": {"folder": None, "raw": "data"}}))


def unknown_architecture(tmp):
    _params(tmp, lambda t: t["amcf"]["sources"]["mnist"].update({"arch": "resnet5O"}))


def missing_weights_file(tmp):
    _params(tmp, lambda t: t["amcf"]["sources"]["mnist"].update(
        {"weights": "data/pretrained/cifar10-resnet2O.th"}))


def weights_outside_the_deps(tmp):
    path = _tiny_checkpoint(tmp)
    _params(tmp, lambda t: t["amcf"]["sources"]["mnist"].update({"weights": str(path)}))


def missing_image_folder(tmp):
    _params(tmp, lambda t: t["datasets"].update(
        {"greek": {"folder": {"path": str(tmp / "no")}, "raw": str(tmp / "no")}}))


def unknown_baseline(tmp):
    _params(tmp, lambda t: t["baselines"].update({"methods": ["finetune", "l2-sp"]}))


def notebook_flag_not_a_number(tmp):
    parse_flags(["--lam", "abc"], NOTEBOOK_DEFAULTS)


def notebook_flag_misspelled(tmp):
    parse_flags(["--train.epochs", "3", "--seed", "1"], NOTEBOOK_DEFAULTS)


def truncated_checkpoint(tmp):
    path = _tiny_checkpoint(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    build_model(SourceSpec(name="s", arch="amcf_resnet_tiny", weights=str(path)), 10)


def foreign_checkpoint(tmp):
    path = tmp / "notes.pt"
    path.write_text("these are my notes, not weights\n")
    build_model(SourceSpec(name="s", arch="amcf_resnet_tiny", weights=str(path)), 10)


def checkpoint_of_another_arch(tmp):
    path = _tiny_checkpoint(tmp)
    build_model(SourceSpec(name="s", arch="cifar_resnet20", weights=str(path)), 10)


def corrupt_image_in_folder(tmp):
    root = _folder(tmp, {"a": 10, "b": 10})
    (root / "a" / "3.png").write_bytes((root / "a" / "3.png").read_bytes()[:40])
    _prepare(tmp, root)


def empty_image_file(tmp):
    root = _folder(tmp, {"a": 10, "b": 10})
    (root / "b" / "0.png").write_bytes(b"")
    _prepare(tmp, root)


def non_image_file(tmp):
    root = _folder(tmp, {"a": 10, "b": 10})
    (root / "a" / "readme.jpg").write_text("not a picture")
    _prepare(tmp, root)


def class_with_one_image(tmp):
    _prepare(tmp, _folder(tmp, {"a": 10, "b": 10, "lonely": 1}))


def corrupt_raw_file(tmp):
    data = tmp / "data"
    # fetched here, not copied from data/: a clean clone has no data/ before `make reproduce`
    for file in get_info("digits").files:
        file.fetch(FetchContext(data))
    raw = data / "digits" / "digits.csv.gz"
    raw.write_bytes(raw.read_bytes()[:-100])
    check_inputs(get_info("digits").files, data, "digits")


def empty_mirror_offline(tmp):
    (tmp / "mirror").mkdir()
    ctx = FetchContext(tmp / "data", tmp / "mirror")
    offline = mock.patch("pooch.retrieve", side_effect=ConnectionError("network unreachable"))
    with offline:
        get_info("omniglot-small").files[0].fetch(ctx)


def dataset_not_prepared(tmp):
    load_splits("digits", tmp / "build" / "data")


def scheme_out_of_range(tmp):
    weights = _tiny_checkpoint(tmp)
    scheme = parse_flags(["--scheme", "[99, 0]"], NOTEBOOK_DEFAULTS)["scheme"]
    sources = [SourceSpec(name=n, arch="amcf_resnet_tiny", weights=str(weights)) for n in "ab"]
    build_frozen(sources, scheme, _Digits.get())


def nan_weights(tmp):
    model = SmallCNN()
    with torch.no_grad():
        model.conv1.weight.fill_(float("nan"))
    fit([model], _Digits.get(), TrainConfig(epochs=1, progress=False), out_dir=tmp / "run")


class _Exploding(MCLoss):
    def penalty(self, models):  # a regulariser weighted far too heavily
        return 1e6 * sum(p.abs().sum() for p in models[0].fc.parameters())


def exploding_loss(tmp):
    torch.manual_seed(0)
    fit([SmallCNN()], _Digits.get(), TrainConfig(epochs=1, progress=False), _Exploding(0.0),
        out_dir=tmp / "run")


def corrupt_training_checkpoint(tmp):
    path = tmp / "work" / "checkpoint.pt"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 killed while writing")
    load_resume_state(path)


def disk_full(tmp):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with mock.patch.object(Path, "write_text", full):
        write_json(tmp / EARLIER, {"test_acc": 0.0})


def read_only_results(tmp):
    denied = OSError(errno.EACCES, "Permission denied")
    with mock.patch("tempfile.mkstemp", side_effect=denied):  # root ignores chmod
        write_json(tmp / EARLIER, {"test_acc": 0.0})


def two_dvc_repro_at_once(tmp):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1")
    (tmp / "dvc.yaml").write_text("stages:\n  slow:\n    cmd: sleep 20 && echo done > out\n"
                                  "    outs: [out]\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp, env=env, check=True)
    first = subprocess.Popen(["dvc", "repro"], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not (tmp / ".dvc" / "tmp" / "rwlock").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(["dvc", "repro"], cwd=tmp, env=env, capture_output=True,
                                text=True)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # dvc and the stage's shell
        first.wait()
    if second.returncode != 0:
        raise RuntimeError(second.stderr.strip())


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path], None]
    problem: str  # regex: the message names the problem ...
    fix: str  # ... and the fix


CASES = [
    Case("misspelled key in params", misspelled_key, r"final\.train\.epoch: unknown key",
         r"Fix: correct the keys"),
    Case("mistyped value in params", mistyped_value, r"amcf\.lam: .*valid number",
         r"Fix: correct the keys and values"),
    Case("empty list: seeds: []", empty_seed_list, r"empty list.*seeds", r"at least one"),
    Case("empty list: ablations.lams: []", empty_lambda_list, r"ablations\.lams",
         r"at least one value"),
    Case("unknown dataset", unknown_dataset, r"unknown dataset 'omniglott'.*omniglot-small",
         r"folder: \{path: DIR\}"),
    Case("unknown architecture", unknown_architecture, r"amcf\.sources\.mnist.*resnet5O",
         r"timm\.list_models"),
    Case("missing weights file", missing_weights_file,
         r"amcf\.sources\.mnist\.weights: .*does not exist", r"fix the path"),
    Case("weights outside the stages' deps", weights_outside_the_deps,
         r"amcf\.sources\.mnist\.weights: .*outside", r"copy it under data/"),
    Case("folder dataset path missing", missing_image_folder,
         r"datasets\.greek\.folder\.path", r"point it at a folder"),
    Case("unknown baseline method", unknown_baseline, r"baselines\.methods\.1",
         r"'childtune-f'"),
    Case("notebook flag of the wrong type", notebook_flag_not_a_number, r"--lam 'abc'",
         r"not a number.*fix the value"),
    Case("notebook flag misspelled", notebook_flag_misspelled, r"--seed is not a parameter",
         r"seeds.*fix the key"),
    Case("truncated checkpoint", truncated_checkpoint, r"cannot read weights file",
         r"corrupt or not a weights file"),
    Case("foreign file as checkpoint", foreign_checkpoint, r"notes\.pt",
         r"not a weights file|Expected"),
    Case("checkpoint of another architecture", checkpoint_of_another_arch,
         r"holds a 'amcf_resnet_tiny' model", r"set arch='amcf_resnet_tiny'"),
    Case("corrupt image in a folder dataset", corrupt_image_in_folder,
         r"unreadable image .*3\.png", r"remove the file"),
    Case("empty image file", empty_image_file, r"unreadable image .*0\.png",
         r"remove the file"),
    Case("non-image file named .jpg", non_image_file, r"unreadable image .*readme\.jpg",
         r"remove the file"),
    Case("class with one image", class_with_one_image, r"class 'lonely' has 1 image",
         r"add images|remove that class"),
    Case("corrupt raw file in data/", corrupt_raw_file, r"checksum mismatch.*digits\.csv\.gz",
         r"amcf data fetch --only digits"),
    Case("empty mirror while offline", empty_mirror_offline,
         r"cannot fetch omniglot/.*mirror has no", r"put the file at"),
    Case("dataset not prepared", dataset_not_prepared, r"'digits' is not prepared",
         r"amcf data prepare --only digits"),
    Case("out-of-range scheme", scheme_out_of_range, r"cannot freeze k=99 layers",
         r"k must be in 0\.\.\d+"),
    Case("NaN in the weights (NaN loss)", nan_weights, r"diverged at epoch 1.*nan",
         r"lower lr|penalty"),
    Case("loss exploding, finite", exploding_loss, r"diverged at epoch 1.*chance-level",
         r"lower lr|penalty"),
    Case("corrupt training checkpoint", corrupt_training_checkpoint,
         r"cannot read the training checkpoint", r"delete it"),
    Case("disk full", disk_full, r"cannot write .*earlier/metrics\.json",
         r"disk holding it is full: free space"),
    Case("read-only results folder", read_only_results, r"cannot write .*metrics\.json",
         r"make the folder writable"),
    Case("two dvc repro at once", two_dvc_repro_at_once,
         r"is busy, it is being blocked by.*dvc repro", r"no processes with such PIDs"),
]


def _fail(case: Case, tmp: Path) -> tuple[str, float]:
    """Run a case in ``tmp`` beside an earlier result; return its message and seconds."""
    earlier = tmp / EARLIER
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_text('{"test_acc": 0.5}\n')
    start = time.perf_counter()
    try:
        case.run(tmp)
    except Exception as err:  # the point: every kind of mistake raises
        message = str(err)
    else:
        raise AssertionError(f"{case.name}: no error")
    seconds = time.perf_counter() - start
    assert earlier.read_text() == '{"test_acc": 0.5}\n', "an earlier result was touched"
    left = [p for p in tmp.rglob("*.tmp") if ".dvc" not in p.parts]
    assert not left, f"half-written files left: {left}"
    return message, seconds


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_mistake_fails_early_and_clearly(case, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # params checks resolve paths from the repository root
    message, _ = _fail(case, tmp_path)
    assert re.search(case.problem, message, re.S), message
    assert re.search(case.fix, message, re.S), message


def test_small_numbers_in_params_are_numbers(tmp_path, monkeypatch):
    """YAML 1.1 reads 1e-5 as text; params check and the notebook runner read a number."""
    monkeypatch.chdir(ROOT)
    params = _params(tmp_path, lambda t: None, (ROOT / "params.yaml").read_text()
                     .replace("amcf-dml: {lam: 1.0,", "amcf-dml: {lam: 1e-5,"))
    assert params.ablations.options["amcf-dml"]["lam"] == 1e-5
    assert parse_flags(["--lam", "1e-05"], NOTEBOOK_DEFAULTS) == {"lam": 1e-05}


def test_a_class_missing_from_a_split_shows_as_zero_on_the_card():
    from compendium.data.cards import per_class_counts
    from compendium.data.prepared import Prepared

    prep = Prepared(classes=["a", "b"], labels=np.array([0, 0, 1, 0]), ids=list("wxyz"),
                    split=np.array(["train", "test", "train", "val"], dtype=object))
    counts = per_class_counts(prep)
    assert counts["test"] == {"a": 1, "b": 0} and counts["val"] == {"a": 1, "b": 0}


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".metrics.json.{dead.pid}.abc123.tmp"
    stale.write_text("{half")
    live = tmp_path / f".metrics.json.{os.getpid()}.def456.tmp"
    live.write_text("{in progress")
    write_json(tmp_path / "metrics.json", {"ok": True})
    assert not stale.exists() and live.exists()


if __name__ == "__main__":
    os.chdir(ROOT)
    print("| case | message | seconds |\n|---|---|---|")
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            message, seconds = _fail(case, Path(tmp))
        one_line = " ".join(message.replace(str(ROOT), ".").split()).replace("|", "\\|")
        print(f"| {case.name} | {one_line} | {seconds:.2f} |")
