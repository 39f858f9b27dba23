"""The paper's notion of a "layer" and freezing the bottom k of them.

Paper convention (ResNet-50): walk the parameters in definition order; each convolution whose
name contains "conv" starts a new layer (49 in ResNet-50; downsample convs are not counted).
Freezing k layers sets requires_grad=False on every parameter before the start of layer k.

We count convolution *modules* named "conv" rather than every parameter named "conv": for
ResNet-50 the two readings agree (its convs have no bias and its norms are called "bn"), but
the literal reading would also count the batch norms inside a deep stem (``conv1.1``) and a
conv's bias as layers of their own. See docs/method.md ("Layers and freezing").
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import index as as_index

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

_BN_HOOK_ATTR = "_amcf_bn_stats_hook"


def classifier_head(model: nn.Module) -> nn.Module | None:
    """The head that always trains: timm's ``get_classifier()``, else the last nn.Linear."""
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def head_param_ids(model: nn.Module) -> set[int]:
    """The ids of the head's parameters: the new classifier, which always trains."""
    head = classifier_head(model)
    return set() if head is None else {id(p) for p in head.parameters()}


def _first_param_name(module_name: str, module: nn.Module) -> str | None:
    for pname, _ in module.named_parameters(recurse=False):
        return f"{module_name}.{pname}" if module_name else pname
    return None


def _start_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    head_ids = head_param_ids(model)
    convs = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _ConvNd) and "conv" in name and any(True for _ in m.parameters())
    ]
    if not convs:
        # Fallback for architectures without "conv" names (e.g. nn.Sequential): every
        # weight-bearing conv/linear module is a layer.
        convs = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, (_ConvNd, nn.Linear)) and any(True for _ in m.parameters())
        ]
    return [(n, m) for n, m in convs if not any(id(p) in head_ids for p in m.parameters())]


def layer_starts(model: nn.Module) -> list[str]:
    """Names of the parameters that start a layer, in definition (named_parameters) order."""
    starts = {_first_param_name(n, m) for n, m in _start_modules(model)}
    return [name for name, _ in model.named_parameters() if name in starts]


def num_layers(model: nn.Module) -> int:
    return len(layer_starts(model))


def _check_k(model: nn.Module, k: int) -> tuple[int, list[str]]:
    starts = layer_starts(model)
    try:
        k = as_index(k)
    except TypeError:
        raise TypeError(f"k must be an integer number of layers, got {k!r}") from None
    if not 0 <= k <= len(starts):
        raise ValueError(
            f"cannot freeze k={k} layers: this model has {len(starts)} layers, so k must be in "
            f"0..{len(starts)} (0 = full fine-tuning, {len(starts)} = linear probe)"
        )
    return k, starts


def freeze_bottom(model: nn.Module, k: int, *, freeze_bn_stats: bool = False) -> nn.Module:
    """Freeze every parameter before the start of layer ``k`` (0-based); the head always trains.

    ``freeze_bn_stats=True`` additionally keeps batch norms whose parameters are all frozen in
    eval behaviour during train() forwards (the paper's script does not: off by default).
    Calling again replaces the previous scheme, including its batch-norm hooks.
    """
    k, starts = _check_k(model, k)
    head_ids = head_param_ids(model)
    stop = starts[k] if k < len(starts) else None
    frozen = True
    for name, p in model.named_parameters():
        if name == stop:
            frozen = False
        p.requires_grad_(not frozen or id(p) in head_ids)
    _set_bn_stat_hooks(model, enabled=freeze_bn_stats)
    return model


def _eval_mode_pre_hook(module: nn.Module, args: tuple) -> None:
    # model.train() sets training=True again; re-assert eval behaviour at every forward.
    module.training = False


def _set_bn_stat_hooks(model: nn.Module, *, enabled: bool) -> None:
    for m in model.modules():
        if not isinstance(m, _BatchNorm):
            continue
        handle = getattr(m, _BN_HOOK_ATTR, None)
        if handle is not None:
            handle.remove()
            delattr(m, _BN_HOOK_ATTR)
            m.training = model.training
        params = list(m.parameters())
        if enabled and params and not any(p.requires_grad for p in params):
            setattr(m, _BN_HOOK_ATTR, m.register_forward_pre_hook(_eval_mode_pre_hook))


@dataclass(frozen=True)
class LayerRow:
    """One layer: its index, the parameter that starts it, its module path, its #weights."""

    index: int
    start: str
    module: str
    params: int


def layer_table(model: nn.Module) -> list[LayerRow]:
    """Per layer, the number of parameter elements that freezing it would freeze.

    Parameters before the first start belong to layer 0 (freezing k>=1 freezes them); the
    head is not a layer and is left out.
    """
    starts = layer_starts(model)
    head_ids = head_param_ids(model)
    counts = [0] * len(starts)
    current = 0
    for name, p in model.named_parameters():
        if current + 1 < len(starts) and name == starts[current + 1]:
            current += 1
        if starts and id(p) not in head_ids:
            counts[current] += p.numel()
    return [
        LayerRow(i, s, s.rsplit(".", 1)[0] if "." in s else "", counts[i])
        for i, s in enumerate(starts)
    ]
