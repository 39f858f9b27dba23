"""What the ``amcf data`` commands do, as functions (the CLI only parses arguments)."""

from __future__ import annotations

import time
from pathlib import Path

from amcf.data.fetch import FetchContext, fetch_all, resolve_mirror
from amcf.data.prepare import prepare_info
from amcf.data.registry import Profile, get_info, names


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
        done[name] = prepare_info(get_info(name), data_dir, out)
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


