"""Model weight files: amcf's own checkpoint format and reading the formats we accept.

Accepted on reading: (a) ``amcf-checkpoint/1`` written by :func:`save_checkpoint`; (b) a dict
with a ``state_dict`` (or ``model``) entry, such as the CIFAR-10 ResNet ``.th`` files, whose
keys carry DataParallel's ``module.`` prefix; (c) a plain state_dict (torch or safetensors).
Everything is read with ``weights_only=True``: no pickled code runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amcf.io import torch_save
from amcf.layers import classifier_head

CHECKPOINT_FORMAT = "amcf-checkpoint/1"
_ACCEPTED = (
    "an amcf checkpoint (amcf.models.save_checkpoint), a dict holding a 'state_dict' "
    "(e.g. the CIFAR-10 ResNet .th files) or a plain state_dict (.pt/.pth/.safetensors)"
)


@dataclass
class WeightsFile:
    """What a weights file holds; fields other than ``state_dict`` are None when unknown."""

    path: Path
    kind: str  # "amcf", "wrapped" or "state_dict"
    state_dict: dict[str, torch.Tensor]
    arch: str | None = None
    num_classes: int | None = None
    in_chans: int | None = None
    classes: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _first_conv_in_chans(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.in_channels
    return None


def _row_major(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with plain row-major strides. The trainer may have made the weights
    channels-last and a model restored from a cached run has them row-major: one layout on disk
    makes the file's bytes depend on the values only. (``contiguous()`` is not enough: a weight
    with one input channel counts as contiguous in either layout and keeps its strides.)"""
    if tensor.stride() == torch.empty(tensor.shape, device="meta").stride():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    arch: str,
    classes: Sequence[str] | None = None,
    in_chans: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` atomically in amcf's format; ``meta`` must hold plain Python values."""
    head = classifier_head(model)
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None and isinstance(head, nn.Linear):
        num_classes = head.out_features
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise ValueError(
            f"save_checkpoint: {len(classes)} class names given for a model with "
            f"{num_classes} outputs; pass one name per output"
        )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "state_dict": {k: _row_major(v.detach().cpu()) for k, v in model.state_dict().items()},
        "num_classes": num_classes,
        "in_chans": in_chans if in_chans is not None else _first_conv_in_chans(model),
        "classes": list(classes) if classes is not None else None,
        "meta": dict(meta or {}),
    }
    return torch_save(payload, path)


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # DataParallel/DDP wrap the model, so its saved keys start with "module.".
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _load_raw(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def read_weights(path: str | os.PathLike) -> WeightsFile:
    """Read a weights file of any accepted kind; clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file not found: {path} (resolved: {path.resolve()}). Fix: point "
            f"SourceSpec.weights at an existing file ({_ACCEPTED}), or use weights='hub' for "
            "timm's pretrained weights or weights=None for random initialisation."
        )
    try:
        obj = _load_raw(path)
    except Exception as err:  # torch raises many types for a corrupt or non-torch file
        raise ValueError(
            f"cannot read weights file {path} ({type(err).__name__}; details above): it is "
            f"corrupt or not a weights file. Expected {_ACCEPTED}."
        ) from err
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        return WeightsFile(
            path=path,
            kind="amcf",
            state_dict=_strip_prefix(obj["state_dict"]),
            arch=obj.get("arch"),
            num_classes=obj.get("num_classes"),
            in_chans=obj.get("in_chans"),
            classes=obj.get("classes"),
            meta=dict(obj.get("meta") or {}),
        )
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and _is_state_dict(obj.get(key)):
            extra = {k: v for k, v in obj.items() if k != key and not isinstance(v, torch.Tensor)}
            return WeightsFile(path, "wrapped", _strip_prefix(obj[key]), meta=extra)
    if _is_state_dict(obj):
        return WeightsFile(path, "state_dict", _strip_prefix(obj))
    raise ValueError(f"{path} holds no recognisable weights. Expected {_ACCEPTED}.")
