"""Glue between the DVC pipeline and the notebooks: run a notebook as a stage."""

from __future__ import annotations

import atexit
import gc
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


def freeze_at_exit() -> None:
    """Leave this process's objects to the operating system when it exits.

    A stage's kernel or worker that loaded torch, timm and torchvision holds about half a
    million objects, and the garbage collections of Python's teardown over them took 1-3 s
    at the end of every stage (the runner waits for its kernel, the kernel for its workers).
    Frozen by the last exit handler, they are not collected: the process ends as soon as the
    other handlers have run. Nothing is lost: every output is written and closed by the code
    that makes it (:mod:`amcf.io`), never left to a finaliser.
    """
    atexit.register(gc.freeze)
