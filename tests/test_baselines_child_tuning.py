"""Child-Tuning (Xu et al., EMNLP 2021): gradient masks, task-free (F) and task-driven (D)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium.methods.baselines.childtune import (
    ChildTuningD,
    ChildTuningF,
    fisher_information,
    top_fraction_mask,
)


def _ones_grad(model):
    for p in model.parameters():
        p.grad = torch.ones_like(p)


def _batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g))
            for _ in range(n)]


def test_f_keeps_fraction_p_and_rescales(make_cnn):
    model = make_cnn()
    obj = ChildTuningF(p=0.3)
    obj.setup([model], torch.Generator().manual_seed(0))
    _ones_grad(model)
    obj.after_backward([model])
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    kept = grads != 0
    n = grads.numel()
    assert n > 9_000
    # binomial standard deviation is sqrt(p(1-p)/n) < 0.005 here: 0.025 is 5 of them
    assert kept.float().mean().item() == pytest.approx(0.3, abs=0.025)
    torch.testing.assert_close(grads[kept], torch.full_like(grads[kept], 1 / 0.3))
    # a new mask at every step
    first = kept.clone()
    _ones_grad(model)
    obj.after_backward([model])
    second = torch.cat([p.grad.flatten() for p in model.parameters()]) != 0
    assert (first != second).float().mean().item() == pytest.approx(2 * 0.3 * 0.7, abs=0.03)


def test_f_masks_repeat_for_a_seed_and_resume(make_cnn):
    def masks(obj, model, steps):
        out = []
        for _ in range(steps):
            _ones_grad(model)
            obj.after_backward([model])
            out.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        return out

    model = make_cnn()
    whole = ChildTuningF(p=0.5)
    whole.setup([model], torch.Generator().manual_seed(7))
    expected = masks(whole, model, 3)
    cut = ChildTuningF(p=0.5)
    cut.setup([model], torch.Generator().manual_seed(7))
    masks(cut, model, 1)
    resumed = ChildTuningF(p=0.5)
    resumed.load_state_dict(cut.state_dict())  # before setup, as a restore may come
    resumed.setup([model], torch.Generator().manual_seed(123))
    for a, b in zip(masks(resumed, model, 2), expected[1:], strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="p"):
        ChildTuningF(p=0.0)


def test_fisher_is_mean_squared_gradient_and_leaves_no_trace(make_cnn):
    model = make_cnn()
    batches = _batches()
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    ref = copy.deepcopy(model)
    for x, y in batches:
        ref.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        for n, p in ref.named_parameters():
            expected[n] += p.grad**2 / len(batches)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.eval()
    fisher = fisher_information([model], batches)[0]
    assert set(fisher) == {n for n in expected if not n.startswith("fc.")}  # head left out
    for n, f in fisher.items():
        torch.testing.assert_close(f, expected[n])
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n])
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_top_fraction_mask_keeps_exactly_the_top_scores():
    g = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(10, 7, generator=g), "b": torch.rand(33, generator=g)}
    masks = top_fraction_mask(scores, 0.3)
    flat_s = torch.cat([s.flatten() for s in scores.values()])
    flat_m = torch.cat([m.flatten() for m in masks.values()])
    assert int(flat_m.sum()) == round(0.3 * flat_s.numel())
    assert flat_s[flat_m].min() > flat_s[~flat_m].max()


def test_d_masked_weights_do_not_move(make_cnn):
    model = make_cnn()
    obj = ChildTuningD(p=0.2)
    obj.before_epoch([model], 1, _batches())
    assert obj.kept_fraction() == pytest.approx(0.2, abs=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = _batches(1, seed=1)[0]
    F.cross_entropy(model(x), y).backward()
    obj.after_backward([model])
    opt.step()
    kept_moved = []
    for n, p in model.named_parameters():
        moved = p.detach() != before[n]
        if n.startswith("fc."):
            assert moved.float().mean() > 0.9  # the new head is outside the mask
        else:
            mask = obj.masks[0][n]
            assert not moved[~mask].any()
            kept_moved.append(moved[mask])
    assert torch.cat(kept_moved).float().mean() > 0.9
    # computed once: later epochs keep the same mask
    kept = {n: m.clone() for n, m in obj.masks[0].items()}
    obj.before_epoch([model], 2, _batches(seed=5))
    assert all(torch.equal(obj.masks[0][n], m) for n, m in kept.items())


def _body_change(model, start):
    pairs = zip(model.named_parameters(), start, strict=True)
    changed = [(p.detach() != s).flatten() for (n, p), s in pairs if not n.startswith("fc.")]
    return torch.cat(changed)


def test_fit_updates_only_the_child_network(digits, make_cnn):
    config = TrainConfig(epochs=1, batch_size=300, momentum=0.0, weight_decay=0.0,
                         progress=False, eval_test=False)
    model = make_cnn()
    start = [p.detach().clone() for p in model.parameters()]
    obj = ChildTuningD(p=0.25)
    fit([model], digits, config, obj)
    changed = _body_change(model, start)
    mask = torch.cat([m.flatten() for n, m in obj.masks[0].items()])
    assert not changed[~mask].any()
    assert changed.float().mean().item() == pytest.approx(0.25, abs=0.03)

    # task-free: 3 steps with fresh masks touch about 1 - (1 - p)^3 of the weights
    model = make_cnn()
    start = [p.detach().clone() for p in model.parameters()]
    fit([model], digits, config, ChildTuningF(p=0.1))
    frac = _body_change(model, start).float().mean().item()
    assert frac == pytest.approx(1 - 0.9**3, abs=0.03)
