"""The training recipe as a validated settings object."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# The CPUs a scheduler gave this process, where fewer than the machine's (a Ray task: see
# compendium.pipeline.fanout), so that `num_workers: auto` uses what was asked for, no more.
CPUS_ENV = "AMCF_CPUS"
MAX_AUTO_WORKERS = 8  # DataLoader workers of `num_workers: auto`, at most

# Fields that change how a run is shown, fed or saved, never its numbers: a run may be resumed
# or reused with different values of these.
COSMETIC_FIELDS = frozenset({"progress", "num_workers", "checkpoint_every",
                             "checkpoint_minutes"})
# Fields added after results were computed: left out of a run's identity while they hold
# their default, so the runs (and search memos) made before they existed are still found.
LATER_FIELDS = {"test_eval": "every", "compile": False}
# How a fitness run of the layer search is scored (amcf.search.scores); the first is the
# paper's and the default.
FITNESS_SCORES = ("accuracy", "loss", "accuracy+loss")


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
    channels_last: bool = Field(
        True, description="channels-last (NHWC) memory format for models and batches: oneDNN's "
        "CPU convolutions and cuDNN's both run faster in it")
    num_workers: int | Literal["auto"] = Field(
        0, description="DataLoader workers for non-tensor datasets; 'auto': from the cores")
    eval_test: bool = Field(True, description="evaluate the test split (False: never)")
    test_eval: Literal["every", "improved", "selected"] = Field(
        "every", description="'every' epoch (the paper's best-over-epochs column needs it), "
        "only when a validation accuracy improves, or 'selected': after training, only the "
        "epochs selection reports (the weights of each improvement are kept; two or three "
        "passes in all). The selected and last epochs' test accuracies are the same bits in "
        "every mode; best_test_acc is reported with 'every' only")
    compile: bool = Field(False, description="torch.compile the models (CUDA only)")
    checkpoint_every: int = Field(
        10, ge=1, description="with an out_dir, write the resume checkpoint after every this "
        "many epochs (the latest only; a killed run repeats at most the epochs since)")
    checkpoint_minutes: float | None = Field(
        10.0, ge=0, description="also after an epoch that ends this many minutes after the "
        "last checkpoint (0: every epoch; null: by epochs only)")
    progress: bool = Field(True, description="show a tqdm progress bar")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(
                f"unknown device {value!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
            )
        return value

    @field_validator("num_workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"num_workers must be >= 0 or 'auto', got {value}")
        return value

    def identity(self) -> dict[str, Any]:
        """The settings that determine a run's numbers (what resume and reuse compare)."""
        return {k: v for k, v in self.model_dump(mode="json").items()
                if k not in COSMETIC_FIELDS and (k not in LATER_FIELDS or LATER_FIELDS[k] != v)}

    def workers(self) -> int:
        """The DataLoader worker count: ``num_workers``, or with 'auto' one per core but one
        (left to the training loop), at most 8."""
        if self.num_workers == "auto":
            return auto_workers(usable_cores())
        return self.num_workers


class FitnessConfig(TrainConfig):
    """The recipe of a fitness run (``search.fitness`` in params.yaml) and how it is scored.

    ``score`` changes which scheme wins, not how a run trains: it joins :meth:`identity` (so
    the search's memo and work directory) only when it is not the default, so searches made
    before it existed are found again; ``amcf.amls.training_identity`` leaves it out.
    """

    score: Literal[FITNESS_SCORES] = Field(  # type: ignore[valid-type]
        FITNESS_SCORES[0], description="how a run is scored: best fused val 'accuracy' (the "
        "paper), 'loss' (minus the lowest fused val cross-entropy) or 'accuracy+loss' (ties "
        "broken by the loss); see amcf.search.scores")

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        if self.score == FITNESS_SCORES[0]:
            ident.pop("score")
        return ident


def auto_workers(cores: int) -> int:
    """DataLoader workers of ``num_workers: auto`` on ``cores`` CPUs: one per core but one
    (left to the training loop), at most :data:`MAX_AUTO_WORKERS`."""
    return max(0, min(MAX_AUTO_WORKERS, cores - 1))


def usable_cores() -> int:
    """CPU cores this process may run on: the affinity mask where the OS has one, or fewer
    where a scheduler gave it fewer (``$AMCF_CPUS``: a Ray task sets the CPUs Ray gave it)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    given = os.environ.get(CPUS_ENV, "")
    if given:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f"{CPUS_ENV}={given!r}: give a whole number of CPUs >= 1")
        cores = min(cores, int(given))
    return cores


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's ``device``; fails at once when it is not present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from amcf.train.cuda import CudaUnavailable, cuda_problem

        # a recipe that names CUDA never falls back to the CPU: say why it is missing
        raise CudaUnavailable(
            f"device {name!r} was requested but CUDA is not available on this machine: "
            f"{cuda_problem() or 'torch finds no CUDA device'} (device='auto' trains on "
            "whatever is there, 'cpu' on the CPU)"
        )
    count = torch.cuda.device_count()
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise RuntimeError(f"device {name!r} does not exist: this machine has {count} CUDA "
                           f"device(s); use 'cuda:0'..'cuda:{count - 1}'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} was requested but MPS is not available; use 'cpu'")
    return device
