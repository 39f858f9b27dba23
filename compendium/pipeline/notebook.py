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
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml


class NotebookParameterError(ValueError):
    """A flag that the notebook's ``parameters`` cell does not declare, or a bad value."""


_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _scalar(text: str) -> Any:
    if text == "None":  # how DVC writes a YAML null into a command
        return None
    if _NUMBER.fullmatch(text):
        # YAML 1.1 reads "1e-05" (how Python, and so DVC, writes 0.00001) as a string
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    value = yaml.safe_load(text)
    if isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
        return value  # a list typed by hand as one argument, e.g. --scheme '[9, 0, 0]'
    # A bare word such as ``resnet50.tv_in1k`` stays a string; so does anything YAML would
    # turn into a date or a mapping, since no notebook parameter is either.
    return value if isinstance(value, (str, int, float, bool, type(None))) else text


def _kind(default: Any) -> str | None:
    """What a parameter's values must be, judged by its default (None: anything)."""
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "text"
    return None


def _fits(value: Any, kind: str | None) -> bool:
    if value is None or kind in (None, "text"):
        return True
    if kind == "true or false":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "an integer" else isinstance(value, (int, float))


def _default_of(defaults: dict[str, Any], dotted: str) -> Any:
    node: Any = defaults
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _typed(name: str, texts: list[str], default: Any) -> Any:
    """The values of ``--name``, checked against the type of the notebook's default."""
    if isinstance(default, list):
        kinds = {_kind(d) for d in default}
        kind = kinds.pop() if len(kinds) == 1 else None
        values = [_scalar(t) for t in texts]
        if len(values) == 1 and isinstance(values[0], list):
            values = values[0]
        wrong = [t for t, v in zip(texts, values, strict=False) if not _fits(v, kind)]
        if wrong:
            raise NotebookParameterError(
                f"--{name} {' '.join(texts)}: every value must be {kind} (the notebook's "
                f"default is {default!r}); fix the list in params.yaml")
        return [float(v) if kind == "a number" and v is not None else v for v in values]
    value = _scalar(texts[0]) if len(texts) == 1 else [_scalar(t) for t in texts]
    kind = _kind(default)
    if kind == "text" and isinstance(value, (int, float, bool)) and len(texts) == 1:
        return texts[0]  # e.g. a dataset named 2024: the notebook wants its name as text
    if isinstance(value, list) and kind is not None:
        raise NotebookParameterError(
            f"--{name} got {len(texts)} values {texts} but takes one ({kind}, like the "
            f"notebook's default {default!r}); fix the value in params.yaml")
    if kind == "an integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # 12.0 epochs is 12, as pydantic reads it
    if not _fits(value, kind):
        raise NotebookParameterError(
            f"--{name} {texts[0]!r} is not {kind} (the notebook's default is {default!r}); "
            "fix the value in params.yaml (or on the command line)")
    return float(value) if kind == "a number" and value is not None else value


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
        default = _default_of(defaults, name)
        if negated or not values:
            if not isinstance(default, bool) and default is not None:
                raise NotebookParameterError(
                    f"--{name} has no value, but the notebook's default is {default!r}; "
                    "give it a value in params.yaml")
            value: Any = not negated
        else:
            value = _typed(name, values, default)
        _set_nested(params, name, value)
    return params


def dropped_by_dvc(tree: Any, prefix: str = "") -> list[str]:
    """Key paths of the empty lists in a params tree.

    DVC's unpacking turns ``seeds: [0, 1]`` into ``--seeds 0 1`` but drops ``seeds: []``
    altogether, so the notebook would silently run with its own (demo) default instead.
    """
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in dropped_by_dvc(v, f"{prefix}{k}.")]
    if isinstance(tree, list) and not tree:
        return [prefix.rstrip(".")]
    return []


def _refuse_dropped_lists() -> None:
    """Under ``dvc repro`` (which sets DVC_ROOT), stop when params.yaml holds an empty list."""
    root = os.environ.get("DVC_ROOT")
    params = Path(root or ".") / "params.yaml"
    if not root or not params.is_file():
        return
    empty = dropped_by_dvc(yaml.safe_load(params.read_text(encoding="utf-8")) or {})
    if empty:
        raise NotebookParameterError(
            f"{params} has empty lists ({', '.join(empty)}); DVC drops an empty list when it "
            "unpacks params into a stage's flags, so the notebook would run with its demo "
            "defaults instead. Fix: give each at least one value, or remove the method that "
            "uses it")


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


# what the stage's kernel runs before the notebook's first cell (see freeze_at_exit)
KERNEL_START = "import compendium.pipeline as _p; _p.freeze_at_exit(); del _p"


def _without_iri_grammars() -> None:
    """Keep jsonschema from compiling rfc3987-syntax's IRI grammars in this process.

    papermill loads nbformat, which loads jsonschema, which builds 39 lark grammars for its
    ``iri`` format checks when the optional rfc3987-syntax is installed (JupyterLab's
    jupyter-events brings it): 1-2 s of every stage's start. nbformat validates notebooks
    without format checks, so the runner needs none of them.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # None: importing it fails at once


def run(notebook: str, output: str, argv: list[str], *, kernel: str = "python3") -> dict:
    """Execute ``notebook`` with parameters from ``argv`` into ``output``; return them."""
    _without_iri_grammars()
    import papermill

    from amcf import numerics

    # the kernel inherits the policy's variables, so its libraries read them before its first
    # torch or NumPy operation (the notebook's first cell then applies the rest)
    numerics.check_cpu()
    numerics.set_environment()
    _refuse_dropped_lists()
    params = parse_flags(argv, notebook_defaults(notebook))
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    papermill.execute_notebook(
        notebook, output, parameters=params, kernel_name=kernel, progress_bar=False,
        cwd=os.getcwd(), extra_arguments=[f"--IPKernelApp.exec_lines={KERNEL_START}"],
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
    from amcf.numerics import NumericsError

    try:
        run(argv[0], argv[1], argv[2:])
    except (NotebookParameterError, NumericsError) as err:
        print(f"amcf notebook: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
