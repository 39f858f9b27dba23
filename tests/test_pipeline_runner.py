"""The notebook parameter bridge: DVC-unpacked flags back into notebook parameters."""

from __future__ import annotations

import pytest

from compendium.pipeline.notebook import NotebookParameterError, parse_flags

DEFAULTS = {
    "target": "digits",
    "seeds": [0],
    "pso": {"particles": 10},
    "sources": {"mnist": {"arch": "x"}},
    "epochs": 5,
    "lam": 0.2,
    "freeze_bn_stats": False,
    "weights": None,
}


def test_flags_are_typed_by_the_notebooks_defaults():
    argv = ("--target omniglot-small --seeds 3 --pso.particles 4 --pso.w_start 1.4 "
            "--sources.mnist.arch amcf_resnet_tiny --sources.mnist.weights build/m.pt "
            "--epochs 7 --lam 0.0005 --freeze_bn_stats --weights None").split()
    params = parse_flags(argv, DEFAULTS)
    assert params == {
        "target": "omniglot-small",
        "seeds": [3],  # one value, but the default is a list
        "pso": {"particles": 4, "w_start": 1.4},
        "sources": {"mnist": {"arch": "amcf_resnet_tiny", "weights": "build/m.pt"}},
        "epochs": 7,
        "lam": 0.0005,
        "freeze_bn_stats": True,
        "weights": None,
    }
    assert parse_flags(["--no-freeze_bn_stats"], DEFAULTS) == {"freeze_bn_stats": False}
    assert parse_flags(["--seeds", "0", "1", "2"], DEFAULTS) == {"seeds": [0, 1, 2]}


def test_an_undeclared_flag_names_the_known_parameters():
    with pytest.raises(NotebookParameterError, match="--epoch is not a parameter.*epochs"):
        parse_flags(["--epoch", "3"], DEFAULTS)


