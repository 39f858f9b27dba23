"""Which ``amcf`` source files a stage's notebook runs, and whether ``dvc.yaml`` lists them.

A stage's code dependencies are written by hand in ``dvc.yaml``; a module the notebook
imports (directly, or through another module, or inside a function) but the stage does not
list would let an edit to it leave ``dvc status`` clean over stale results. This module
walks the imports statically (``ast``, no code is run) and compares them with the deps.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "amcf"
_NOTEBOOK = re.compile(r"(\S+\.ipynb)")


def _module_file(root: Path, dotted: str) -> Path | None:
    """``a.b.c`` -> a/b/c.py (or a/b/c/__init__.py), if it exists."""
    base = root.joinpath(*dotted.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _dotted(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_names(tree: ast.AST, current: str = "", is_package: bool = False) -> set[str]:
    """Dotted names of every module an AST may import, at any depth (functions included).

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule; names that
    are not modules are dropped later). Relative imports are resolved against ``current``.
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = current.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _with_parents(dotted: str) -> list[str]:
    # importing a.b.c runs a/__init__.py and a/b/__init__.py first
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def package_closure(start: Iterable[str], root: Path) -> set[Path]:
    """Every file of the package that importing the dotted names ``start`` may execute."""
    todo = [n for name in start if name.split(".")[0] == PACKAGE for n in _with_parents(name)]
    seen: set[Path] = set()
    while todo:
        path = _module_file(root, todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = imported_names(tree, _dotted(root, path), path.name == "__init__.py")
        todo += [n for name in found if name.split(".")[0] == PACKAGE
                 for n in _with_parents(name)]
    return seen


def notebook_code(notebook: str | os.PathLike) -> str:
    """The source of a notebook's code cells (IPython magics and shell lines dropped)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [ln for ln in cell.source.splitlines()
                      if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def notebook_modules(notebook: str | os.PathLike, root: str | os.PathLike = ".") -> set[str]:
    """The package files (relative POSIX paths) that running ``notebook`` may import."""
    root = Path(root)
    tree = ast.parse(notebook_code(root / notebook), filename=str(notebook))
    files = package_closure(imported_names(tree), root)
    return {p.relative_to(root).as_posix() for p in files}


def _covered(path: str, deps: Iterable[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def _dep_paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def stage_notebooks(dvc_yaml: str | os.PathLike) -> dict[str, tuple[str, list[str]]]:
    """stage name -> (the notebook its command runs, its deps as written in dvc.yaml)."""
    spec = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8"))
    out = {}
    for name, stage in (spec.get("stages") or {}).items():
        body = stage.get("do", stage)
        match = _NOTEBOOK.search(str(body.get("cmd", "")))
        if match:
            out[name] = (match.group(1), _dep_paths(body.get("deps")))
    return out


def missing_deps(root: str | os.PathLike = ".") -> dict[str, list[str]]:
    """Per stage of ``root/dvc.yaml``: package files its notebook imports but deps omit."""
    root = Path(root)
    missing = {}
    for name, (notebook, deps) in stage_notebooks(root / "dvc.yaml").items():
        lacking = sorted(m for m in notebook_modules(notebook, root) if not _covered(m, deps))
        if lacking:
            missing[name] = lacking
    return missing


def main(root: str | os.PathLike = ".") -> int:
    """``amcf pipeline check-deps``: print the missing code deps; 1 if any."""
    missing = missing_deps(root)
    for stage, files in missing.items():
        print(f"dvc.yaml stage {stage!r} runs code it does not depend on; add to its deps: "
              + ", ".join(files))
    if not missing:
        print("every stage depends on every amcf module its notebook imports: ok")
    return 1 if missing else 0
