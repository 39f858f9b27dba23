"""Source models: specifications, building them for a target task, checkpoints, and the
architectures amcf registers in timm's registry (importing this package registers them)."""

from amcf.models import cifar_resnet, tiny  # noqa: F401  (registers the archs with timm)
from amcf.models.build import SourceSpec, build_model
from amcf.models.checkpoint import CHECKPOINT_FORMAT, WeightsFile, read_weights, save_checkpoint
from amcf.models.cifar_resnet import CifarResNet
from amcf.models.hub import HubWeightsUnavailable, locate_hub_weights

__all__ = [
    "CHECKPOINT_FORMAT",
    "CifarResNet",
    "HubWeightsUnavailable",
    "SourceSpec",
    "WeightsFile",
    "build_model",
    "locate_hub_weights",
    "read_weights",
    "save_checkpoint",
]
