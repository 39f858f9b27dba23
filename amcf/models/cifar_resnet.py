"""CIFAR ResNet-20/32/56 (He et al. 2016, section 4.2), registered in timm's model registry.

Parameter names follow the public CIFAR-10 checkpoints of ../shared/data/pretrained
(``conv1``, ``bn1``, ``layer{1,2,3}.{i}.conv{1,2}``/``bn{1,2}``, ``linear``) so that they load
strictly. The shape-changing shortcut is option A: subsample by 2, zero-pad the channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["CifarResNet"]


class _PadShortcut(nn.Module):
    """Option-A shortcut: parameter-free, so the checkpoints have no keys for it."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.before = extra_channels // 2
        self.after = extra_channels - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.before, self.after))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        reshape = stride != 1 or in_planes != planes
        self.shortcut = _PadShortcut(planes - in_planes) if reshape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """3x3 stem, three stages of 16/32/64 channels, global average pooling, linear head."""

    def __init__(
        self,
        blocks_per_stage: int,
        num_classes: int = 10,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"CifarResNet supports global_pool='avg' only, got {global_pool!r}")
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = 64
        self.drop_rate = drop_rate
        self.conv1 = nn.Conv2d(in_chans, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        widths = (16, 32, 64)
        in_planes = 16
        for i, planes in enumerate(widths):
            blocks = []
            for b in range(blocks_per_stage):
                stride = 2 if (i > 0 and b == 0) else 1
                blocks.append(_BasicBlock(in_planes, planes, stride))
                in_planes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.linear = self._new_head(num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def _new_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.linear

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool not in (None, "avg", ""):
            raise ValueError(f"CifarResNet supports global_pool='avg' only, got {global_pool!r}")
        self.num_classes = num_classes
        self.linear = self._new_head(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.linear(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg() -> dict:
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "first_conv": "conv1",
        "classifier": "linear",
    }


default_cfgs = generate_default_cfgs(
    {"cifar_resnet20": _cfg(), "cifar_resnet32": _cfg(), "cifar_resnet56": _cfg()}
)


def _create(variant: str, depth: int, pretrained: bool, **kwargs) -> CifarResNet:
    if pretrained:
        raise ValueError(
            f"{variant} has no timm pretrained weights; pass the CIFAR-10 checkpoint as a local "
            "file instead, e.g. SourceSpec(arch='cifar_resnet20', "
            "weights='../shared/data/pretrained/cifar10-resnet20-12fca82f.th')"
        )
    blocks = (depth - 2) // 6
    return build_model_with_cfg(CifarResNet, variant, False, blocks_per_stage=blocks, **kwargs)


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _create("cifar_resnet20", 20, pretrained, **kwargs)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _create("cifar_resnet32", 32, pretrained, **kwargs)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _create("cifar_resnet56", 56, pretrained, **kwargs)
