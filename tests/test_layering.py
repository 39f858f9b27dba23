"""The layers, read from the imports (``ast``, nothing is run):

- ``amcf`` (the method) never imports ``compendium`` (what regenerates the paper);
- inside the compendium, the runs never import the reporting (``compendium.report``): only
  the report stage does;
- no import cycle, in either package.

Every import counts, at any depth (inside functions too), except those under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from compendium.pipeline.deps import imported_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("amcf", "compendium")
REPORT = "compendium.report"
# the one module of the compendium's runs that may use the reporting: the report stage
REPORT_STAGE = "compendium.stages.report"


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the packages under ``root``."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports (``from a import b``: ``a.b`` when it
    is a module, else ``a``; a ``discover("a.b")`` call: every public module of ``a.b``)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = set()
        for target in imported_names(tree, name, path.name == "__init__.py"):
            if target.endswith(".*"):
                package = target[:-2]
                edges |= {m for m in known if m.startswith(package + ".")
                          and not m.rsplit(".", 1)[1].startswith("_")}
            elif target in known:
                edges.add(target)
        # "from a import b" yields both a and a.b: keep the module only
        graph[name] = {e for e in edges if not any(o.startswith(e + ".") for o in edges)} - {name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> dict[str, list[str]]:
    """Every broken rule, as 'module -> what it must not import'."""
    graph = import_graph(root)
    bad = {"amcf imports the compendium": sorted(
        f"{m} -> {t}" for m, ts in graph.items() if m.split(".")[0] == "amcf" for t in ts
        if t.split(".")[0] == "compendium")}
    runs = [m for m in graph if m.startswith("compendium.")
            and not m.startswith(REPORT + ".") and m not in (REPORT, REPORT_STAGE)]
    bad["a run imports the reporting"] = sorted(
        f"{m} -> {t}" for m in runs for t in graph[m] if t == REPORT or t.startswith(REPORT + "."))
    bad["import cycle"] = [" -> ".join(c) for c in cycles(graph)]
    return {rule: found for rule, found in bad.items() if found}


def _stages(root: Path) -> Iterable[str]:
    return (f"compendium.stages.{p.stem}" for p in (root / "compendium/stages").glob("*.py")
            if p.stem not in ("__init__", "report"))


def test_the_packages_keep_their_layers():
    assert violations(ROOT) == {}


@pytest.mark.parametrize("stage", sorted(_stages(ROOT)))
def test_no_training_stage_reaches_the_reporting_even_indirectly(stage):
    reached = reachable(import_graph(ROOT), stage)
    assert not {m for m in reached if m == REPORT or m.startswith(REPORT + ".")}, stage


def test_the_method_imports_only_itself_and_its_runtime_libraries():
    allowed = {"torch", "torchvision", "timm", "numpy", "pydantic", "tqdm", "huggingface_hub",
               "safetensors", "amcf", "__future__"}
    found = set()
    for path in (ROOT / "amcf").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= {n.split(".")[0] for n in imported_names(tree) if n}
    import sys

    assert found - allowed <= set(sys.stdlib_module_names), sorted(found - allowed)


# ---- the rules fail where they should -------------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(("files", "rule"), [
    ({"amcf/loss.py": "def f():\n    from compendium import results\n"},
     "amcf imports the compendium"),
    ({"compendium/stages/amcf.py": "from compendium.report.figures import plot\n",
      "compendium/report/figures.py": ""}, "a run imports the reporting"),
    ({"compendium/results.py": "import compendium.report.collect\n",
      "compendium/report/collect.py": ""}, "a run imports the reporting"),
    ({"amcf/search/memo.py": "from amcf.search import result\n",
      "amcf/search/result.py": "def f():\n    from amcf.search.memo import x\n"},
     "import cycle"),
])
def test_each_rule_catches_its_violation(tmp_path, files, rule):
    assert rule in violations(_tree(tmp_path, files))


def test_type_checking_imports_and_the_report_stage_are_allowed(tmp_path):
    root = _tree(tmp_path, {
        "amcf/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import amcf.b\n",
        "amcf/b.py": "import amcf.a\n",
        "compendium/stages/report.py": "from compendium.report import paper\n",
        "compendium/report/paper_inputs.py": "from compendium import results\n",
        "compendium/results.py": "",
    })
    assert violations(root) == {}
