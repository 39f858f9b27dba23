"""The README's promises a newcomer acts on: the two commands, and the method from one's own
code in at most ten lines, which runs (scripts/install-check runs it again in a fresh
`pip install .`, without the compendium's dependencies)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def own_code_example() -> str:
    block = re.search(r"<!-- the own-code example.*?-->\n```python\n(.*?)```", README, re.S)
    assert block is not None, "README.md lost its own-code example (or its marker)"
    return block.group(1)


def test_the_two_commands_come_first():
    first_screen = README[:README.index("## What is where")]
    assert "make reproduce   # set up .venv, fetch the data" in first_screen
    assert "make test        # set up .venv, run ruff, the unit tests" in first_screen


def test_the_own_code_example_is_short_and_trains_amcf_without_dvc(tmp_path):
    code = own_code_example()
    assert len(code.splitlines()) <= 10
    for step in ("SourceSpec", "run_amls", "fit(", "evaluate("):  # sources, search, fit, predict
        assert step in code, step
    (tmp_path / "example.py").write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not re.search(r"^\s*(import|from)\s+(compendium|dvc|pandas)", code, re.M)
