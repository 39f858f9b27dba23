"""A killed baseline run resumes bit-identically: the objectives' state survives checkpoint.pt
(L2-SP's starting point, Child-Tuning's mask generator and Fisher mask, AdaFilter's noise)."""

import pytest
import timm
import torch

import amcf.models  # noqa: F401  (registers amcf_resnet_tiny)
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium.methods.baselines.adafilter import AdaFilterNet
from compendium.methods.baselines.childtune import ChildTuningD, ChildTuningF
from compendium.methods.baselines.l2sp import L2SP


class _Kill(Exception):
    pass


def _kill_after(last):
    def callback(epoch, row):
        if epoch == last:
            raise _Kill

    return callback


def _adafilter():
    torch.manual_seed(0)
    return AdaFilterNet(timm.create_model("amcf_resnet_tiny", num_classes=10, in_chans=1))


CASES = {
    "l2sp": (lambda make_cnn: make_cnn(), lambda: L2SP(alpha=1.0, beta=0.1)),
    "child_tuning_f": (lambda make_cnn: make_cnn(), lambda: ChildTuningF(p=0.3)),
    "child_tuning_d": (lambda make_cnn: make_cnn(), lambda: ChildTuningD(p=0.3)),
    "adafilter": (lambda make_cnn: _adafilter(), lambda: MCLoss(lam=0.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_killed_run_resumes_bit_identically(name, digits, make_cnn, tmp_path):
    build, objective = CASES[name]
    config = TrainConfig(epochs=2, batch_size=128, progress=False, eval_test=False,
                         checkpoint_every=1)
    whole = build(make_cnn)
    fit([whole], digits, config, objective(), out_dir=tmp_path / "whole")
    with pytest.raises(_Kill):
        fit([build(make_cnn)], digits, config, objective(), out_dir=tmp_path / "cut",
            callback=_kill_after(1))
    resumed = build(make_cnn)
    result = fit([resumed], digits, config, objective(), out_dir=tmp_path / "cut")
    assert result.resumed_from_epoch == 1
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
