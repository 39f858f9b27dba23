"""Imports every dataset module so that each registers itself, and lists non-dataset assets
that ``amcf data fetch`` also brings in."""

from __future__ import annotations

from compendium.data.embedded import (  # noqa: F401
    animals,
    digits,
    fashion,
    mnist,
    omniglot,
    openmoji,
    twemoji,
)
from compendium.data.fetch import RemoteFile
from compendium.data.paper_profile import (  # noqa: F401
    aircraft,
    caltech256,
    cifar100,
    decathlon,
    mit_indoor,
    stanford_dogs,
)

_AKAMASTER = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"

# CIFAR-10 ResNets (Idelbayev, BSD-2): ready-made natural-image sources for the embedded
# profile (see ../shared/data/README.md). Fetched with the embedded profile.
ASSETS = {
    "pretrained-cifar10": tuple(
        RemoteFile(f"pretrained/cifar10-{arch}-{tag}.th", (f"{_AKAMASTER}{arch}-{tag}.th",), sha)
        for arch, tag, sha in (
            ("resnet20", "12fca82f",
             "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"),
            ("resnet32", "d509ac18",
             "d509ac1820d7f25398913559d7e81a13229b1e7adc5648e3bfa5e22dc137f850"),
            ("resnet56", "4bfd9763",
             "4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367"),
        )
    ),
}
ASSET_PROFILE = {"pretrained-cifar10": "embedded"}
