"""AdaFilter: per-example, per-filter choice between fine-tuned and pretrained filters.

Guo, Li, Wang and Rosing, "AdaFilter: Adaptive Filter Fine-tuning for Deep Transfer
Learning", AAAI 2020. Every gated convolution keeps two copies of its filters: the pretrained
ones, frozen, and a copy that is fine-tuned. A recurrent gated network (one LSTM shared by
all layers) reads a global-average-pooled summary of the layer's input and outputs one gate
per output filter and per example; the layer's output mixes the two copies filter by filter::

    y = g * BN_ft(conv_ft(x)) + (1 - g) * BN_pre(conv_pre(x))

"Gated batch normalisation": the paper normalises the channels from the two kinds of filters
with separate batch-norm layers, because their statistics differ; both start as copies of the
pretrained BN. The binary gates are trained with a straight-through estimator on a
Gumbel(-sigmoid) sample of the gate probability, and are deterministic (probability > 0.5) at
evaluation. A filter's fine-tuned copy therefore receives gradient only through the examples
whose gate for it is on.

Choices of this implementation (the paper leaves them open or they do not transfer):
- the gated layers are the convs of every residual block (timm/torchvision ``BasicBlock`` and
  ``Bottleneck``: ``conv1..3`` with ``bn1..3``); the stem and the downsample shortcuts are
  fine-tuned as usual, and the head is new and trains;
- the pretrained path's batch norm keeps its pretrained affine weights frozen; its running
  statistics follow the target data in train mode like every other BN;
- the per-layer input summaries have different widths, so each layer has its own linear
  embedding into the shared LSTM and its own linear read-out to its number of filters;
- the Gumbel noise comes from torch's global generator (as dropout would), which the
  trainer's checkpoint saves and restores.
At initialisation the two copies are identical, so the gates do not change the output and the
policy's gradient is zero until the fine-tuned filters have moved (after the first step).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from amcf.objective import MCLoss
from compendium.methods.baselines._build import build_models
from compendium.methods.entry import Method, Options, Positive, PositiveInt, grid

_BLOCKS = ("BasicBlock", "Bottleneck")


def gumbel_sigmoid_gate(logits: Tensor, *, training: bool, tau: float = 1.0) -> Tensor:
    """Hard 0/1 gates. Training: a logistic-noise sample thresholded at 0.5, whose gradient is
    the soft sample's (straight-through). Evaluation: logits > 0 (probability > 0.5)."""
    if not training:
        return (logits > 0).to(logits.dtype)
    u = torch.rand_like(logits, dtype=torch.float32).clamp_(1e-6, 1 - 1e-6)
    noise = (torch.log(u) - torch.log1p(-u)).to(logits.dtype)
    soft = torch.sigmoid((logits + noise) / tau)
    hard = (soft > 0.5).to(soft.dtype)
    # hard + (soft - soft) is exactly hard in the forward pass (0 or 1, no rounding)
    return hard + (soft - soft.detach())


class GatePolicy(nn.Module):
    """The recurrent gated network: one LSTM step per gated layer, in forward order."""

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        hidden_size: int = 64,
        tau: float = 1.0,
    ):
        super().__init__()
        if hidden_size < 1 or tau <= 0:
            raise ValueError(f"need hidden_size >= 1 and tau > 0, got {hidden_size}, {tau}")
        self.embed = nn.ModuleList(nn.Linear(c, hidden_size) for c in in_channels)
        self.lstm = nn.LSTMCell(hidden_size, hidden_size)
        self.readout = nn.ModuleList(nn.Linear(hidden_size, c) for c in out_channels)
        self.tau = tau
        self.forced: float | None = None
        self.last_gates: list[Tensor] = []
        self._state: tuple[Tensor, Tensor] | None = None
        self._step = 0

    def reset(self) -> None:
        self._state = None
        self._step = 0
        self.last_gates = []

    def gate(self, index: int, x: Tensor) -> Tensor:
        """Gates (B, C_out) of gated layer ``index`` from its input ``x`` (B, C_in, H, W)."""
        if index != self._step:
            raise RuntimeError(
                f"gated layer {index} ran as step {self._step}: the gated layers must run "
                "once each, in definition order, per forward of AdaFilterNet"
            )
        self._step += 1
        if self.forced is not None:
            g = x.new_full((x.shape[0], self.readout[index].out_features), self.forced)
        else:
            summary = x.mean(dim=(2, 3))
            h, c = self.lstm(self.embed[index](summary), self._state)
            self._state = (h, c)
            g = gumbel_sigmoid_gate(self.readout[index](h), training=self.training, tau=self.tau)
        self.last_gates.append(g.detach())
        return g


class GatedConvBN(nn.Module):
    """A conv + its batch norm, as a frozen pretrained path and a fine-tuned path."""

    def __init__(self, conv: nn.Conv2d, bn: _BatchNorm, index: int, policy: GatePolicy):
        super().__init__()
        self.tuned = conv
        self.bn_tuned = bn
        self.frozen = copy.deepcopy(conv).requires_grad_(False)
        self.bn_frozen = copy.deepcopy(bn).requires_grad_(False)
        self.index = index
        # a plain attribute, not a submodule: the policy is registered once, on AdaFilterNet
        object.__setattr__(self, "_policy", policy)

    def forward(self, x: Tensor) -> Tensor:
        g = self._policy.gate(self.index, x)[:, :, None, None]
        return g * self.bn_tuned(self.tuned(x)) + (1 - g) * self.bn_frozen(self.frozen(x))


def _conv_bn_pairs(block: nn.Module) -> list[tuple[str, str]]:
    pairs = []
    for i in (1, 2, 3):
        conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, _BatchNorm):
            pairs.append((f"conv{i}", f"bn{i}"))
    return pairs


class AdaFilterNet(nn.Module):
    """Wrap a ResNet-style model (timm or torchvision; modified in place) for AdaFilter.

    ``force_gates(0.0)`` runs the pretrained filters only, ``force_gates(1.0)`` the fine-tuned
    ones, ``force_gates(None)`` restores the policy. ``policy.last_gates`` holds the gates of
    the latest forward, one (B, C_out) tensor per gated layer.
    """

    def __init__(self, model: nn.Module, hidden_size: int = 64, tau: float = 1.0):
        super().__init__()
        sites = [
            (block, conv, bn)
            for block in model.modules()
            if type(block).__name__ in _BLOCKS
            for conv, bn in _conv_bn_pairs(block)
        ]
        if not sites:
            raise ValueError(
                f"AdaFilterNet needs a ResNet-style model whose residual blocks are "
                f"BasicBlock/Bottleneck modules with conv1/bn1... attributes; "
                f"{type(model).__name__} has none. Fix: use a timm or torchvision ResNet "
                "(e.g. amcf_resnet_tiny, resnet50)."
            )
        convs = [getattr(block, conv) for block, conv, _ in sites]
        self.policy = GatePolicy(
            [c.in_channels for c in convs], [c.out_channels for c in convs], hidden_size, tau
        )
        for index, (block, conv, bn) in enumerate(sites):
            gated = GatedConvBN(getattr(block, conv), getattr(block, bn), index, self.policy)
            setattr(block, conv, gated)
            setattr(block, bn, nn.Identity())
        self.model = model
        self.num_gated = len(sites)

    def forward(self, x: Tensor) -> Tensor:
        self.policy.reset()
        return self.model(x)

    def get_classifier(self) -> nn.Module:
        return self.model.get_classifier()

    def force_gates(self, value: float | None) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"a forced gate must be in [0, 1] or None, got {value}")
        self.policy.forced = value

    def gated_layers(self) -> list[GatedConvBN]:
        return [m for m in self.model.modules() if isinstance(m, GatedConvBN)]

    def fine_tuned_fraction(self) -> float:
        """Fraction of (example, filter) gates that chose the fine-tuned filter last forward."""
        gates = self.policy.last_gates
        if not gates:
            raise RuntimeError("no forward has run yet")
        return float(sum(g.sum() for g in gates) / sum(g.numel() for g in gates))


class AdaFilterOptions(Options):
    hidden_size: grid(PositiveInt) = 64
    tau: grid(Positive) = 1.0


def adafilter(sources: Any, num_classes: int, *, in_chans: int | None = None,
              hidden_size: int = 64, tau: float = 1.0, seed: int = 0) -> tuple[list, MCLoss]:
    """Each source wrapped in :class:`AdaFilterNet`; the policy's init is seeded."""
    models = build_models(sources, num_classes, in_chans)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapped = [AdaFilterNet(m, hidden_size=hidden_size, tau=tau) for m in models]
    return wrapped, MCLoss(lam=0.0)


METHODS = (Method("adafilter", "AdaFilter", "baseline", order=80, run="adafilter",
                  recipe=adafilter, options=AdaFilterOptions, seeded=True, on="best"),)
