"""`amcf pipeline check-lock` fails on a stale dvc.lock and passes on a fresh clone's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compendium.pipeline.lock import stale_stages

DVC_YAML = """\
stages:
  build:
    cmd: python code.py ${n} build/out.txt
    deps: [code.py]
    params: [n]
    outs: [build/out.txt]
  result:
    cmd: python code.py 7 results/r.txt
    deps: [code.py, build/out.txt]
    outs:
      - results/r.txt:
          cache: false
"""


def _run(cmd, cwd):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1")
    return subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path):
    """A toy DVC project, reproduced and committed, like the compendium."""
    (tmp_path / "code.py").write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[2])\np.parent.mkdir(exist_ok=True)\n"
        "p.write_text(sys.argv[1])\n")
    (tmp_path / "params.yaml").write_text("n: 3\n")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / ".gitignore").write_text("/build/\n")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"],
                ["git", "config", "user.name", "t"], ["dvc", "init", "-q"],
                ["dvc", "repro", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "run"]):
        _run(cmd, tmp_path)
    return tmp_path


def test_a_fresh_clone_without_build_outputs_is_not_stale(repo):
    assert stale_stages(repo) == {}
    shutil.rmtree(repo / "build")
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    assert stale_stages(repo) == {}


@pytest.mark.parametrize(("edit", "stage", "expected"), [
    (lambda r: (r / "code.py").write_text((r / "code.py").read_text() + "# edited\n"),
     "build", "dependency code.py modified"),
    (lambda r: (r / "params.yaml").write_text("n: 4\n"), "build", "param params.yaml:n"),
    (lambda r: (r / "dvc.yaml").write_text(DVC_YAML.replace("7 results", "8 results")),
     "result", "changed command"),
    (lambda r: (r / "results" / "r.txt").write_text("edited by hand"), "result",
     "output results/r.txt modified"),
])
def test_a_stale_lock_is_reported(repo, edit, stage, expected):
    shutil.rmtree(repo / "build")  # as on a fresh clone: missing products do not hide it
    edit(repo)
    stale = stale_stages(repo)
    assert stage in stale and any(expected in p for p in stale[stage]), stale


def test_a_stage_never_run_is_reported(repo):
    (repo / "dvc.yaml").write_text(DVC_YAML + "  extra:\n    cmd: echo hi\n    deps: [code.py]\n")
    assert "extra" in stale_stages(repo)


def test_the_command_exits_non_zero_on_a_stale_lock(repo):
    (repo / "params.yaml").write_text("n: 5\n")
    out = subprocess.run([sys.executable, "-m", "compendium.cli", "pipeline", "check-lock"],
                         cwd=repo, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])))
    assert out.returncode == 1
    assert "stale: build" in out.stdout and "dvc repro" in out.stdout


def test_a_corrupt_raw_file_stops_prepare_and_keeps_the_committed_pin(tmp_path, monkeypatch):
    """data.dvc pins data/; `dvc repro` over a corrupted raw file re-pins it before any stage
    runs (DVC does so even for a frozen .dvc file), so the prepare stage must stop on the bad
    checksum, put the committed pin back and say how to restore the bytes."""
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  prepare:\n    cmd: amcf data prepare --only digits\n"
        "    deps:\n      - data/digits\n    outs:\n      - build/data/digits\n")
    (tmp_path / ".gitignore").write_text("/data/\n/build/\n")
    monkeypatch.delenv("AMCF_DATA_MIRROR", raising=False)  # digits comes from scikit-learn
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"],
                ["git", "config", "user.name", "t"], ["dvc", "init", "-q"],
                ["amcf", "data", "fetch", "--only", "digits"], ["dvc", "add", "-q", "data"],
                ["dvc", "repro", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "1"]):
        _run(cmd, tmp_path)
    raw = tmp_path / "data" / "digits" / "digits.csv.gz"
    good = raw.read_bytes()
    raw.write_bytes(good[:-100])
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1")
    failed = subprocess.run(["dvc", "repro"], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    assert failed.returncode != 0
    message = failed.stdout + failed.stderr
    assert "checksum mismatch" in message and "back to the committed pin" in message
    assert _run(["git", "status", "--porcelain"], tmp_path).stdout == ""  # data.dvc as committed
    assert "modified" in _run(["dvc", "status", "data.dvc"], tmp_path).stdout
    # the way back the message names: verified bytes
    assert "amcf data fetch --only digits" in message
    raw.unlink()
    _run(["amcf", "data", "fetch", "--only", "digits"], tmp_path)
    assert raw.read_bytes() == good
    assert _run(["git", "status", "--porcelain"], tmp_path).stdout == ""
    assert _run(["dvc", "status", "data.dvc"], tmp_path).stdout.strip().endswith("up to date.")


def test_an_entry_of_a_stage_dvc_yaml_no_longer_defines_is_reported_and_pruned(repo):
    from compendium.pipeline.lock import main, prune_lock

    lock = repo / "dvc.lock"
    committed = lock.read_text()
    # an earlier design's stage, renamed since: DVC leaves its entry in the lock for ever
    build = committed[committed.index("  build:\n"):committed.index("  result:\n")]
    lock.write_text(committed + build.replace("  build:\n", "  old-build:\n", 1))
    assert list(stale_stages(repo)) == ["old-build"]
    assert "check-lock --prune" in stale_stages(repo)["old-build"][0]
    assert main(repo) == 1
    assert prune_lock(repo) == ["old-build"]
    assert lock.read_text() == committed  # every other entry keeps its bytes
    assert stale_stages(repo) == {} and main(repo, prune=True) == 0
