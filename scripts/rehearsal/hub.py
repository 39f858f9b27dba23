"""Stand-in pretrained weights in a local Hugging Face cache, for timm's pretrained path.

The rehearsal has no network, so the hub weights of a source (``weights: hub``) come from a
cache folder laid out as ``huggingface_hub`` lays out a download
(``models--<org>--<name>/refs/main`` and ``snapshots/<revision>/<file>``), holding a seeded
random initialisation of the architecture. With ``HF_HUB_CACHE`` pointing at the folder and
``HF_HUB_OFFLINE=1``, :func:`amcf.models.hub.locate_hub_weights` finds them there and timm
loads them as it loads real pretrained weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.models import get_pretrained_cfg

from amcf.io import atomic_path


def fill_hub_cache(arch: str, cache_dir: Path, seed: int = 0) -> Path:
    """Write stand-in weights for ``arch`` (a timm name with a Hub tag) into ``cache_dir``."""
    import timm

    cfg = get_pretrained_cfg(arch)
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"{arch!r} has no Hugging Face Hub weights in timm; the rehearsal "
                         "needs a source whose pretrained weights come from the Hub")
    repo = cfg.hf_hub_id.partition("@")[0]
    filename = cfg.hf_hub_filename or "model.safetensors"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(arch, pretrained=False)
    folder = cache_dir / f"models--{repo.replace('/', '--')}"
    staging = folder / "staging.safetensors"
    staging.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, staging)
    revision = hashlib.sha1(staging.read_bytes()).hexdigest()
    dest = folder / "snapshots" / revision / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(dest)
    with atomic_path(folder / "refs" / "main") as tmp:
        tmp.write_text(revision)
    return dest
