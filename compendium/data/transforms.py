"""The paper's 224-px recipe through PIL, on images read on access: the reference that the
device feed (:mod:`amcf.feed`) is checked against, and what reads a files-mode dataset at
sizes other than those its prepared copy holds (:mod:`compendium.data.views`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from compendium.data.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def paper_transform(train: bool, image_size: int = 224, resize: int = 256) -> Callable:
    """Train: Resize(256), RandomResizedCrop(224), flip; eval: Resize(256), CenterCrop(224);
    both ImageNet-normalised (Feng et al. 2024, as in the released script)."""
    # torchvision loads here, for image files: a tensor dataset's stages never need it
    from torchvision import transforms as T

    if train:
        steps = [T.Resize(resize), T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(resize), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class FileImageDataset(Dataset):
    """Images named by paths relative to ``root``, decoded to RGB on access."""

    def __init__(self, root: Path, files: Sequence[str], labels: Sequence[int],
                 transform: Callable):
        self.root = Path(root)
        self.files = list(files)
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.root / self.files[i]
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"unreadable image {path}: {exc}. Fix: run `amcf data prepare` "
                            "again (it re-extracts the archive).") from exc
        return self.transform(rgb), self.labels[i]


class ArrayImageDataset(Dataset):
    """A uint8 (N, C, H, W) tensor served through PIL transforms (CIFAR-100 at 224 px)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.images = images
        self.labels = labels.long()
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        arr = self.images[i].permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
        return self.transform(img), self.labels[i]
