"""What the ``amcf data`` commands do, as functions (the CLI only parses arguments)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from compendium.data import disk
from compendium.data.cards import per_class_counts, render_card
from compendium.data.errors import DataError
from compendium.data.fetch import (
    FetchContext,
    check_inputs,
    fetch_all,
    resolve_base_url,
    resolve_mirror,
)
from compendium.data.prepared import Prepared, write_prepared
from compendium.data.registry import DatasetInfo, Profile, get_info, names

_log = logging.getLogger(__name__)

# Where each profile's raw inputs live. The embedded default's are tracked by data.dvc; the
# paper's archives (about 8 GB) stay out of it, so that DVC never copies them into its cache,
# and are pinned by downloads.lock instead (compendium.data.pins).
DATA_DIRS: dict[str, str] = {"embedded": "data", "paper": "downloads"}
# the default limit of damaged images a dataset may leave out: 0.1 % of its images, at least 1
DAMAGED_SHARE = 0.001


def catalog_assets():
    """The fetchable files that are no dataset (pretrained weights), and their profiles."""
    from compendium.data.catalog import ASSET_PROFILE, ASSETS

    return ASSETS, ASSET_PROFILE


def select(profile: Profile, only: list[str] | None, extra: dict | None = None) -> list[str]:
    """Dataset and asset names to act on: ``only`` (checked) or all of ``profile`` (with the
    ``extra`` assets of this profile, e.g. compendium.hub_weights's)."""
    assets, asset_profile = catalog_assets()
    if only:
        for name in only:
            if name not in assets and name not in (extra or {}):
                get_info(name)  # raises with close names for a typo
        return list(only)
    return (names(profile) + [a for a, p in asset_profile.items() if p == profile]
            + list(extra or {}))


def fetch(profile: Profile = "embedded", only: list[str] | None = None,
          data_dir: str | Path | None = None, mirror: str | Path | None = None,
          log=print, build: str | Path = "build", dry_run: bool = False,
          extra: dict | None = None) -> dict[str, list[Path]]:
    """Fetch every raw input of the selected datasets into ``data_dir`` (default: the
    profile's, see DATA_DIRS), after printing the disk plan (every copy of the data, down to
    the checkpoints under ``build``) and checking it against the free space: the whole
    plan, not only the download, so that the disk cannot fill up in ``prepare@``.
    ``dry_run`` prints the plan and stops. ``extra``: more assets of this profile by name
    (the hub weights, see compendium.hub_weights)."""
    data_dir, build = Path(data_dir if data_dir is not None else DATA_DIRS[profile]), Path(build)
    ctx = FetchContext(data_dir, resolve_mirror(mirror), resolve_base_url())
    assets = {**catalog_assets()[0], **(extra or {})}
    selected = {name: assets[name] if name in assets else get_info(name).files
                for name in select(profile, only, extra)}
    plan = disk.fetch_plan([f for files in selected.values() for f in files],
                           [get_info(n) for n in selected if n not in assets], profile,
                           ctx, build / "data", build)
    log(f"disk: what the selected data takes, by copy (estimates):\n{plan.table()}")
    if dry_run:
        return {}
    plan.check(f"the {profile} profile's data",
               f"free space there, or pass --data-dir on a larger disk for the archives (and "
               f"set data_dir in params.yaml to it), or put build/ on a larger disk (a symbolic "
               f"link build -> /larger/disk/build works); `amcf data fetch --profile {profile} "
               "--dry-run` prints the plan")
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, files in selected.items():
        start = time.perf_counter()
        out[name] = fetch_all(files, ctx)
        log(f"fetched {name}: {len(out[name])} file(s) in {time.perf_counter() - start:.1f} s")
    return out


def describe(info: DatasetInfo) -> dict:
    return {"name": info.name, "title": info.title, "role": info.role, "profile": info.profile,
            "source": info.source, "licence": info.licence, "citation": info.citation,
            "reasoning": info.reasoning, "seed": info.extra.get("seed", 0)}


PAPER_IMAGE_SIZE = 224


def paper_sizes(image_size: int | None) -> dict[str, int]:
    """The crop and the resize before it, in the paper's ratio (224 after 256)."""
    size = PAPER_IMAGE_SIZE if image_size is None else int(image_size)
    return {"image_size": size, "resize": round(size * 256 / PAPER_IMAGE_SIZE)}


def damaged_limit(max_damaged: int | None, images: int) -> int:
    """How many damaged images a dataset of ``images`` may leave out: ``max_damaged``, or
    by default 0.1 % of them (at least one)."""
    if max_damaged is not None:
        return int(max_damaged)
    return max(1, int(images * DAMAGED_SHARE))


def _refuse_too_many_damaged(info: DatasetInfo, prep: Prepared, max_damaged: int | None) -> None:
    damaged = prep.meta.get("damaged_images") or []
    if not damaged:
        return
    total = len(prep.ids) + len(damaged)
    allowed = damaged_limit(max_damaged, total)
    named = "; ".join(f"{d['id']} ({d['error']})" for d in damaged[:5])
    more = f"; and {len(damaged) - 5} more" if len(damaged) > 5 else ""
    if len(damaged) > allowed:
        why = (f"max_damaged is {max_damaged}" if max_damaged is not None
               else "by default 0.1 % of its images, at least one")
        raise DataError(
            f"{info.name}: {len(damaged)} of its {total} images cannot be decoded, more than "
            f"the {allowed} it may leave out ({why}): {named}{more}. Its raw inputs match "
            "their pinned hashes, so fetching again gives the same bytes. Fix: if the "
            "published archive holds them damaged, allow them with `max_damaged: "
            f"{len(damaged)}` in datasets.{info.name} of params.yaml (or `amcf data prepare "
            f"--max-damaged {len(damaged)}`): they are then left out and named in the card.")
    _log.warning("%s: %d damaged image(s) left out (named in its card.md): %s%s", info.name,
                 len(damaged), named, more)


def prepare_dataset(info: DatasetInfo, data_dir: str | Path, out_root: str | Path,
                    image_size: int | None = None, max_damaged: int | None = None) -> Path:
    """Prepare one registered dataset into ``out_root/<name>/``: check that the disk has
    room for what it writes and its raw inputs, decode and split them (the registry entry's
    own ``prepare``), and write the prepared dataset. Images that cannot be decoded are left
    out and named, up to :func:`damaged_limit`."""
    data_dir, out_dir = Path(data_dir), Path(out_root) / info.name
    disk.prepare_plan(info, data_dir, Path(out_root)).check(f"prepare@{info.name}",
                                                            disk.MOVE_BUILD)
    inputs = check_inputs(info.files, data_dir, info.name)
    prep = info.prepare(data_dir, out_dir).used()
    _refuse_too_many_damaged(info, prep, max_damaged)
    if prep.transform == "paper":
        # the crop the models see (files mode, the paper's transforms), recorded in info.json
        # for compendium.data.prepared.load_splits; None keeps the paper's 224
        prep.meta.update(paper_sizes(image_size))
    # nothing time-dependent goes in: the prepared files are DVC outputs that the training
    # stages depend on, and must be byte-identical when the inputs are
    meta = {**describe(info), "inputs": inputs}
    if "augment" in info.extra:
        meta["augment"] = info.extra["augment"]
    card_info = {**meta, "classes": prep.classes, "counts": _counts(prep),
                 "image_shape": None if prep.images is None else list(prep.images.shape[1:]),
                 "mean": list(prep.mean), "std": list(prep.std), **prep.meta}
    disk.check_copy(prep, out_dir, info.name)
    return write_prepared(out_dir, meta, prep, render_card(card_info, per_class_counts(prep)))


def _counts(prep: Prepared) -> dict[str, int]:
    from compendium.data.splits import counts

    return counts(prep.split)


def prepare(profile: Profile = "embedded", only: list[str] | None = None,
            data_dir: str | Path = "data", out: str | Path = "build/data",
            log=print, image_size: int | None = None,
            max_damaged: int | None = None) -> dict[str, Path]:
    """Prepare the selected registered datasets into ``out/<name>/``."""
    assets, _ = catalog_assets()
    done = {}
    for name in select(profile, only):
        if name in assets:
            continue
        start = time.perf_counter()
        done[name] = prepare_dataset(get_info(name), data_dir, out, image_size, max_damaged)
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


