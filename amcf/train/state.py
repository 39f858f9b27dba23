"""What identifies a run, and the checkpoint that lets a killed run resume bit-identically."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amcf.io import torch_save
from amcf.objective import Objective

CHECKPOINT_FORMAT = "amcf-train-checkpoint/1"


def architecture_fingerprint(model: nn.Module) -> str:
    """Digest of the model's class, tensor names, shapes, dtypes and which parameters train.

    The ``requires_grad`` flags are part of it because a freezing scheme changes the run as
    much as a different network does.
    """
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, p in model.named_parameters():
        h.update(f"p:{name}:{tuple(p.shape)}:{p.dtype}:{p.requires_grad};".encode())
    for name, b in model.named_buffers():
        h.update(f"b:{name}:{tuple(b.shape)}:{b.dtype};".encode())
    return h.hexdigest()[:16]


def weights_fingerprint(model: nn.Module) -> str:
    """Digest of the starting weights (pretrained or random), so a resume starts from them."""
    h = hashlib.sha256()
    for t in model.state_dict().values():
        flat = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def objective_fingerprint(objective: Objective) -> dict[str, Any]:
    """The objective's class and its plain settings (e.g. ``lam``)."""
    cls = type(objective)
    # Only the constructor's arguments count: state an objective builds in setup() or during
    # training must not make a finished run look like a different one.
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    settings = {}
    for name in names:
        value = getattr(objective, name, None)
        if isinstance(value, bool | int | float | str):
            settings[name] = value
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "settings": settings}


def device_identity(device: torch.device | str) -> dict[str, str]:
    """The device type a run trains on, as a part of its identity: ``{"device": "cuda"}``.

    ``device: auto`` in a recipe says nothing about where a run trained, and a CPU run must
    never stand in for a CUDA one (nor the reverse). The CPU is left out (``{}``): every run
    made before the device was recorded trained there, and is found again.
    """
    kind = torch.device(device).type
    return {} if kind == "cpu" else {"device": kind}


def run_identity(config_identity: dict[str, Any], models: Sequence[nn.Module],
                 objective: Objective, device: torch.device | str) -> dict[str, Any]:
    """What a stored run must match to be resumed or reused (``device``: the resolved device
    it trains on, never the recipe's ``auto``)."""
    return {
        "config": config_identity,
        **device_identity(device),
        "objective": objective_fingerprint(objective),
        "architectures": [architecture_fingerprint(m) for m in models],
        "initial_weights": [weights_fingerprint(m) for m in models],
    }


def identity_mismatch(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two run identities (empty when they match)."""
    problems = []
    old_cfg, new_cfg = stored.get("config", {}), current["config"]
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(key) != new_cfg.get(key):
            problems.append(f"config.{key}: stored {old_cfg.get(key)!r}, now {new_cfg.get(key)!r}")
    where = (stored.get("device", "cpu"), current.get("device", "cpu"))
    if where[0] != where[1]:
        problems.append(f"device: stored {where[0]!r}, now {where[1]!r} (a run is reused only "
                        "on the kind of device it trained on)")
    if stored.get("objective") != current["objective"]:
        problems.append(f"objective: stored {stored.get('objective')}, now {current['objective']}")
    if stored.get("architectures") != current["architectures"]:
        problems.append("model architectures or frozen layers differ (number of models, layers, "
                        "shapes or requires_grad flags)")
    elif stored.get("initial_weights") != current["initial_weights"]:
        problems.append("the models' starting weights differ (other pretrained weights, or a "
                        "random init under another seed)")
    return problems


def rng_state(batch_generator: torch.Generator,
              device: torch.device | None = None) -> dict[str, Any]:
    """The random streams a resumed run must continue: torch's CPU stream, the batch
    generator, and on CUDA the training device's own stream (only that device's: reading
    every visible GPU's, as ``get_rng_state_all`` does, opens a CUDA context on each)."""
    cuda = device is not None and device.type == "cuda"
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if cuda else None,
        "batches": batch_generator.get_state(),
    }


def restore_rng(state: dict[str, Any], batch_generator: torch.Generator,
                device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    saved = state.get("cuda")
    if saved is not None and device is not None and device.type == "cuda":
        if isinstance(saved, list | tuple):  # written by get_rng_state_all: one per GPU
            saved = saved[device.index if device.index is not None else 0]
        torch.cuda.set_rng_state(saved, device)
    batch_generator.set_state(state["batches"])


def save_resume_state(path: Path, **payload: Any) -> None:
    torch_save({"format": CHECKPOINT_FORMAT, **payload}, path)


def load_resume_state(path: Path) -> dict[str, Any]:
    """Read a trainer checkpoint; a corrupt or foreign file fails with what to do about it."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise RuntimeError(
            f"cannot read the training checkpoint {os.fspath(path)!r} ({type(err).__name__}: "
            f"{err}); delete it to start the run over, or call fit(..., resume=False)"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise RuntimeError(
            f"{os.fspath(path)!r} is not an amcf training checkpoint (expected format "
            f"{CHECKPOINT_FORMAT!r}); use another out_dir or call fit(..., resume=False)"
        )
    return ckpt
