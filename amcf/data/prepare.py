"""``amcf data prepare``: verify raw inputs, decode, split, and write the prepared dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from amcf.data.cards import render_card
from amcf.data.fetch import check_inputs
from amcf.data.prepared import Prepared, write_prepared
from amcf.data.registry import DatasetInfo, get_info

PAPER_IMAGE_SIZE = 224


def paper_sizes(image_size: int | None) -> dict[str, int]:
    """The crop and the resize before it, in the paper's ratio (224 after 256)."""
    size = PAPER_IMAGE_SIZE if image_size is None else int(image_size)
    return {"image_size": size, "resize": round(size * 256 / PAPER_IMAGE_SIZE)}


def per_class_counts(prep: Prepared) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in ("train", "val", "test"):
        cnt = Counter(int(y) for y, sp in zip(prep.labels, prep.split, strict=True) if sp == s)
        out[s] = {prep.classes[k]: v for k, v in cnt.items()}
    return out


def describe(info: DatasetInfo) -> dict:
    return {"name": info.name, "title": info.title, "role": info.role, "profile": info.profile,
            "source": info.source, "licence": info.licence, "citation": info.citation,
            "reasoning": info.reasoning, "seed": info.extra.get("seed", 0)}


def prepare_info(info: DatasetInfo, data_dir: str | Path, out_root: str | Path,
                 image_size: int | None = None) -> Path:
    """Prepare one registered dataset into ``out_root/<name>/``.

    ``image_size`` (files mode, the paper's transforms) is the crop the models see, recorded
    in info.json for :func:`amcf.data.prepared.load_splits`; None keeps the paper's 224.
    """
    data_dir, out_dir = Path(data_dir), Path(out_root) / info.name
    inputs = check_inputs(info.files, data_dir, info.name)
    prep = info.prepare(data_dir, out_dir).used()
    if prep.transform == "paper":
        prep.meta.update(paper_sizes(image_size))
    # nothing time-dependent goes in: the prepared files are DVC outputs that the training
    # stages depend on, and must be byte-identical when the inputs are
    meta = {**describe(info), "inputs": inputs}
    if "augment" in info.extra:
        meta["augment"] = info.extra["augment"]
    card_info = {**meta, "classes": prep.classes, "counts": _counts(prep),
                 "image_shape": None if prep.images is None else list(prep.images.shape[1:]),
                 "mean": list(prep.mean), "std": list(prep.std), **prep.meta}
    return write_prepared(out_dir, meta, prep, render_card(card_info, per_class_counts(prep)))


def _counts(prep: Prepared) -> dict[str, int]:
    from amcf.data.splits import counts

    return counts(prep.split)


def prepare(name: str, data_dir: str | Path = "data", out_root: str | Path = "build/data") -> Path:
    return prepare_info(get_info(name), data_dir, out_root)
