"""``python -m scripts.rehearsal.run``: the paper profile end to end at toy size
(``make rehearsal``).

1. copies the repository's working tree (tracked and new files, as git sees them) into
   ``<out>/repo``, a git repository of its own, with ``profiles/rehearsal.yaml`` as its
   params.yaml, so that this checkout's dvc.lock and results are never touched;
2. writes the miniature archives and their pins, and the hub sources' stand-in weights;
3. serves the archives from 127.0.0.1 and runs ``amcf cluster-run``, with no stage names,
   there: on a clone without ``data/`` or ``downloads/``, as a new user would, so it fetches
   the profile's data first (``amcf data fetch --profile paper``) and runs every stage on a
   local Ray; it succeeds only when every stage of the profile has run, the paper PDF exists
   and ``dvc status`` of the pipeline is clean.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from compendium.hub_weights import hub_arches  # the weights `amcf data fetch` brings
from scripts.rehearsal.hub import fill_hub_cache
from scripts.rehearsal.miniatures import build_site
from scripts.rehearsal.server import serving

PROFILE = Path("profiles/rehearsal.yaml")
_GIT_ID = ["-c", "user.name=amcf rehearsal", "-c", "user.email=rehearsal@localhost"]


class RehearsalFailed(RuntimeError):
    """A step of the rehearsal did not do what the paper profile needs."""


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         capture: bool = False) -> subprocess.CompletedProcess:
    print(f"[rehearsal] $ {' '.join(cmd)}", flush=True)
    done = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=capture,
                          stdin=subprocess.DEVNULL)  # a prompt fails instead of hanging
    if done.returncode != 0:
        detail = (done.stdout or "") + (done.stderr or "") if capture else ""
        raise RehearsalFailed(f"`{' '.join(cmd)}` failed with exit status {done.returncode}"
                              f" in {cwd}. {detail[-2000:]}")
    return done


def copy_checkout(src: Path, dest: Path) -> None:
    """The working tree as git sees it (committed, changed and new files; no ignored ones)
    as a fresh one-commit repository at ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=src, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        path = src / rel
        if path.is_file():  # a tracked file deleted in the working tree is left out
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    shutil.copyfile(dest / PROFILE, dest / "params.yaml")
    (dest / "dvc.lock").unlink(missing_ok=True)  # the embedded default's; not this profile's
    _run(["git", "init", "-q"], dest)
    _run(["git", "add", "-A"], dest)
    _run(["git", *_GIT_ID, "commit", "-q", "-m", "rehearsal copy"], dest)


def stage_names(repo: Path, env: dict[str, str]) -> list[str]:
    out = _run(["dvc", "stage", "list", "--name-only"], repo, env, capture=True).stdout
    return out.split()


def rehearse(out: Path, src: Path) -> dict:
    started = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    repo, site, hub = out / "repo", out / "site", out / "hf"
    copy_checkout(src, repo)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    pins = out / "pins.lock"
    build_site(site, pins)
    for arch in hub_arches(params):
        fill_hub_cache(arch, hub)
    env = {k: v for k, v in os.environ.items() if k != "AMCF_DATA_MIRROR"}
    env.update(PYTHONPATH=str(repo), HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1",
               AMCF_DATA_PINS=str(pins), DVC_NO_ANALYTICS="1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    _run(["amcf", "params", "check"], repo, env)
    set_up = time.perf_counter()
    with serving(site) as url:  # the fetch inside cluster-run reads it
        _run(["amcf", "cluster-run"], repo, {**env, "AMCF_DATA_URL": url})
    ran = time.perf_counter()
    stages = stage_names(repo, env)
    locked = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    missing = [s for s in stages if s not in locked]
    if missing:
        raise RehearsalFailed(f"stages that did not run: {missing}")
    if not (repo / "paper" / "main.pdf").is_file():
        raise RehearsalFailed("paper/main.pdf was not built")
    # the pipeline's stages: data.dvc pins the embedded default's data/, which this profile
    # never reads, so it stays absent, as `dvc repro` too would leave it
    if subprocess.run(["dvc", "status", "--quiet", *stages], cwd=repo, env=env).returncode:
        shown = subprocess.run(["dvc", "status", *stages], cwd=repo, env=env,
                               capture_output=True, text=True).stdout
        raise RehearsalFailed(f"dvc status is not clean after the rehearsal:\n{shown}")
    return {"stages": len(stages), "set_up_s": set_up - started, "run_s": ran - set_up,
            "total_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.rehearsal.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="build/rehearsal", help="work folder (emptied first)")
    args = parser.parse_args(argv)
    src = Path.cwd()
    try:
        report = rehearse(Path(args.out).resolve(), src)
    except RehearsalFailed as err:
        print(f"rehearsal FAILED: {err}", file=sys.stderr)
        return 1
    print(f"rehearsal passed: {report['stages']} stages ran and the paper PDF was built; "
          f"set-up {report['set_up_s']:.0f} s, amcf cluster-run (the fetch included) "
          f"{report['run_s']:.0f} s, {report['total_s']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
