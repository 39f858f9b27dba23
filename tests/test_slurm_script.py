"""scripts/slurm-ray.sbatch under stand-ins of SLURM, Ray and amcf that log their calls: the
login-node launcher fetches before it submits; a job finds a head address other nodes reach."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "scripts/slurm-ray.sbatch"
# each stand-in logs its name and arguments; srun drops its own options and runs the rest
FAKES = {
    "sbatch": "", "amcf": "", "ray": "",
    "scontrol": 'echo "node1 node2"',
    "srun": 'while [[ $1 == -* ]]; do [[ $1 == -w ]] && shift; shift; done; exec "$@"',
    "python": 'echo "$FAKE_RAY_IP"',
    "hostname": 'echo "$FAKE_HOST_IPS"',
}


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / SCRIPT, tmp_path / SCRIPT)
    (tmp_path / "params.yaml").write_text("profile: paper\ndata_dir: downloads\n")
    bin_dir = tmp_path / ".venv/bin"
    bin_dir.mkdir(parents=True)
    for name, body in FAKES.items():
        fake = bin_dir / name
        fake.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$FAKE_LOG"\n{body}\n')
        fake.chmod(0o755)
    return tmp_path


def _run(repo: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = repo / "calls.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "AMCF_"))}
    done = subprocess.run(["bash", SCRIPT, *args], cwd=repo, capture_output=True, text=True,
                          env={**clean, "FAKE_LOG": str(log), "AMCF_RAY_WAIT": "0", **env})
    return done, log.read_text().splitlines() if log.exists() else []


def test_on_the_login_node_it_fetches_then_submits_itself(repo):
    done, calls = _run(repo, "--nodes", "4", "--", "search", "amcf@*")
    assert done.returncode == 0, done.stderr
    assert calls == ["amcf data fetch --profile paper",
                     f"sbatch --nodes 4 {SCRIPT} search amcf@*"]


def _job(repo: Path, **env: str):
    return _run(repo, "search", SLURM_JOB_ID="7", SLURM_JOB_NODELIST="node[1-2]",
                SLURM_CPUS_PER_TASK="8", SLURM_SUBMIT_DIR=str(repo), **env)


def test_a_job_starts_ray_on_an_address_other_nodes_reach(repo):
    # Ray's own pick and the host name's first address are loopback (an offline node, a
    # Debian /etc/hosts): the next address is taken
    done, calls = _job(repo, FAKE_RAY_IP="127.0.0.1", FAKE_HOST_IPS="127.0.1.1 10.1.2.3")
    assert done.returncode == 0, done.stderr
    ray = sorted(c for c in calls if c.startswith(("ray", "amcf")))  # in the background: any order
    assert ray == ["amcf cluster-run --address 10.1.2.3:6379 search",
                   "ray start --address=10.1.2.3:6379 --num-cpus=8 --block",
                   "ray start --head --node-ip-address=10.1.2.3 --port=6379 --num-cpus=8 --block"]
    assert not [c for c in calls if c.startswith(("sbatch", "amcf data"))]  # no fetch in a job

    done, calls = _job(repo, FAKE_RAY_IP="10.9.9.9", FAKE_HOST_IPS="127.0.1.1")
    assert "amcf cluster-run --address 10.9.9.9:6379 search" in calls


def test_a_job_without_a_reachable_address_stops_naming_the_override(repo):
    done, calls = _job(repo, FAKE_RAY_IP="127.0.0.1", FAKE_HOST_IPS="127.0.1.1 ::1")
    assert done.returncode == 1 and "AMCF_HEAD_IP" in done.stderr
    assert not [c for c in calls if c.startswith(("ray", "amcf"))]

    done, calls = _job(repo, AMCF_HEAD_IP="192.168.7.1", FAKE_RAY_IP="127.0.0.1",
                       FAKE_HOST_IPS="127.0.1.1")
    assert done.returncode == 0 and "amcf cluster-run --address 192.168.7.1:6379 search" in calls
