"""What every stage pays besides its work: start-up and end, per stage kind.

    python benchmarks/startup.py [--repeat 3] [--code ROOT] [--out FILE]

For each stage notebook in ``ROOT/notebooks`` it runs, through ``amcf notebook`` as DVC
does, a copy that keeps only the notebook's parameters and its first cell (the policy and
the imports), and splits the wall time into

- launch: the runner's process (Python, papermill) around papermill's run,
- kernel: the kernel's start and end (papermill's duration less its cells' durations),
- imports: the first cell;

and, for the stage kinds that run their trainings in local worker processes, the start of
two workers that import the stage's module (as they do to unpickle their first call) and
their end. ``--code ROOT`` measures another checkout's code (its ``amcf`` and
``compendium`` come first on the path of every process started), with this environment's
packages: run it once on the base commit and once here, back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parents[1]
POOLED = ("search", "amcf", "baselines", "ablations")  # kinds whose trainings fan out
WORKERS = """
import functools, json, os, sys, time
from amcf import numerics
numerics.apply()
from compendium.pipeline import fanout
os.environ[fanout.LOCAL_WORKERS_ENV] = "2"
begun = time.perf_counter()
fanout.run_all([functools.partial(exec, "import " + sys.argv[1], {})] * 2)
ready = time.perf_counter()
fanout.local_executor().shutdown(wait=True)
print(json.dumps({"workers_start_s": ready - begun,
                  "workers_end_s": time.perf_counter() - ready}))
"""


def _environment(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    if code != HERE:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
    return env


def _first_cells(notebook: Path, dest: Path) -> None:
    """The notebook's parameters cell and the code cell after it: policy and imports."""
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    nb.cells = code[first:first + 2]
    nbformat.write(nb, dest)


def notebook_start(kind: str, code: Path, tmp: Path) -> dict[str, float]:
    """One run of the stage notebook's first cells through ``amcf notebook``."""
    src, out = tmp / f"{kind}.ipynb", tmp / f"{kind}-out.ipynb"
    _first_cells(code / "notebooks" / f"{kind}.ipynb", src)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compendium.cli", "notebook", str(src), str(out)],
                   cwd=code, env=_environment(code), check=True, capture_output=True)
    wall = time.perf_counter() - start
    nb = nbformat.read(out, as_version=4)
    duration = float(nb.metadata["papermill"]["duration"])
    cells = [float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in nb.cells]
    return {"launch_s": wall - duration, "kernel_s": duration - sum(cells),
            "imports_s": cells[-1], "wall_s": wall}


def workers_start(kind: str, code: Path) -> dict[str, float]:
    """Two local workers started by importing the stage's module, then ended."""
    done = subprocess.run([sys.executable, "-c", WORKERS, f"compendium.stages.{kind}"],
                          cwd=code, env=_environment(code), check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(code: Path, repeat: int) -> dict[str, Any]:
    kinds = sorted(p.stem for p in (code / "notebooks").glob("*.ipynb"))
    out: dict[str, Any] = {"code": str(code), "repeat": repeat, "kinds": {}}
    with tempfile.TemporaryDirectory(prefix="amcf-startup-") as tmp:
        for kind in kinds:
            runs = []
            for _ in range(repeat):
                row = notebook_start(kind, code, Path(tmp))
                if kind in POOLED:
                    row.update(workers_start(kind, code))
                runs.append(row)
            # the median of each part: a shared machine's other jobs inflate single runs
            out["kinds"][kind] = {key: statistics.median(r[key] for r in runs)
                                  for key in runs[0]}
    return out


def render(result: dict[str, Any]) -> list[str]:
    lines = [f"start-up per stage, median of {result['repeat']} ({result['code']}):",
             f"{'kind':12s}{'launch':>8s}{'kernel':>8s}{'imports':>8s}{'workers':>9s}"
             f"{'(start/end)':>13s}{'total':>8s}"]
    for kind, k in result["kinds"].items():
        workers = k.get("workers_start_s", 0.0) + k.get("workers_end_s", 0.0)
        split = (f"{k['workers_start_s']:.1f}/{k['workers_end_s']:.1f}"
                 if "workers_start_s" in k else "-")
        total = k["launch_s"] + k["kernel_s"] + k["imports_s"] + workers
        lines.append(f"{kind:12s}{k['launch_s']:8.1f}{k['kernel_s']:8.1f}{k['imports_s']:8.1f}"
                     f"{workers:9.1f}{split:>13s}{total:8.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=HERE,
                        help="the checkout whose code to measure (default: this one)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(args.code.resolve(), args.repeat)
    print("\n".join(render(result)))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
