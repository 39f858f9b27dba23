"""The notebooks as committed, and the one-way flow params.yaml -> dvc.yaml -> notebook.

nbval executes the notebooks themselves (see the Makefile's `notebooks` target); these
tests check what must hold before anything runs.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import nbformat
import pytest

from compendium.pipeline.notebook import notebook_defaults, parse_flags

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_stage_kind_has_a_notebook():
    names = {nb.stem for nb in NOTEBOOKS}
    assert {"prepare", "pretrain", "search", "amcf", "baselines", "ablations", "report"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_carries_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; run nbstripout on it"
    assert "papermill" not in nb.metadata, f"{path.name} is an executed copy, not a source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_and_no_params_yaml(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "exactly one parameters cell, first"
    assert all("params.yaml" not in c.source for c in code), "notebooks never read params.yaml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_defaults_write_only_to_the_scratch_area(path):
    # the defaults are for JupyterLab and nbval: they must not overwrite pipeline outputs
    defaults = notebook_defaults(path)
    outputs = {k: v for k, v in defaults.items()
               if k in {"out_dir", "results_dir", "paper_dir", "checkpoint", "work_dir"}
               and not (path.stem == "report" and k == "results_dir")}
    assert outputs, f"{path.name} declares no output location"
    for name, value in outputs.items():
        assert str(value).startswith("build/scratch/"), f"{path.name}: {name}={value!r}"


def _stage_commands() -> dict[str, str]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {s.addressing: s.cmd for s in repo.index.stages if getattr(s, "cmd", None)}


def test_every_stage_passes_only_parameters_its_notebook_declares():
    commands = _stage_commands()
    notebook_stages = {a: c for a, c in commands.items() if c.startswith("amcf notebook ")}
    assert len(notebook_stages) == len(commands) - 1  # all but LaTeX
    for address, cmd in notebook_stages.items():
        # dvc.lock folds long commands and loses one of two spaces at a fold, after which
        # the stage looks changed forever: an empty ${mapping} must not leave a double space
        assert "  " not in cmd, f"{address}: double space in its command"
        argv = shlex.split(cmd)
        notebook, flags = argv[2], argv[4:]
        params = parse_flags(flags, notebook_defaults(ROOT / notebook))  # raises if undeclared
        defaults = notebook_defaults(ROOT / notebook)
        for name, value in params.items():
            if isinstance(defaults[name], dict) and name not in ("options",):
                assert isinstance(value, dict), f"{address}: --{name} must be a mapping"
