"""Two few-shot targets from Lake et al.'s two "small background" Omniglot sets, one per set
with no alphabet in common: the paper's Omniglot in miniature, twice."""

from __future__ import annotations

import zipfile
from functools import partial
from pathlib import Path

import numpy as np
from PIL import ImageOps

from compendium.data.embedded.common import SEED
from compendium.data.errors import DataError
from compendium.data.fetch import RemoteFile
from compendium.data.images import fit_to_canvas, open_image, stack
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
ZIPS = (
    RemoteFile("omniglot/images_background_small1.zip", (_URL + "images_background_small1.zip",),
               "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    RemoteFile("omniglot/images_background_small2.zip", (_URL + "images_background_small2.zip",),
               "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
)
# Of each character's 20 drawings: test first (at least 500 test images per target, so a
# method's accuracy has a standard error of ~2 points), 2 for validation, and the rest a
# training pool that each seed draws its few shots from (targets.<name>.shots; fewshot.py)
PER_CLASS = {"omniglot-small": {"train": 8, "val": 2, "test": 10},
             "omniglot-small2": {"train": 7, "val": 2, "test": 11}}


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"archive {path} is truncated or corrupt ({exc}). Fix: delete it and "
                        "run `amcf data fetch --only omniglot-small`.") from exc
    if bad is not None:
        raise DataError(f"archive {path}: member {bad} fails its CRC check. Fix: delete the "
                        "archive and fetch it again.")
    return zf


def character_index(zips: list[tuple[str, zipfile.ZipFile]]) -> dict[str, list[tuple[int, str]]]:
    """'Alphabet/characterNN' -> [(zip index, member)], the first zip winning for alphabets
    that appear in both (Greek and Latin are in both small sets)."""
    index: dict[str, list[tuple[int, str]]] = {}
    owner: dict[str, int] = {}
    for z, (_, zf) in enumerate(zips):
        for member in sorted(zf.namelist()):
            parts = member.split("/")
            if len(parts) != 4 or not parts[3].endswith(".png"):
                continue
            alphabet = parts[1]
            if owner.setdefault(alphabet, z) != z:
                continue
            index.setdefault(f"{alphabet}/{parts[2]}", []).append((z, member))
    return index


def choose_characters(index: dict[str, list], chars_per_alphabet: int, zip_index: int,
                      seed: int = SEED) -> list[str]:
    """``chars_per_alphabet`` characters of every alphabet owned by zip ``zip_index``, drawn by
    a seeded generator."""
    rng = np.random.default_rng(seed)
    by_alphabet: dict[str, list[str]] = {}
    for key in sorted(index):
        if index[key][0][0] == zip_index:
            by_alphabet.setdefault(key.split("/")[0], []).append(key)
    chosen = []
    for alphabet in sorted(by_alphabet):
        chars = by_alphabet[alphabet]
        pick = rng.choice(len(chars), size=min(chars_per_alphabet, len(chars)), replace=False)
        chosen += [chars[i] for i in sorted(pick)]
    return chosen


def to_28(data: bytes, what: str) -> np.ndarray:
    """105x105 black-on-white strokes -> 28x28 white-on-black (antialiased)."""
    img = ImageOps.invert(open_image(data, what=what).convert("L"))
    return fit_to_canvas(img, inner=28)


def prepare_background(name: str, zip_index: int, chars_per_alphabet: int,
                       data_dir: Path, work_dir: Path) -> Prepared:
    """One target from the alphabets of one small background set (the alphabets both sets
    hold, Greek and Latin, belong to the first), ``chars_per_alphabet`` characters each."""
    zips = [(f.path, open_zip(data_dir / f.path)) for f in ZIPS]
    index = character_index(zips)
    classes = choose_characters(index, chars_per_alphabet, zip_index)
    images, labels, ids = [], [], []
    for label, key in enumerate(classes):
        for z, member in index[key]:
            zip_name, zf = zips[z]
            what = f"{member} in {data_dir / zip_name}"
            images.append(to_28(zf.read(member), what))
            labels.append(label)
            ids.append(f"{Path(zip_name).name}:{member}")
    labels = np.array(labels)
    split = stratified_split(labels, seed=SEED, classes=classes, dataset=name,
                             **PER_CLASS[name])
    return Prepared(classes=classes, labels=labels, ids=ids, split=split, images=stack(images))


_LICENCE = "MIT (Brenden Lake, github.com/brendenlake/omniglot)"
_CITATION = ("Lake, B. M., Salakhutdinov, R. and Tenenbaum, J. B. (2015). Human-level concept "
             "learning through probabilistic program induction. Science 350(6266), 1332-1338.")
_SPLIT_REASONING = (
    "Of each character's 20 drawings (20 drawers), test comes first (10 or 11 per character, "
    "at least 500 test images, a standard error of about 2 points), then 2 for validation, "
    "and the rest (8 or 7) is a pool from which every seed draws its five shots afresh: "
    "five shots keep the task in the informative range (neither at ceiling nor at floor), "
    "and the seeds' spread includes which drawings one happened to train on.")


def _sizes(name: str, classes: int) -> dict[str, int]:
    return {split: classes * n for split, n in PER_CLASS[name].items()}


INFO = register(DatasetInfo(
    name="omniglot-small", role="target", profile="embedded", classes=50, files=ZIPS,
    prepare=partial(prepare_background, "omniglot-small", 0, 10),
    title="Handwritten characters: Omniglot images_background_small1 (Balinese, Early "
          "Aramaic, Greek, Korean, Latin), 10 characters of each alphabet, inverted to white "
          "strokes on black.",
    licence=_LICENCE, citation=_CITATION,
    source="https://github.com/brendenlake/omniglot (python/images_background_small{1,2}.zip)",
    sizes=_sizes("omniglot-small", 50),
    reasoning="The first small background set holds 5 alphabets; ten characters of each "
              "(seeded choice) give 50 classes, a few-shot task like the paper's Omniglot but "
              "much smaller. " + _SPLIT_REASONING,
))

INFO_SMALL2 = register(DatasetInfo(
    name="omniglot-small2", role="target", profile="embedded", classes=48, files=ZIPS,
    prepare=partial(prepare_background, "omniglot-small2", 1, 16),
    title="Handwritten characters: Omniglot images_background_small2's own alphabets "
          "(Japanese katakana, Sanskrit, Tagalog), 16 characters of each, inverted to white "
          "strokes on black.",
    licence=_LICENCE, citation=_CITATION,
    source="https://github.com/brendenlake/omniglot (python/images_background_small{1,2}.zip)",
    sizes=_sizes("omniglot-small2", 48),
    reasoning="A second Omniglot target with no alphabet in common with omniglot-small: the "
              "second small background set without Greek and Latin (which the first also "
              "holds). Tagalog has 17 characters, so 16 of each alphabet (seeded choice) give "
              "48 classes. " + _SPLIT_REASONING,
))
