"""Omniglot-small: handwritten characters of the 8 distinct alphabets in Lake et al.'s two
"small background" sets: a few-shot target, the paper's Omniglot in miniature."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import ImageOps

from amcf.data.embedded.common import SEED
from amcf.data.errors import DataError
from amcf.data.fetch import RemoteFile
from amcf.data.images import fit_to_canvas, open_image, stack
from amcf.data.prepared import Prepared
from amcf.data.registry import DatasetInfo, register
from amcf.data.splits import stratified_split

_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
ZIPS = (
    RemoteFile("omniglot/images_background_small1.zip", (_URL + "images_background_small1.zip",),
               "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    RemoteFile("omniglot/images_background_small2.zip", (_URL + "images_background_small2.zip",),
               "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
)
CHARS_PER_ALPHABET = 5
PER_CLASS = {"train": 8, "val": 3, "test": 9}


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


def choose_characters(index: dict[str, list], seed: int = SEED) -> list[str]:
    """``CHARS_PER_ALPHABET`` characters of every alphabet, drawn by a seeded generator."""
    rng = np.random.default_rng(seed)
    by_alphabet: dict[str, list[str]] = {}
    for key in sorted(index):
        by_alphabet.setdefault(key.split("/")[0], []).append(key)
    chosen = []
    for alphabet in sorted(by_alphabet):
        chars = by_alphabet[alphabet]
        pick = rng.choice(len(chars), size=CHARS_PER_ALPHABET, replace=False)
        chosen += [chars[i] for i in sorted(pick)]
    return chosen


def to_28(data: bytes, what: str) -> np.ndarray:
    """105x105 black-on-white strokes -> 28x28 white-on-black (antialiased)."""
    img = ImageOps.invert(open_image(data, what=what).convert("L"))
    return fit_to_canvas(img, inner=28)


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    zips = [(f.path, open_zip(data_dir / f.path)) for f in ZIPS]
    index = character_index(zips)
    classes = choose_characters(index)
    images, labels, ids = [], [], []
    for label, key in enumerate(classes):
        for z, member in index[key]:
            name, zf = zips[z]
            what = f"{member} in {data_dir / name}"
            images.append(to_28(zf.read(member), what))
            labels.append(label)
            ids.append(f"{Path(name).name}:{member}")
    labels = np.array(labels)
    split = stratified_split(labels, seed=SEED, classes=classes, dataset="omniglot-small",
                             **PER_CLASS)
    return Prepared(classes=classes, labels=labels, ids=ids, split=split, images=stack(images))


INFO = register(DatasetInfo(
    name="omniglot-small", role="target", profile="embedded", classes=40, files=ZIPS,
    prepare=prepare,
    title="Handwritten characters: Omniglot images_background_small1/2, 5 characters of each "
          "of the 8 distinct alphabets, inverted to white strokes on black.",
    licence="MIT (Brenden Lake, github.com/brendenlake/omniglot)",
    citation="Lake, B. M., Salakhutdinov, R. and Tenenbaum, J. B. (2015). Human-level concept "
             "learning through probabilistic program induction. Science 350(6266), 1332-1338.",
    source="https://github.com/brendenlake/omniglot (python/images_background_small{1,2}.zip)",
    sizes={"train": 320, "val": 120, "test": 360},
    reasoning="The two small background sets hold 10 alphabets, of which Greek and Latin "
              "appear twice: 8 distinct alphabets, 272 characters, 20 drawers each. Five "
              "characters per alphabet (seeded choice) give 40 classes, a few-shot task like "
              "the paper's Omniglot but 40 times smaller. Of each character's 20 drawings, 9 "
              "are test, 3 val and 8 train: 320 training images keep a fine-tuning epoch of "
              "three tiny ResNets near 0.2 s on 2 cores, 120 val images resolve the layer "
              "search's fitness in 0.8 % steps, 360 test images give a standard error of "
              "about 2.5 points.",
))
