"""Finding timm's pretrained weights without hanging when offline, and fetching them ahead.

Without network, timm's Hugging Face download retries for ~47 s before failing. We look the
weights up in the local caches first; if they are absent we decide in about 2 s whether the
source can be reached, and fail at once with a message saying how to supply a local file.
:func:`fetch_hub_weights` puts them into those caches ahead of time, on a machine with
internet, for compute nodes without it (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch.hub
from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError
from timm.models import get_pretrained_cfg

_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PROBE_TIMEOUT_S = 2.0


class HubWeightsUnavailable(RuntimeError):
    """timm's pretrained weights are neither cached locally nor downloadable."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """HF_HUB_OFFLINE as set now (the env var) or when huggingface_hub was imported."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or bool(hf_constants.HF_HUB_OFFLINE)


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    Runs in a daemon thread because name resolution ignores socket timeouts.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _pretrained_cfg(arch: str):
    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as err:  # timm's answer to an unknown pretrained tag
        raise HubWeightsUnavailable(
            f"{err} Fix: pick a tag listed by `timm.list_pretrained('{arch.split('.')[0]}*')`."
        ) from err
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise HubWeightsUnavailable(
            f"timm has no pretrained weights for '{arch}'. Fix: pass a local checkpoint file "
            "as SourceSpec(weights='path/to/file') or weights=None to train from scratch; "
            "`timm.list_pretrained()` lists the names with weights."
        )
    return cfg


def _cached_file(cfg) -> Path | None:
    if cfg.file and Path(cfg.file).is_file():
        return Path(cfg.file)
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HF_WEIGHT_FILES
        for name in names:
            hit = try_to_load_from_cache(repo, name, revision=revision or None)
            if isinstance(hit, str):
                return Path(hit)
    if cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if local.is_file():
            return local
    return None


def _source_url(cfg) -> str:
    if cfg.hf_hub_id:
        return os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT
    return cfg.url


def _describe(arch: str, cfg) -> str:
    if cfg.hf_hub_id:
        return f"'{arch}' (Hugging Face Hub repo '{cfg.hf_hub_id}')"
    return f"'{arch}' ({cfg.url})"


def locate_hub_weights(arch: str) -> Path | None:
    """Local file holding ``arch``'s pretrained weights; None if they must (and can) download.

    Raises :class:`HubWeightsUnavailable` within ~2 s when they are not cached and the source
    cannot be reached (HF_HUB_OFFLINE set, or the probe fails).
    """
    cfg = _pretrained_cfg(arch)
    cached = _cached_file(cfg)
    if cached is not None:
        return cached
    url = _source_url(cfg)
    if offline_mode() or not reachable(url):
        why = "HF_HUB_OFFLINE is set" if offline_mode() else f"{url} cannot be reached"
        raise HubWeightsUnavailable(
            f"pretrained weights for {_describe(arch, cfg)} are not in the local cache "
            f"({hf_constants.HF_HUB_CACHE}) and {why}. Fix: on a machine with network, with "
            "the same cache (HF_HOME or HF_HUB_CACHE on a shared disk), run `amcf data fetch "
            "--profile paper` in the compendium's checkout (or `python -c \"from "
            "amcf.models.hub import fetch_hub_weights; "
            f"fetch_hub_weights('{arch}')\"`), or save the weights to a file "
            "and pass SourceSpec(weights='path/to/file.pth'), or use weights=None to train "
            "from scratch."
        )
    return None


def cached_hub_weights(arch: str) -> Path | None:
    """The local file of ``arch``'s pretrained weights, None when they are not cached."""
    return _cached_file(_pretrained_cfg(arch))


def fetch_hub_weights(arch: str) -> Path:
    """Download ``arch``'s pretrained weights into the cache timm reads them from (the
    Hugging Face Hub's, or torch hub's for a plain URL), unless they are there already;
    returns the file. Raises :class:`HubWeightsUnavailable` at once when offline."""
    cfg = _pretrained_cfg(arch)
    cached = _cached_file(cfg)
    if cached is not None:
        return cached
    if offline_mode():
        raise HubWeightsUnavailable(
            f"pretrained weights for {_describe(arch, cfg)} are not in the local cache "
            f"({hf_constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE is set, so they cannot be "
            "downloaded. Fix: unset HF_HUB_OFFLINE on a machine with network.")
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HF_WEIGHT_FILES
        for name in names:  # as timm: safetensors where the repository has them
            try:
                return Path(hf_hub_download(repo, name, revision=revision or None))
            except EntryNotFoundError:
                if name == names[-1]:
                    raise
    if not cfg.url:
        raise HubWeightsUnavailable(f"the weights file {cfg.file} named by timm for "
                                    f"'{arch}' does not exist, and timm gives no URL for it.")
    local = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
    local.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(cfg.url, str(local))
    return local
