"""Source model specifications and building a model for a target task from one."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from operator import index as as_index
from typing import Any

import timm
from pydantic import BaseModel, ConfigDict, Field, field_validator
from timm.models import adapt_input_conv, get_arch_name, get_pretrained_cfg
from torch import nn

from amcf.layers import classifier_head, freeze_bottom
from amcf.models import cifar_resnet, tiny  # noqa: F401  (registers the archs with timm)
from amcf.models.checkpoint import WeightsFile, read_weights
from amcf.models.hub import locate_hub_weights


class SourceSpec(BaseModel):
    """One source model: a label, a timm architecture and where its weights come from.

    ``weights``: "hub" = timm's pretrained weights for ``arch`` (a tag such as
    ``resnet50.tv_in1k`` picks which), a path = a local weights file, None = random init.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arch: str = Field(min_length=1)
    weights: str | None = "hub"

    @field_validator("weights", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        if not timm.is_model(arch):
            close = difflib.get_close_matches(get_arch_name(arch), timm.list_models(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown architecture '{arch}'.{hint} Fix: use a name from "
                "timm.list_models() (optionally with a pretrained tag, e.g. resnet50.tv_in1k) "
                "or one amcf registers: cifar_resnet20/32/56, amcf_resnet_tiny."
            )
        if "." in arch:
            try:
                get_pretrained_cfg(arch)
            except RuntimeError as err:
                raise ValueError(
                    f"{err} Fix: use a tag from timm.list_pretrained('{get_arch_name(arch)}*')."
                ) from None
        return arch


def _create(arch: str, num_classes: int, in_chans: int | None, **kwargs: Any) -> nn.Module:
    # timm drops kwargs that are None, so in_chans=None keeps the architecture's default.
    return timm.create_model(arch, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _check_num_classes(num_classes: int) -> int:
    num_classes = as_index(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return num_classes


def _module_keys(model: nn.Module, module: nn.Module | None) -> set[str]:
    if module is None:
        return set()
    prefix = next(name for name, m in model.named_modules() if m is module)
    return {f"{prefix}.{k}" if prefix else k for k in module.state_dict()}


def _first_conv_key(model: nn.Module) -> str | None:
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return f"{name}.weight"
    return None


def _stored_in_chans(arch: str, weights: WeightsFile) -> int | None:
    if weights.in_chans is not None:
        return weights.in_chans
    cfg = get_pretrained_cfg(arch)
    key = f"{cfg.first_conv}.weight" if cfg is not None and cfg.first_conv else None
    tensor = weights.state_dict.get(key) if key else None
    if tensor is None:
        tensor = next((t for t in weights.state_dict.values() if t.ndim == 4), None)
    return None if tensor is None else int(tensor.shape[1])


def _from_file(spec: SourceSpec, num_classes: int, in_chans: int | None, keep_head: bool):
    weights = read_weights(spec.weights)
    if weights.arch and get_arch_name(weights.arch) != get_arch_name(spec.arch):
        raise ValueError(
            f"{weights.path} holds a '{weights.arch}' model but source '{spec.name}' says "
            f"arch='{spec.arch}'. Fix: set arch='{weights.arch}' or point weights at the "
            "right file."
        )
    stored_in = _stored_in_chans(spec.arch, weights)
    model = _create(spec.arch, num_classes, in_chans or stored_in)
    head_keys = _module_keys(model, classifier_head(model))
    state = dict(weights.state_dict)
    if not keep_head:
        state = {k: v for k, v in state.items() if k not in head_keys}
    conv_key = _first_conv_key(model)
    target_in = model.state_dict()[conv_key].shape[1] if conv_key else None
    if conv_key in state and stored_in and target_in != state[conv_key].shape[1]:
        state[conv_key] = adapt_input_conv(target_in, state[conv_key], base_chans=stored_in)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(
            f"weights in {weights.path} do not fit arch '{spec.arch}' with {num_classes} "
            f"classes: {err}"
        ) from err
    missing = set(result.missing_keys) - (set() if keep_head else head_keys)
    if missing or result.unexpected_keys:
        raise ValueError(
            f"weights in {weights.path} do not match arch '{spec.arch}': missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]} "
            f"({len(missing)} and {len(result.unexpected_keys)} in all). Fix: set "
            "SourceSpec.arch to the architecture the file was saved from."
        )
    return model


def _from_hub(spec: SourceSpec, num_classes: int, in_chans: int | None, keep_head: bool):
    stored = get_pretrained_cfg(spec.arch)
    if keep_head and stored is not None and stored.num_classes != num_classes:
        raise ValueError(
            f"keep_head=True needs num_classes={stored.num_classes} (the head of "
            f"'{spec.arch}'), got {num_classes}"
        )
    local = locate_hub_weights(spec.arch)
    overlay = {"file": str(local)} if local is not None else None
    model = _create(
        spec.arch, num_classes, in_chans, pretrained=True, pretrained_cfg_overlay=overlay
    )
    if not keep_head:
        # timm keeps the pretrained head when the class counts happen to agree.
        model.reset_classifier(num_classes)
    return model


def build_model(
    spec: SourceSpec, num_classes: int, *, in_chans: int | None = None, keep_head: bool = False
) -> nn.Module:
    """Build ``spec``'s model with a freshly initialised ``num_classes``-way head.

    ``in_chans`` adapts the first conv (timm's rule: sum for 1 channel, repeat otherwise);
    None keeps the weights' channel count. ``keep_head=True`` keeps the stored head instead
    (its class count must be ``num_classes``), e.g. to evaluate a source on its own task.
    Missing weights fail before any model is built.
    """
    num_classes = _check_num_classes(num_classes)
    if spec.weights is None:
        if keep_head:
            raise ValueError(f"source '{spec.name}' has weights=None: there is no head to keep")
        return _create(spec.arch, num_classes, in_chans)
    if spec.weights == "hub":
        return _from_hub(spec, num_classes, in_chans, keep_head)
    return _from_file(spec, num_classes, in_chans, keep_head)


def build_frozen(sources: Sequence[SourceSpec], scheme: Sequence[int], splits: Any,
                 freeze_bn_stats: bool = False) -> list[nn.Module]:
    """The K source models with new heads for ``splits`` (its classes and channels) and
    ``scheme[j]`` bottom layers of model j frozen: AMCF's models for one scheme."""
    models = [build_model(s, splits.num_classes, in_chans=splits.in_chans) for s in sources]
    for m, k in zip(models, scheme, strict=True):
        freeze_bottom(m, int(k), freeze_bn_stats=freeze_bn_stats)
    return models
