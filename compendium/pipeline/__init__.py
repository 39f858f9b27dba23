"""Glue between the DVC pipeline and the notebooks: run a notebook as a stage."""

from __future__ import annotations

import os
from pathlib import Path


def at_project_root(start: str | os.PathLike | None = None) -> Path:
    """Change to the compendium's root (the folder with ``dvc.yaml``) and return it.

    JupyterLab and nbval start a notebook's kernel in the notebook's own folder, papermill
    in the folder it was called from; the notebooks' paths are relative to the root, so
    each notebook calls this first and runs the same from anywhere inside the repository.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            os.chdir(folder)
            return folder
    raise FileNotFoundError(
        f"no dvc.yaml in {here} or above it: open the notebook from inside the amcf "
        "repository (or copy dvc.yaml beside your own notebooks)"
    )
