"""Toy DVC repositories for the ``amcf cluster-run`` tests (tests/test_cluster*.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")


def toy_repo(root: Path, keys: str = "ab", record: str = "$OMP_NUM_THREADS $RAY_ADDRESS",
             kind: str = "pretrain") -> None:
    """One ``kind`` stage per key that each take ~3 s and write ``record`` (shell words) to
    ``out/<key>.env``, and one stage needing them all."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=env())
    items = "".join(f"  {k}: {{n: {i}}}\n" for i, k in enumerate(keys, 1))
    (root / "params.yaml").write_text(f"pre:\n{items}")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        f"  {kind}:\n"
        "    foreach: ${pre}\n"
        "    do:\n"
        "      cmd: mkdir -p out && date +%s.%N > out/${key}.start && sleep 3 && "
        f"echo {record} > out/${{key}}.env && date +%s.%N > out/${{key}}.end\n"
        "      outs:\n"
        "        - out/${key}.start\n"
        "        - out/${key}.env\n"
        "        - out/${key}.end\n"
        "  join:\n"
        f"    cmd: cat {' '.join(f'out/{k}.env' for k in keys)} > joined.txt\n"
        "    deps:\n"
        "      - out\n"
        "    outs:\n"
        "      - joined.txt\n"
    )


def clean(root: Path, *stages: str) -> bool:
    """Whether DVC sees ``stages`` (default: all) as up to date."""
    return subprocess.run(["dvc", "status", "-q", *stages], cwd=root, env=env()).returncode == 0
