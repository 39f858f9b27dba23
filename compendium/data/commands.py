"""What the ``amcf data`` commands do, as functions (the CLI only parses arguments)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from compendium.data.cards import per_class_counts, render_card
from compendium.data.errors import DataError
from compendium.data.fetch import (
    FetchContext,
    RemoteFile,
    check_inputs,
    fetch_all,
    resolve_base_url,
    resolve_mirror,
)
from compendium.data.prepared import Prepared, write_prepared
from compendium.data.registry import DatasetInfo, Profile, get_info, names

# Where each profile's raw inputs live. The embedded default's are tracked by data.dvc; the
# paper's archives (about 8 GB) stay out of it, so that DVC never copies them into its cache,
# and are pinned by downloads.lock instead (compendium.data.pins).
DATA_DIRS: dict[str, str] = {"embedded": "data", "paper": "downloads"}
# checkpoints of the runs in progress, the CIFAR-100 source and the pruned finished runs
WORK_BYTES = {"embedded": 200_000_000, "paper": 3_000_000_000}


def catalog_assets():
    """The fetchable files that are no dataset (pretrained weights), and their profiles."""
    from compendium.data.catalog import ASSET_PROFILE, ASSETS

    return ASSETS, ASSET_PROFILE


def select(profile: Profile, only: list[str] | None) -> list[str]:
    """Dataset and asset names to act on: ``only`` (checked) or all of ``profile``."""
    assets, asset_profile = catalog_assets()
    if only:
        for name in only:
            if name not in assets:
                get_info(name)  # raises with close names for a typo
        return list(only)
    return names(profile) + [a for a, p in asset_profile.items() if p == profile]


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def disk_plan(files: list, ctx: FetchContext, profile: str) -> dict[str, int]:
    """Bytes the selection needs: archives (and what of them is still to download), what
    preparing them extracts, and room for checkpoints; sizes are the registry's estimates."""
    remote = [f for f in files if isinstance(f, RemoteFile)]
    sized = [f for f in remote if f.size is not None]
    missing = [f for f in sized if not ctx.dest(f.path).is_file()]
    unpacked = sum({f.path: f.unpacked for f in sized}.values())
    archives = sum({f.path: f.size for f in sized}.values())
    plan = {"archives": archives, "download": sum({f.path: f.size for f in missing}.values()),
            "unpacked": unpacked, "work": WORK_BYTES.get(profile, 0),
            "unsized": len(remote) - len(sized)}
    plan["total"] = plan["archives"] + plan["unpacked"] + plan["work"]
    return plan


def fetch(profile: Profile = "embedded", only: list[str] | None = None,
          data_dir: str | Path | None = None, mirror: str | Path | None = None,
          log=print) -> dict[str, list[Path]]:
    """Fetch every raw input of the selected datasets into ``data_dir`` (default: the
    profile's, see DATA_DIRS), after printing the disk they need."""
    data_dir = Path(data_dir if data_dir is not None else DATA_DIRS[profile])
    ctx = FetchContext(data_dir, resolve_mirror(mirror), resolve_base_url())
    assets, _ = catalog_assets()
    selected = {name: assets[name] if name in assets else get_info(name).files
                for name in select(profile, only)}
    plan = disk_plan([f for files in selected.values() for f in files], ctx, profile)
    data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(data_dir).free
    log(f"disk: about {_gb(plan['archives'])} of archives in {data_dir}/ "
        f"({_gb(plan['download'])} still to fetch), {_gb(plan['unpacked'])} extracted into "
        f"build/data by prepare, {_gb(plan['work'])} for checkpoints: about "
        f"{_gb(plan['total'])} in all; {_gb(free)} free"
        + (f" ({plan['unsized']} small files not counted)" if plan["unsized"] else ""))
    if plan["download"] > free:
        raise DataError(f"{data_dir} has {_gb(free)} free, but the download needs about "
                        f"{_gb(plan['download'])}. Fix: free some space, or pass --data-dir "
                        "on a larger disk.")
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


def prepare_dataset(info: DatasetInfo, data_dir: str | Path, out_root: str | Path,
                    image_size: int | None = None) -> Path:
    """Prepare one registered dataset into ``out_root/<name>/``: check its raw inputs, decode
    and split them (the registry entry's own ``prepare``), and write the prepared dataset."""
    data_dir, out_dir = Path(data_dir), Path(out_root) / info.name
    inputs = check_inputs(info.files, data_dir, info.name)
    prep = info.prepare(data_dir, out_dir).used()
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
    return write_prepared(out_dir, meta, prep, render_card(card_info, per_class_counts(prep)))


def _counts(prep: Prepared) -> dict[str, int]:
    from compendium.data.splits import counts

    return counts(prep.split)


def prepare(profile: Profile = "embedded", only: list[str] | None = None,
            data_dir: str | Path = "data", out: str | Path = "build/data",
            log=print, image_size: int | None = None) -> dict[str, Path]:
    """Prepare the selected registered datasets into ``out/<name>/``."""
    assets, _ = catalog_assets()
    done = {}
    for name in select(profile, only):
        if name in assets:
            continue
        start = time.perf_counter()
        done[name] = prepare_dataset(get_info(name), data_dir, out, image_size)
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


