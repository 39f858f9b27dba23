"""What a stage pays before and after its work: the runner's imports, the kernel's and the
workers' ends, and the libraries a stage's process loads without using them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from compendium.pipeline import fanout

ROOT = Path(__file__).resolve().parents[1]
CYCLE = """
import sys
class Cycle:
    def __init__(self):
        self.me = self
    def __del__(self):
        print("collected", flush=True)
kept = Cycle()
if sys.argv[1] == "frozen":
    from compendium.pipeline import freeze_at_exit
    freeze_at_exit()
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_frozen_process_leaves_its_objects_uncollected_at_exit():
    """What freeze_at_exit trades: the teardown's collections (seconds, for a kernel that
    loaded torch) against finalisers of objects in cycles, which then never run."""
    assert _python(CYCLE, "plain").split() == ["collected"]
    assert _python(CYCLE, "frozen").split() == []


def test_local_workers_freeze_at_exit(monkeypatch):
    calls = []
    monkeypatch.setattr(fanout.numerics, "apply", lambda: calls.append("policy"))
    monkeypatch.setattr("compendium.pipeline.freeze_at_exit", lambda: calls.append("freeze"))
    monkeypatch.setenv(fanout.IN_WORKER_ENV, "")
    fanout._init_worker()
    assert calls == ["policy", "freeze"]


def test_the_runner_starts_the_kernel_with_its_exit_line_and_validates(tmp_path):
    """``amcf notebook``: the kernel ran KERNEL_START before the first cell (and kept no name
    from it), the parameters arrive, and nbformat still refuses a broken notebook although the
    runner never loads the IRI grammars."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import sys\nprint(x, 'compendium.pipeline' in sys.modules, '_p' in dir())")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    out = _python(
        "import sys\nfrom compendium.pipeline import notebook\n"
        "notebook.main(sys.argv[1:])\n"
        "import nbformat\n"
        "bad = nbformat.v4.new_notebook()\nbad.cells = [{'cell_type': 'code'}]\n"
        "try:\n    nbformat.validate(bad)\nexcept nbformat.ValidationError:\n"
        "    print('refused')\n"
        "print(sys.modules.get('rfc3987_syntax', 'absent'))\n",
        str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), "--x", "7")
    assert out.split()[-2:] == ["refused", "None"]
    cells = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
    printed = "".join(o.get("text", "") for c in cells for o in c.get("outputs", []))
    assert printed.split() == ["7", "True", "False"]


@pytest.mark.parametrize(("imports", "unused"), [
    # what a training stage's local workers import to run its trainings: they draw nothing
    ("import compendium.stages.search, compendium.stages.amcf, compendium.stages.baselines, "
     "compendium.stages.ablations", ("pandas", "matplotlib")),
    # the prepare stage's imports, for the embedded default's tensor datasets
    ("import compendium.stages.prepare", ("torchvision", "pandas")),
    # the report's: it reads results and the registry of methods, and builds no model
    ("import compendium.stages.report, compendium.report.collect, compendium.report.claims, "
     "compendium.report.tables", ("timm", "torchvision")),
])
def test_a_stage_loads_no_library_it_does_not_use(imports, unused):
    loaded = _python(f"import sys\n{imports}\n"
                     f"print([m for m in {unused!r} if m in sys.modules])")
    assert loaded.strip() == "[]"


def test_a_stage_ends_its_local_workers_when_it_returns_or_raises(monkeypatch):
    """Workers, or the resource tracker beside them, left to the end of a stage's kernel held
    its shutdown up by about 2.6 s (the tracker ignores the kernel's SIGTERM)."""
    import math
    from functools import partial

    import psutil

    fanout.end_local_workers()  # a pool (and tracker) that an earlier test left running
    others = {p.pid for p in psutil.Process().children(recursive=True)}  # earlier tests'

    def children() -> set[int]:
        return {p.pid for p in psutil.Process().children(recursive=True)} - others

    monkeypatch.setenv(fanout.LOCAL_WORKERS_ENV, "2")

    @fanout.ends_local_workers
    def stage(fail: bool) -> list[float]:
        out = fanout.run_all([partial(math.sqrt, float(i)) for i in (4, 9, 16)])
        assert fanout._POOLS and len(children()) == 3  # two workers and the tracker
        if fail:
            raise RuntimeError("a stage that fails")
        return out

    assert stage(False) == [2.0, 3.0, 4.0]
    assert not fanout._POOLS and not children()
    with pytest.raises(RuntimeError, match="fails"):
        stage(True)
    assert not fanout._POOLS and not children()
