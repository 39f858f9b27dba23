"""The training recipe as a validated settings object."""

from __future__ import annotations

import re
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")

# Fields that change how a run is shown or fed, never its numbers: a run may be resumed or
# reused with different values of these.
COSMETIC_FIELDS = frozenset({"progress", "num_workers"})


class TrainConfig(BaseModel):
    """The paper's final-run recipe by default (SGD 0.01/0.9/5e-4, StepLR(30, 0.1), 110 epochs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(110, ge=1, description="number of passes over the training split")
    batch_size: int = Field(64, ge=1, description="images per step, shared by all K models")
    lr: float = Field(0.01, gt=0, le=10, description="SGD learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum in [0, 1)")
    weight_decay: float = Field(5e-4, ge=0, lt=1, description="SGD weight decay in [0, 1)")
    step_size: int = Field(30, ge=1, description="StepLR: epochs between learning-rate drops")
    gamma: float = Field(0.1, gt=0, le=1, description="StepLR: factor of each drop, in (0, 1]")
    seed: int = Field(0, ge=0, lt=2**32, description="seed of weights order, batches, augment")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda[:N]', 'mps'")
    amp: bool = Field(True, description="bf16 autocast, on CUDA only")
    channels_last: bool = Field(True, description="channels-last memory format, on CUDA only")
    num_workers: int = Field(0, ge=0, description="DataLoader workers for non-tensor datasets")
    eval_test: bool = Field(True, description="evaluate the test split after every epoch")
    progress: bool = Field(True, description="show a tqdm progress bar")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(
                f"unknown device {value!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            )
        return value

    def identity(self) -> dict[str, Any]:
        """The settings that determine a run's numbers (what resume and reuse compare)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in COSMETIC_FIELDS}


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's ``device``; fails at once when it is not present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {name!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or 'cpu'"
        )
    count = torch.cuda.device_count()
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise RuntimeError(f"device {name!r} does not exist: this machine has {count} CUDA "
                           f"device(s); use 'cuda:0'..'cuda:{count - 1}'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} was requested but MPS is not available; use 'cpu'")
    return device
