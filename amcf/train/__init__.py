"""The trainer shared by AMCF, its ablations and every baseline (see :func:`fit`)."""

from amcf.train.config import FitnessConfig, TrainConfig, resolve_device
from amcf.train.evaluate import evaluate
from amcf.train.fit import TrainResult, fit

__all__ = ["FitnessConfig", "TrainConfig", "TrainResult", "evaluate", "fit", "resolve_device"]
