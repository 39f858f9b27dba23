"""Stage dependencies cannot drift: a stage depends on exactly the package files its notebook
may import."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from compendium.pipeline.deps import extra_deps, missing_deps, notebook_modules

ROOT = Path(__file__).resolve().parents[1]


def test_every_stage_depends_on_every_module_its_notebook_imports():
    missing = missing_deps(ROOT)
    assert missing == {}, ("dvc.yaml stages miss code deps (add them; `amcf pipeline "
                           f"check-deps` lists them): {missing}")


def test_no_stage_depends_on_code_it_does_not_run():
    extra = extra_deps(ROOT)
    assert extra == {}, ("dvc.yaml stages list code they never import (remove it; `amcf "
                         f"pipeline check-deps` lists it): {extra}")


def test_indirect_imports_are_followed():
    # the examples: the trainer's batching and augmentation, the objective, and the
    # MC-loss behind it are imported only through other modules
    pretrain = notebook_modules("notebooks/pretrain.ipynb", ROOT)
    for path in ("amcf/datasets.py", "amcf/objective.py", "amcf/loss.py", "amcf/io.py",
                 "amcf/train/fit.py", "compendium/data/__init__.py", "amcf/__init__.py"):
        assert path in pretrain, path
    report = notebook_modules("notebooks/report.ipynb", ROOT)
    # the swarm's one settings schema, reached through the cited settings of the paper
    assert {"compendium/report/macros.py", "amcf/search/settings.py"} <= report
    # every method file, found by the registry's discovery
    assert {"compendium/methods/baselines/l2sp.py", "compendium/methods/ablations/amcf_dml.py",
            "compendium/methods/proposed/amcf_select.py"} <= report
    assert "compendium/cli.py" not in pretrain  # the runner is not the notebook's code
    # the results module names the trainer's result type only for type checkers
    prepare = notebook_modules("notebooks/prepare.ipynb", ROOT)
    assert "compendium/results.py" in prepare and "amcf/train/fit.py" not in prepare


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


def _package(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_type_checking_imports_lazy_exports_and_discovery_are_read_as_python_runs_them(
        tmp_path):
    _package(tmp_path, {
        "amcf/__init__.py": '_EXPORTS = {"Thing": "amcf.thing"}\n',
        "amcf/thing.py": "Thing = 1\n",
        "amcf/heavy.py": "",
        "amcf/light.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from amcf import heavy\nelse:\n    from amcf import thing\n"),
        "compendium/__init__.py": "",
        "compendium/fam/__init__.py": "",
        "compendium/fam/one.py": "",
        "compendium/fam/_helper.py": "",
        "compendium/reg.py": "def discover(p): ...\nALL = discover('compendium.fam')\n",
    })
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "a.ipynb", "from amcf import Thing\n")
    assert notebook_modules("notebooks/a.ipynb", tmp_path) == {"amcf/__init__.py",
                                                               "amcf/thing.py"}
    _notebook(tmp_path / "notebooks" / "b.ipynb", "import amcf.light\n")
    assert notebook_modules("notebooks/b.ipynb", tmp_path) == {
        "amcf/__init__.py", "amcf/light.py", "amcf/thing.py"}  # not amcf/heavy.py
    _notebook(tmp_path / "notebooks" / "c.ipynb", "from compendium import reg\n")
    assert notebook_modules("notebooks/c.ipynb", tmp_path) == {
        "compendium/__init__.py", "compendium/reg.py", "compendium/fam/__init__.py",
        "compendium/fam/one.py"}  # a helper (_helper.py) is not discovered


def test_a_stage_listing_code_it_does_not_run_is_reported(tmp_path):
    _package(tmp_path, {"amcf/__init__.py": "", "amcf/used.py": "", "amcf/unused.py": ""})
    (tmp_path / "notebooks").mkdir()
    _notebook(tmp_path / "notebooks" / "n.ipynb", "from amcf import used\n")
    stage = {"cmd": "amcf notebook notebooks/n.ipynb out.ipynb",
             "deps": ["notebooks/n.ipynb", "amcf/__init__.py", "amcf/used.py", "amcf/unused.py"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))
    assert extra_deps(tmp_path) == {"s": ["amcf/unused.py"]}
    stage["deps"] = ["notebooks/n.ipynb", "amcf"]  # the folder holds unused.py too
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"s": stage}}))
    assert extra_deps(tmp_path) == {"s": ["amcf"]} and missing_deps(tmp_path) == {}
