"""Which source files a stage's notebook runs, and whether ``dvc.yaml`` lists exactly them.

A stage's code dependencies are written by hand in ``dvc.yaml``: a module the notebook
imports (directly, through another module, or inside a function) that the stage does not
list would let an edit to it leave ``dvc status`` clean over stale results; a listed module
it does not import reruns the stage for nothing. This module walks the imports statically
(``ast``, no code is run) and compares them with the deps. It reads imports as Python runs
them:

- ``from a.b import c`` imports ``a/__init__.py``, ``a/b/__init__.py`` and ``a/b/c.py`` when
  ``c`` is a module, else the module a package's lazy export map (``_EXPORTS = {name:
  module}``, see :mod:`amcf._exports`) names for ``c``;
- imports under ``if TYPE_CHECKING:`` never run, so they are skipped;
- ``discover("a.b")`` (:func:`compendium.methods.entry.discover`, with a literal name)
  imports every module of package ``a.b`` whose name does not start with ``_``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

PACKAGES = ("amcf", "compendium")
_NOTEBOOK = re.compile(r"(\S+\.ipynb)")
DISCOVER = "discover"


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


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of ``tree`` that running it may execute: the bodies of ``if TYPE_CHECKING:``
    are left out (their ``else`` is kept)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imported_names(tree: ast.AST, current: str = "", is_package: bool = False) -> set[str]:
    """Dotted names of every module an AST may import, at any depth (functions included).

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule or a lazily
    exported name, resolved later). Relative imports are resolved against ``current``. A
    ``discover("a.b")`` call yields ``a.b.*``: every public module of the package.
    """
    names: set[str] = set()
    for node in _run_nodes(tree):
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
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            arg = node.args[0]
            if name == DISCOVER and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(f"{arg.value}.*")
    return names


def _with_parents(dotted: str) -> list[str]:
    # importing a.b.c runs a/__init__.py and a/b/__init__.py first
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@functools.cache
def _exports(init: Path) -> dict[str, str]:
    """A package ``__init__``'s literal ``_EXPORTS`` map (name -> module), if it has one."""
    tree = ast.parse(init.read_text(encoding="utf-8"), filename=str(init))
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            return {k.value: v.value for k, v in zip(node.value.keys, node.value.values,
                                                       strict=True)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    return {}


def _public_modules(root: Path, package: str) -> list[str]:
    """The modules of ``package`` whose names do not start with ``_`` (what discover finds)."""
    folder = root.joinpath(*package.split("."))
    found = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
    found += [p.parent.name for p in folder.glob("*/__init__.py")]
    return [f"{package}.{name}" for name in sorted(found) if not name.startswith("_")]


def _expand(root: Path, name: str) -> list[str]:
    """The dotted modules importing ``name`` may run (parents first)."""
    if name.endswith(".*"):
        package = name[:-2]
        return [*_with_parents(package), *(n for m in _public_modules(root, package)
                                           for n in _with_parents(m))]
    out = _with_parents(name)
    if _module_file(root, name) is None and "." in name:
        package, attr = name.rsplit(".", 1)
        init = _module_file(root, package)
        if init is not None and init.name == "__init__.py" and attr in _exports(init):
            out += _with_parents(_exports(init)[attr])
    return out


def package_closure(start: Iterable[str], root: Path) -> set[Path]:
    """Every file of the packages that importing the dotted names ``start`` may execute."""
    todo = [n for name in start if name.split(".")[0] in PACKAGES for n in _expand(root, name)]
    seen: set[Path] = set()
    while todo:
        path = _module_file(root, todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found = imported_names(tree, _dotted(root, path), path.name == "__init__.py")
        todo += [n for name in found if name.split(".")[0] in PACKAGES
                 for n in _expand(root, name)]
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


def _code_deps(deps: Iterable[str]) -> list[str]:
    return [d for d in deps if d.split("/")[0] in PACKAGES]


def missing_deps(root: str | os.PathLike = ".") -> dict[str, list[str]]:
    """Per stage of ``root/dvc.yaml``: package files its notebook imports but deps omit."""
    root = Path(root)
    missing = {}
    for name, (notebook, deps) in stage_notebooks(root / "dvc.yaml").items():
        lacking = sorted(m for m in notebook_modules(notebook, root) if not _covered(m, deps))
        if lacking:
            missing[name] = lacking
    return missing


def extra_deps(root: str | os.PathLike = ".") -> dict[str, list[str]]:
    """Per stage: code deps (paths in the packages) that hold no file its notebook imports,
    or a folder that holds a Python file it does not import: an edit there would rerun
    the stage for nothing."""
    root = Path(root)
    extra = {}
    for name, (notebook, deps) in stage_notebooks(root / "dvc.yaml").items():
        used = notebook_modules(notebook, root)
        bad = []
        for dep in _code_deps(deps):
            path = root / dep
            files = ([p.relative_to(root).as_posix() for p in path.rglob("*.py")]
                     if path.is_dir() else [dep])
            if not files or any(f not in used for f in files):
                bad.append(dep)
        if bad:
            extra[name] = sorted(bad)
    return extra


def minimal_deps(notebook: str | os.PathLike, root: str | os.PathLike = ".") -> list[str]:
    """The code deps a stage running ``notebook`` should list: every file it imports, a
    folder in place of its files when it imports every Python file in it (sorted)."""
    root = Path(root)
    used = notebook_modules(notebook, root)
    out: set[str] = set()
    for path in sorted(used):
        parts = Path(path).parts
        chosen = path
        for i in range(1, len(parts) - 1 + 1):  # the widest folder wholly imported
            folder = root.joinpath(*parts[:i])
            if i == 1 or not folder.is_dir():
                continue
            inside = {p.relative_to(root).as_posix() for p in folder.rglob("*.py")}
            if inside <= used:
                chosen = Path(*parts[:i]).as_posix()
                break
        out.add(chosen)
    return sorted(out)


def main(root: str | os.PathLike = ".") -> int:
    """``amcf pipeline check-deps``: print the missing and needless code deps; 1 if any."""
    missing, extra = missing_deps(root), extra_deps(root)
    for stage, files in missing.items():
        print(f"dvc.yaml stage {stage!r} runs code it does not depend on; add to its deps: "
              + ", ".join(files))
    for stage, paths in extra.items():
        print(f"dvc.yaml stage {stage!r} depends on code it does not run; remove from its "
              "deps (or narrow the folder to the files it imports): " + ", ".join(paths))
    if not missing and not extra:
        print("every stage depends on exactly the code its notebook imports: ok")
    return 1 if missing or extra else 0
