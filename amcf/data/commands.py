"""What the ``amcf data`` commands do, as functions (the CLI only parses arguments)."""

from __future__ import annotations

import time
from pathlib import Path

from amcf.data.cards import per_class_counts, render_card
from amcf.data.fetch import FetchContext, check_inputs, fetch_all, resolve_mirror
from amcf.data.prepared import Prepared, write_prepared
from amcf.data.registry import DatasetInfo, Profile, get_info, names


def _assets():
    from amcf.data.catalog import ASSET_PROFILE, ASSETS

    return ASSETS, ASSET_PROFILE


def select(profile: Profile, only: list[str] | None) -> list[str]:
    """Dataset and asset names to act on: ``only`` (checked) or all of ``profile``."""
    assets, asset_profile = _assets()
    if only:
        for name in only:
            if name not in assets:
                get_info(name)  # raises with close names for a typo
        return list(only)
    return names(profile) + [a for a, p in asset_profile.items() if p == profile]


def fetch(profile: Profile = "embedded", only: list[str] | None = None,
          data_dir: str | Path = "data", mirror: str | Path | None = None,
          log=print) -> dict[str, list[Path]]:
    """Fetch every raw input of the selected datasets into ``data_dir``."""
    ctx = FetchContext(Path(data_dir), resolve_mirror(mirror))
    assets, _ = _assets()
    out = {}
    for name in select(profile, only):
        start = time.perf_counter()
        files = assets[name] if name in assets else get_info(name).files
        out[name] = fetch_all(files, ctx)
        log(f"fetched {name}: {len(out[name])} file(s) in {time.perf_counter() - start:.1f} s")
    return out


def describe(info: DatasetInfo) -> dict:
    return {"name": info.name, "title": info.title, "role": info.role, "profile": info.profile,
            "source": info.source, "licence": info.licence, "citation": info.citation,
            "reasoning": info.reasoning, "seed": info.extra.get("seed", 0)}


def prepare_dataset(info: DatasetInfo, data_dir: str | Path, out_root: str | Path) -> Path:
    """Prepare one registered dataset into ``out_root/<name>/``: check its raw inputs, decode
    and split them (the registry entry's own ``prepare``), and write the prepared dataset."""
    data_dir, out_dir = Path(data_dir), Path(out_root) / info.name
    inputs = check_inputs(info.files, data_dir, info.name)
    prep = info.prepare(data_dir, out_dir).used()
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


def prepare(profile: Profile = "embedded", only: list[str] | None = None,
            data_dir: str | Path = "data", out: str | Path = "build/data",
            log=print) -> dict[str, Path]:
    """Prepare the selected registered datasets into ``out/<name>/``."""
    assets, _ = _assets()
    done = {}
    for name in select(profile, only):
        if name in assets:
            continue
        start = time.perf_counter()
        done[name] = prepare_dataset(get_info(name), data_dir, out)
        log(f"prepared {name} -> {done[name]} in {time.perf_counter() - start:.1f} s")
    return done


def table(profile: Profile | None = None) -> list[dict]:
    rows = []
    for name in names(profile):
        info = get_info(name)
        sizes = info.sizes or {}
        rows.append({"name": name, "profile": info.profile, "role": info.role,
                     "classes": info.classes, "train": sizes.get("train"),
                     "val": sizes.get("val"), "test": sizes.get("test"),
                     "licence": info.licence.split(" (")[0].split(";")[0]})
    return rows


