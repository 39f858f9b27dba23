"""``amcf_resnet_tiny``: the embedded default's source architecture, registered in timm.

A timm ResNet with one basic block per stage, widths 16/32/64/128 and the 3-conv deep stem:
11 layers in the paper's convention, ~318k weights before the head, fast on 28x28 grey images.
"""

from __future__ import annotations

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet

default_cfgs = generate_default_cfgs(
    {
        "amcf_resnet_tiny": {
            "url": "",
            "num_classes": 10,
            "input_size": (1, 28, 28),
            "pool_size": (1, 1),
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": (0.5,),
            "std": (0.5,),
            "first_conv": "conv1.0",
            "classifier": "fc",
        }
    }
)


@register_model
def amcf_resnet_tiny(pretrained: bool = False, **kwargs) -> ResNet:
    if pretrained:
        raise ValueError(
            "amcf_resnet_tiny has no timm pretrained weights; pretrain one with amcf and pass "
            "its checkpoint as SourceSpec(arch='amcf_resnet_tiny', weights='path/to/model.pt')"
        )
    arch = {
        "block": BasicBlock,
        "layers": [1, 1, 1, 1],
        "channels": (16, 32, 64, 128),
        "stem_width": 16,
        "stem_type": "deep",
    }
    return build_model_with_cfg(ResNet, "amcf_resnet_tiny", False, **dict(arch, **kwargs))
