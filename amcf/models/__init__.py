"""Source models: specifications, building them for a target task, checkpoints, and the
architectures amcf registers in timm's registry (importing this package registers them).

Other names are imported on first use (:mod:`amcf._exports`)."""

from amcf._exports import lazy
from amcf.models import cifar_resnet, tiny  # noqa: F401  (registers the archs with timm)

_EXPORTS = {
    "SourceSpec": "amcf.models.build",
    "build_model": "amcf.models.build",
    "build_frozen": "amcf.models.build",
    "CHECKPOINT_FORMAT": "amcf.models.checkpoint",
    "WeightsFile": "amcf.models.checkpoint",
    "read_weights": "amcf.models.checkpoint",
    "save_checkpoint": "amcf.models.checkpoint",
    "CifarResNet": "amcf.models.cifar_resnet",
    "HubWeightsUnavailable": "amcf.models.hub",
    "locate_hub_weights": "amcf.models.hub",
    "cached_hub_weights": "amcf.models.hub",
    "fetch_hub_weights": "amcf.models.hub",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy(__name__, _EXPORTS)
