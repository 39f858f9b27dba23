"""The MC-loss against numbers worked out by hand (docs/method.md, "The collaborative loss").

The logits are chosen so that every distance to the models' mean is a whole number, and the
arithmetic is written beside each expected value. Every check is also run on four plausible
mistakes (squared norm, detached mean, sum over models, sum over the batch): each one must
fail at least one check, so a regression to any of them cannot pass this file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from amcf.loss import collaborative_loss, collaborative_penalty

Penalty = Callable[[Sequence[Tensor]], Tensor]

# K = 2, B = 2, C = 2.
#   sample 1: z1 = (3, 0), z2 = (0, 4); mean (1.5, 2); z1 - mean = (1.5, -2), |.| = 2.5, and
#             z2 - mean = (-1.5, 2), |.| = 2.5; mean over the 2 models: 2.5
#   sample 2: z1 = (0, 0), z2 = (6, 8); mean (3, 4); both distances sqrt(9 + 16) = 5; mean 5
#   penalty = mean over the batch = (2.5 + 5) / 2 = 3.75
#   (for K = 2 it is half the distance between the two models: 0.5 * 5 and 0.5 * 10)
K2 = [[[3.0, 0.0], [0.0, 0.0]],
      [[0.0, 4.0], [6.0, 8.0]]]
K2_PENALTY = (2.5 + 5.0) / 2
K2_LABELS = [0, 1]
# cross-entropy of one sample = log(sum_c exp(z_c)) - z_y
#   model 1: sample 1 log(e^3 + e^0) - 3 = log(1 + e^-3); sample 2 log(e^0 + e^0) - 0 = log 2
#   model 2: sample 1 log(e^0 + e^4) - 0 = log(1 + e^4); sample 2 log(e^6 + e^8) - 8
#            = log(1 + e^-2); each model's CE is the mean over the batch
K2_CE = ((math.log1p(math.exp(-3)) + math.log(2)) / 2
         + (math.log1p(math.exp(4)) + math.log1p(math.exp(-2))) / 2)
# d penalty / d z1 of one sample = (1/B) * (1/2) * (z1 - z2) / |z1 - z2|
#   sample 1: (1/2)(1/2) (3, -4) / 5 = (0.15, -0.2);  sample 2: (1/4)(-6, -8) / 10 = (-0.15, -0.2)
#   and d / d z2 is the negative (the penalty depends on z1 - z2 only)
K2_GRAD_Z1 = [[0.15, -0.2], [-0.15, -0.2]]

# K = 3, B = 1, C = 2: z1 = (4, 5), z2 = (-2, 5), z3 = (1, -7); mean (3/3, 3/3) = (1, 1)
#   residuals r1 = (3, 4), r2 = (-3, 4), r3 = (0, -8); distances 5, 5, 8
#   penalty = (5 + 5 + 8) / 3 = 6
K3 = [[[4.0, 5.0]], [[-2.0, 5.0]], [[1.0, -7.0]]]
K3_PENALTY = (5 + 5 + 8) / 3
# Unit residuals e1 = (0.6, 0.8), e2 = (-0.6, 0.8), e3 = (0, -1); their sum s = (0, 0.6).
# The mean depends on every z_i, so d/dz_i (1/K) sum_j |z_j - mean| = (1/K)(e_i - s/K):
#   z1: (1/3)((0.6, 0.8) - (0, 0.2)) = (0.2, 0.2)
#   z2: (1/3)((-0.6, 0.8) - (0, 0.2)) = (-0.2, 0.2)
#   z3: (1/3)((0, -1) - (0, 0.2)) = (0, -0.4)
# With the mean detached the s/K term is missing: z1 would get (0.2, 0.8/3) instead.
# (At K = 2, s = e1 + e2 = 0, so detaching changes nothing there: K = 3 is needed.)
K3_GRAD = [[[0.2, 0.2]], [[-0.2, 0.2]], [[0.0, -0.4]]]


def _logits(values) -> list[Tensor]:
    return [torch.tensor(z, dtype=torch.float64, requires_grad=True) for z in values]


def _mismatches(penalty: Penalty) -> list[str]:
    """The hand-worked checks that ``penalty`` fails (empty: it is the paper's term)."""
    failed = []
    z = _logits(K2)
    value = penalty(z)
    if not math.isclose(value.item(), K2_PENALTY, abs_tol=1e-6):
        failed.append(f"K=2 value {value.item()} != {K2_PENALTY}")
    value.backward()
    if not torch.allclose(z[0].grad, torch.tensor(K2_GRAD_Z1, dtype=torch.float64), atol=1e-6):
        failed.append(f"K=2 gradient {z[0].grad.tolist()} != {K2_GRAD_Z1}")
    z = _logits(K3)
    value = penalty(z)
    if not math.isclose(value.item(), K3_PENALTY, abs_tol=1e-6):
        failed.append(f"K=3 value {value.item()} != {K3_PENALTY}")
    value.backward()
    for j, expected in enumerate(K3_GRAD):
        if not torch.allclose(z[j].grad, torch.tensor(expected, dtype=torch.float64), atol=1e-6):
            failed.append(f"K=3 gradient of z{j + 1} {z[j].grad.tolist()} != {expected}")
    return failed


def _distances(logits: Sequence[Tensor], detach: bool = False, squared: bool = False) -> Tensor:
    z = torch.stack(list(logits))  # (K, B, C)
    mean = z.mean(dim=0, keepdim=True)
    sq = (z - (mean.detach() if detach else mean)).pow(2).sum(dim=-1)  # (K, B)
    return sq if squared else sq.sqrt()


MISTAKES: dict[str, Penalty] = {
    "squared norm": lambda z: _distances(z, squared=True).mean(dim=0).mean(),
    "detached mean": lambda z: _distances(z, detach=True).mean(dim=0).mean(),
    "sum over models": lambda z: _distances(z).sum(dim=0).mean(),
    "sum over the batch": lambda z: _distances(z).mean(dim=0).sum(),
}


def test_penalty_matches_the_hand_worked_values_and_gradients():
    assert _mismatches(collaborative_penalty) == []


@pytest.mark.parametrize("name", MISTAKES)
def test_each_plausible_mistake_fails_a_hand_worked_check(name):
    assert _mismatches(MISTAKES[name]), f"a {name} would pass the checks above"


def test_detaching_the_mean_is_caught_by_the_gradient_alone():
    # same value, different gradient: only the K = 3 gradient check tells them apart
    z = _logits(K3)
    assert MISTAKES["detached mean"](z).item() == pytest.approx(K3_PENALTY)
    failed = _mismatches(MISTAKES["detached mean"])
    assert failed and all("gradient" in f and "K=3" in f for f in failed)


def test_mc_loss_is_the_models_cross_entropy_plus_lambda_times_the_penalty():
    z = _logits(K2)
    y = torch.tensor(K2_LABELS)
    # lam = 0.2: K2_CE + 0.2 * 3.75 = K2_CE + 0.75
    loss = collaborative_loss(z, y, lam=0.2)
    assert loss.item() == pytest.approx(K2_CE + 0.75, abs=1e-6)
    assert collaborative_loss(z, y, lam=0.0).item() == pytest.approx(K2_CE, abs=1e-9)
    assert collaborative_loss(z, y, lam=1.0).item() == pytest.approx(K2_CE + 3.75, abs=1e-6)
    # the penalty's gradient reaches the logits scaled by lam, on top of cross-entropy's
    loss.backward()
    ce_only = _logits(K2)
    sum(F.cross_entropy(zj, y) for zj in ce_only).backward()
    expected = ce_only[0].grad + 0.2 * torch.tensor(K2_GRAD_Z1, dtype=torch.float64)
    torch.testing.assert_close(z[0].grad, expected, atol=1e-6, rtol=0)


def test_one_model_has_no_penalty_and_finite_gradients():
    z = _logits([[[1.0, 2.0], [3.0, -1.0]]])
    value = collaborative_penalty(z)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(z[0].grad).all()
    # the K = 1 MC-loss is plain cross-entropy, whatever lam is
    y = torch.tensor([1, 0])
    assert collaborative_loss(z, y, lam=5.0).item() == pytest.approx(
        F.cross_entropy(z[0], y).item())


def test_identical_models_have_zero_penalty_and_finite_gradients():
    # every residual is zero: the norm's gradient is undefined there, vector_norm takes 0
    z = _logits([[[2.0, -1.0]], [[2.0, -1.0]], [[2.0, -1.0]]])
    value = collaborative_penalty(z)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-5)
    assert all(torch.isfinite(zj.grad).all() for zj in z)


def test_penalty_takes_no_root_through_torch_sqrt():
    # torch.sqrt on a CPU is MKL's vector maths, whose last bits differ between Intel and AMD
    # CPUs under the numerical policy (docs/numerics.md): the penalty must not call it
    from torch.overrides import TorchFunctionMode

    called = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            called.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    z = _logits(K3)
    with Record():
        collaborative_penalty(z).backward()
    assert called, "the recorder saw no call"
    assert not {"sqrt", "sqrt_", "rsqrt"} & set(called), called
