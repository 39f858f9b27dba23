"""Stage dependencies cannot drift: every amcf file a stage's notebook may import is a dep."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from compendium.pipeline.deps import missing_deps, notebook_modules

ROOT = Path(__file__).resolve().parents[1]


def test_every_stage_depends_on_every_amcf_module_its_notebook_imports():
    missing = missing_deps(ROOT)
    assert missing == {}, ("dvc.yaml stages miss code deps (add them; `amcf pipeline "
                           f"check-deps` lists them): {missing}")


def test_indirect_imports_are_followed():
    # the examples: the trainer's batching and augmentation, the objective, and the
    # MC-loss behind it are imported only through other modules
    pretrain = notebook_modules("notebooks/pretrain.ipynb", ROOT)
    for path in ("amcf/datasets.py", "amcf/objective.py", "amcf/loss.py", "amcf/io.py",
                 "amcf/train/fit.py", "compendium/data/__init__.py", "amcf/__init__.py"):
        assert path in pretrain, path
    assert "compendium/params.py" in notebook_modules("notebooks/report.ipynb", ROOT)
    assert "compendium/cli.py" not in pretrain  # the runner is not the notebook's code


def _notebook(path: Path, source: str) -> None:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                     "outputs": [], "source": source}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def test_a_stage_missing_an_indirect_import_is_reported(tmp_path):
    pkg = tmp_path / "amcf"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import low\n")
    (pkg / "sub" / "low.py").write_text("X = 1\n")
    (pkg / "top.py").write_text("def f():\n    from amcf.sub import low\n    return low.X\n")
    (pkg / "unused.py").write_text("")
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "n.ipynb", "%matplotlib inline\nfrom amcf import top\n")
    stage = {"cmd": "amcf notebook notebooks/n.ipynb out.ipynb",
             "deps": ["notebooks/n.ipynb", "amcf/__init__.py", "amcf/top.py"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))
    assert missing_deps(tmp_path) == {"s": ["amcf/sub/__init__.py", "amcf/sub/low.py"]}
    stage["deps"].append("amcf/sub")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))
    assert missing_deps(tmp_path) == {}
