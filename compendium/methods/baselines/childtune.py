"""Child-Tuning: update only a "child network" of the pretrained model.

Xu et al., "Raise a Child in Large Language Model: Towards Effective and Generalizable
Fine-tuning", EMNLP 2021. The gradient is multiplied element-wise by a 0/1 mask M before the
optimiser's step:

- **Child-Tuning_F** (task-free): at every step M ~ Bernoulli(p_F), element-wise, and the kept
  gradients are scaled by 1/p_F so the update is unbiased. Like the authors' optimiser, every
  trainable parameter (head included) is masked.
- **Child-Tuning_D** (task-driven): once, before fine-tuning, the Fisher information of each
  parameter is estimated as the squared gradient of the loss accumulated over the training
  batches (the authors' ``calculate_fisher``), and M keeps the top p_D fraction of the
  pretrained parameters (one ranking over the whole network), without rescaling. As in the
  authors' code, the new classifier head is outside the mask and always trains.

The mask acts on the gradient only: momentum built up earlier and weight decay still move a
masked weight, as in the authors' AdamW, where the mask is applied to the gradient before the
moment estimates and the decoupled decay.

Defaults p_F = p_D = 0.3: the paper tunes the reserve ratio per task from a small grid of
values up to 0.3 (we did not have their per-task choices for image classification).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amcf.objective import MCLoss
from compendium.methods.baselines._build import build_models
from compendium.methods.baselines._params import model_device, split_trainable
from compendium.methods.entry import Fraction, Method, Options, grid


def _check_p(p: float, what: str) -> float:
    if not 0.0 < p <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {p}")
    return float(p)


class _SeededGenerator:
    """A torch.Generator on the models' device, seeded from the trainer's generator, whose
    state survives a checkpoint (restore works also when load precedes creation)."""

    def __init__(self) -> None:
        self.gen: torch.Generator | None = None
        self._pending: dict[str, Any] | None = None

    def create(self, device: torch.device, parent: torch.Generator) -> None:
        if self.gen is not None and self._pending is None:
            return
        seed = int(torch.randint(0, 2**62, (1,), generator=parent))
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None

    def _restore(self, state: dict[str, Any]) -> None:
        if state["device_type"] != self.gen.device.type:
            raise ValueError(
                f"checkpoint's mask generator ran on {state['device_type']}, this run is on "
                f"{self.gen.device.type}: Child-Tuning masks cannot continue bit-identically. "
                "Fix: resume on the same kind of device or start a new output folder."
            )
        self.gen.set_state(state["state"])

    def state_dict(self) -> dict[str, Any] | None:
        if self.gen is None:
            return None
        return {"device_type": self.gen.device.type, "state": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        if self.gen is None:
            self._pending = state
        else:
            self._restore(state)


class ChildTuningF(MCLoss):
    """Task-free Child-Tuning: Bernoulli(``p``) gradient mask drawn anew at every step."""

    name = "child_tuning_f"

    def __init__(self, p: float = 0.3, lam: float = 0.0):
        super().__init__(lam=lam)
        self.p = _check_p(p, "p (Child-Tuning_F reserve ratio p_F)")
        self._rng = _SeededGenerator()

    def setup(self, models: Sequence[nn.Module], generator: torch.Generator) -> None:
        self._rng.create(model_device(models[0]), generator)

    def after_backward(self, models: Sequence[nn.Module]) -> None:
        gen = self._rng.gen
        if gen is None:
            raise RuntimeError("ChildTuningF.after_backward called before setup()")
        for model in models:
            for p in model.parameters():
                if p.grad is None or not p.requires_grad:
                    continue
                keep = torch.rand(p.shape, generator=gen, device=gen.device) < self.p
                p.grad.mul_(keep.to(p.grad.device)).div_(self.p)

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "generator": self._rng.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["p"] != self.p:
            raise ValueError(f"checkpoint was written with p={state['p']}, not p={self.p}")
        self._rng.load_state_dict(state["generator"])


def fisher_information(
    models: Sequence[nn.Module], batches: Iterable[tuple[Tensor, Tensor]]
) -> list[dict[str, Tensor]]:
    """Per model, the mean over batches of the squared gradient of its cross-entropy, for
    each trainable body parameter (the head is left out), in train mode as the authors do.

    One pass over ``batches`` serves all models. The pass leaves no trace: batch-norm
    statistics, gradients and train/eval modes are restored afterwards.
    """
    bodies = [split_trainable(m)[0] for m in models]
    if not all(bodies):
        raise ValueError("a model has no trainable parameters besides the head")
    fisher = [{n: torch.zeros_like(p) for n, p in body.items()} for body in bodies]
    buffers = [{n: b.detach().clone() for n, b in m.named_buffers()} for m in models]
    grads = [{n: p.grad for n, p in m.named_parameters()} for m in models]
    modes = [{n: sub.training for n, sub in m.named_modules()} for m in models]
    count = 0
    try:
        for m in models:
            m.train()
        for x, y in batches:
            for m, body, acc in zip(models, bodies, fisher, strict=True):
                m.zero_grad(set_to_none=True)
                F.cross_entropy(m(x), y).backward()
                for n, p in body.items():
                    if p.grad is not None:
                        acc[n] += p.grad.detach() ** 2
            count += 1
    finally:
        for m, buf, grad, mode in zip(models, buffers, grads, modes, strict=True):
            with torch.no_grad():
                for n, b in m.named_buffers():
                    b.copy_(buf[n])
            for n, p in m.named_parameters():
                p.grad = grad[n]
            for n, sub in m.named_modules():
                sub.training = mode[n]
    if count == 0:
        raise ValueError("no training batches to estimate the Fisher information from")
    return [{n: f / count for n, f in acc.items()} for acc in fisher]


def top_fraction_mask(scores: dict[str, Tensor], p: float) -> dict[str, Tensor]:
    """Boolean masks keeping exactly round(p * n) (at least 1) of all n entries, the largest
    scores over the whole network; ties are broken by position."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = max(1, round(p * flat.numel()))
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.topk(flat, k, sorted=False).indices] = True
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks


class ChildTuningD(MCLoss):
    """Task-driven Child-Tuning: a fixed mask keeping the top ``p`` fraction of the body's
    parameters by Fisher information, computed on the training batches before epoch 0."""

    name = "child_tuning_d"

    def __init__(self, p: float = 0.3, lam: float = 0.0):
        super().__init__(lam=lam)
        self.p = _check_p(p, "p (Child-Tuning_D reserve ratio p_D)")
        self.masks: list[dict[str, Tensor]] | None = None

    def before_epoch(
        self, models: Sequence[nn.Module], epoch: int, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> None:
        if self.masks is not None:
            return  # computed once, from the pretrained weights (or restored on resume)
        self.masks = [top_fraction_mask(f, self.p) for f in fisher_information(models, batches)]

    def after_backward(self, models: Sequence[nn.Module]) -> None:
        if self.masks is None:
            raise RuntimeError("ChildTuningD.after_backward called before the Fisher pass")
        for model, masks in zip(models, self.masks, strict=True):
            for name, p in model.named_parameters():
                mask = masks.get(name)
                if mask is None or p.grad is None:
                    continue
                if mask.device != p.grad.device:  # a restored mask arrives on the CPU
                    mask = masks[name] = mask.to(p.grad.device)
                p.grad.mul_(mask)

    def kept_fraction(self) -> float:
        if self.masks is None:
            raise RuntimeError("no mask yet: it is computed before the first epoch")
        kept = sum(int(m.sum()) for ms in self.masks for m in ms.values())
        total = sum(m.numel() for ms in self.masks for m in ms.values())
        return kept / total

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "masks": self.masks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["p"] != self.p:
            raise ValueError(f"checkpoint was written with p={state['p']}, not p={self.p}")
        self.masks = state["masks"]


class ChildTuningOptions(Options):
    p: grid(Fraction) = 0.3  # the child network's share of the parameters


def child_tuning_f(sources: Any, num_classes: int, *, in_chans: int | None = None,
                   p: float = 0.3) -> tuple[list, ChildTuningF]:
    objective = ChildTuningF(p=p)
    return build_models(sources, num_classes, in_chans), objective


def child_tuning_d(sources: Any, num_classes: int, *, in_chans: int | None = None,
                   p: float = 0.3) -> tuple[list, ChildTuningD]:
    objective = ChildTuningD(p=p)
    return build_models(sources, num_classes, in_chans), objective


METHODS = (
    Method("childtune-f", "Child-Tuning (task-free)", "baseline", order=50, run="childtune-f",
           recipe=child_tuning_f, options=ChildTuningOptions, on="best"),
    Method("childtune-d", "Child-Tuning (task-driven)", "baseline", order=60, run="childtune-d",
           recipe=child_tuning_d, options=ChildTuningOptions, on="best"),
)
