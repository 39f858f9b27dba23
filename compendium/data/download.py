"""Downloads of large archives (2.6-2.8 GB) that survive a dropped connection.

A request that fails before its body starts (a refused or reset connection, a 429 or 5xx
answer) is retried with exponential backoff by urllib3's ``Retry``, mounted in a requests
session. A body that breaks off mid-way is what no library of the stack resumes (pooch and
requests start over from the first byte; ``Retry`` stops at the headers), so that part is
written here: the bytes go to ``<dest>.part``, and a broken transfer goes on with an HTTP
Range request from the byte where it stopped, in the same run or a later one. ``If-Range``
with the server's ETag or Last-Modified makes a server whose file has changed send all of it
again; so does a server that does not support Range (it answers 200), and the partial file
is then replaced. The caller verifies the hash and renames the file (compendium.data.fetch).
A progress bar (tqdm) shows on a terminal, not in CI or a log.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

PART = ".part"
CHUNK = 1 << 20
TIMEOUT_S = (30, 120)  # connect, read: a stalled transfer raises and is resumed
ATTEMPTS = 6  # broken transfers in a row without a new byte before giving up
BACKOFF_S = 1.0  # retry n waits BACKOFF_S * 2 ** (n - 1) seconds, at most BACKOFF_MAX_S
BACKOFF_MAX_S = 30.0
# what breaks a body mid-way (requests wraps urllib3's ProtocolError and ReadTimeoutError)
_BROKEN = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
           requests.exceptions.Timeout)


class DownloadError(RuntimeError):
    """The file could not be downloaded completely."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART)


def _session() -> requests.Session:
    retry = Retry(total=4, connect=3, read=3, status=4, backoff_factor=BACKOFF_S,
                  backoff_max=BACKOFF_MAX_S, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"GET"}), respect_retry_after_header=True)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _progress_disabled() -> bool | None:
    # tqdm's `disable`: None hides the bar unless stderr is a terminal; CI runners
    # (which set CI) may hand the job a pseudo-terminal, so there it is always hidden
    return True if os.environ.get("CI") else None


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_validator(part: Path, url: str) -> str | None:
    """The ETag or Last-Modified the partial file's bytes came with (same URL only)."""
    try:
        saved = json.loads(_validator_file(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("validator") if saved.get("url") == url else None


def _write_validator(part: Path, url: str, response: requests.Response) -> str | None:
    etag = response.headers.get("ETag", "")
    # If-Range needs a strong validator: a weak ETag (W/"...") cannot be used
    validator = (etag if etag and not etag.startswith("W/") else None) \
        or response.headers.get("Last-Modified")
    _validator_file(part).write_text(json.dumps({"url": url, "validator": validator}),
                                     encoding="utf-8")
    return validator


def discard(dest: Path) -> None:
    """Remove the partial download of ``dest`` (after a failed verification)."""
    part = part_path(dest)
    part.unlink(missing_ok=True)
    _validator_file(part).unlink(missing_ok=True)


def finish(dest: Path) -> Path:
    """Give the complete, verified partial download its final name ``dest``."""
    part = part_path(dest)
    os.replace(part, dest)
    _validator_file(part).unlink(missing_ok=True)
    return dest


def download(url: str, dest: Path, *, label: str | None = None) -> tuple[Path, bool]:
    """Download ``url`` into ``<dest>.part``, resuming what an earlier attempt left there.

    Returns the complete partial file and whether any of it came from a resumed transfer
    (so that a caller whose hash check fails knows a fresh start may help).
    """
    part = part_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    validator = _read_validator(part, url) if part.is_file() else None
    resumed, failures = False, 0
    with _session() as session:
        while True:
            offset = part.stat().st_size if part.is_file() else 0
            headers = {"Accept-Encoding": "identity"}  # byte offsets of the file itself
            if offset:
                headers["Range"] = f"bytes={offset}-"
                if validator:
                    headers["If-Range"] = validator
            # failures before the body are retried (with backoff) inside the session
            response = session.get(url, stream=True, timeout=TIMEOUT_S, headers=headers)
            with response:
                if response.status_code == 416:  # nothing after offset: complete, or foreign
                    if _complete_at(response, offset):
                        return part, resumed
                    discard(dest)
                    validator = None
                    continue
                response.raise_for_status()
                start = offset if response.status_code == 206 else 0
                if response.status_code == 206 and not _range_starts_at(response, offset):
                    raise DownloadError(f"{url}: the server answered Range bytes={offset}- "
                                        f"with {response.headers.get('Content-Range')!r}")
                resumed = resumed or start > 0
                if start == 0:
                    validator = _write_validator(part, url, response)
                total = _total(response, start)
                got = _receive(response, part, start, total, label or dest.name)
            if got is None:  # the body ended with the file complete
                return part, resumed
            failures = 0 if got > 0 else failures + 1
            if failures >= ATTEMPTS:
                raise DownloadError(f"{url}: the transfer broke off {ATTEMPTS} times in a row "
                                    f"without a new byte (last: {got!r}); "
                                    f"{part.stat().st_size} bytes kept in {part} for the next "
                                    "try")
            time.sleep(min(BACKOFF_MAX_S, BACKOFF_S * 2 ** failures))


def _receive(response: requests.Response, part: Path, start: int, total: int | None,
             label: str) -> int | None:
    """Write the body to ``part`` from byte ``start``. None when the file is complete, else
    how many new bytes this transfer brought before it broke off."""
    written = 0
    with open(part, "r+b" if start and part.is_file() else "wb") as out, \
            tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=label, disable=_progress_disabled(), leave=False) as bar:
        out.seek(start)
        out.truncate()
        try:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
        except _BROKEN:
            return written
    if total is not None and start + written < total:
        return written  # closed early without an error
    return None


def _total(response: requests.Response, start: int) -> int | None:
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _range_starts_at(response: requests.Response, offset: int) -> bool:
    # "bytes 1000-1999/2000"
    spec = response.headers.get("Content-Range", "")
    return spec.startswith(f"bytes {offset}-")


def _complete_at(response: requests.Response, offset: int) -> bool:
    # "bytes */2000": the file has 2000 bytes, all of which the partial file already holds
    spec = response.headers.get("Content-Range", "")
    return spec.startswith("bytes */") and spec[8:].isdigit() and int(spec[8:]) == offset
