"""Run a parameterised notebook as a DVC stage.

``dvc.yaml`` cannot interpolate lists or mappings into a command, but it can *unpack* a
mapping from ``params.yaml`` into flags: ``${search}`` becomes ``--particles 10
--fitness.epochs 5 --sources mnist animals``. This module turns such flags back into the
notebook's parameters, so configuration flows one way (``params.yaml`` -> the stage's
command -> the notebook's ``parameters`` cell) and no notebook reads ``params.yaml``.

The notebook's own defaults decide how a flag's values are read: a flag whose default is
a list takes all values that follow it (even one), any other takes exactly one; values are
parsed as YAML scalars (``0.0005`` -> float, ``null`` -> None). Dotted names rebuild nested
mappings. ``--no-name`` sets a boolean to False (DVC's ``parsing.bool: boolean_optional``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml


class NotebookParameterError(ValueError):
    """A flag that the notebook's ``parameters`` cell does not declare, or a bad value."""


def _scalar(text: str) -> Any:
    if text == "None":  # how DVC writes a YAML null into a command
        return None
    value = yaml.safe_load(text)
    # A bare word such as ``resnet50.tv_in1k`` stays a string; so does anything YAML would
    # turn into a date or a mapping, since no notebook parameter is either.
    return value if isinstance(value, (str, int, float, bool, type(None))) else text


def _set_nested(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = target
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise NotebookParameterError(f"--{dotted}: '{part}' is both a value and a mapping")
        node = child
    node[leaf] = value


def parse_flags(argv: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Parse DVC-unpacked flags into notebook parameters, typed by the notebook's defaults.

    ``defaults`` maps each declared parameter name to its default value.
    """
    params: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if not flag.startswith("--") or len(flag) == 2:
            raise NotebookParameterError(f"expected a --name flag, got {flag!r}")
        name = flag[2:].replace("-", "_") if "." not in flag else flag[2:]
        values = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        top = name.split(".")[0]
        negated = top.startswith("no_") and top[3:] in defaults and not values
        if negated:
            name, top = name[3:], top[3:]
        if top not in defaults:
            known = ", ".join(sorted(defaults))
            raise NotebookParameterError(
                f"--{name} is not a parameter of this notebook (its parameters: {known}); "
                "fix the key in params.yaml or add it to the notebook's parameters cell"
            )
        if negated:
            value: Any = False
        elif not values:
            value = True
        elif "." not in name and isinstance(defaults[top], list):
            value = [_scalar(v) for v in values]
        elif len(values) == 1:
            value = _scalar(values[0])
        else:
            value = [_scalar(v) for v in values]
        _set_nested(params, name, value)
    return params


def notebook_defaults(notebook: str | os.PathLike) -> dict[str, Any]:
    """The ``parameters`` cell of a notebook, evaluated: name -> default value."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookParameterError(
            f"{notebook} must have exactly one cell tagged 'parameters', found {len(cells)}"
        )
    namespace: dict[str, Any] = {}
    exec(compile(cells[0].source, f"{notebook}:parameters", "exec"), namespace)  # noqa: S102
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def run(notebook: str, output: str, argv: list[str], *, kernel: str = "python3") -> dict:
    """Execute ``notebook`` with parameters from ``argv`` into ``output``; return them."""
    import papermill

    params = parse_flags(argv, notebook_defaults(notebook))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    papermill.execute_notebook(
        notebook, output, parameters=params, kernel_name=kernel, progress_bar=False,
        cwd=os.getcwd(),
    )
    print(f"{notebook} -> {output} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return params


USAGE = """usage: amcf notebook NOTEBOOK OUTPUT [--name value ...]

Execute a parameterised notebook with papermill (kernel python3). The flags after the two
paths become its parameters, as DVC unpacks a params.yaml mapping into a stage command."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] in {"-h", "--help"}:
        print(USAGE, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        run(argv[0], argv[1], argv[2:])
    except NotebookParameterError as err:
        print(f"amcf notebook: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
