"""Does a CPU result depend on the CPU? A short real pipeline under kernel overrides.

Each variant runs, in a fresh process, a short pipeline through the project's own code (two
pretrainings, two searches, two AMCF runs with amcf-select, on scikit-learn's 8x8 digits) and
hashes every file it writes. An override stands for a machine that would pick other kernels:
another ATen capability, oneDNN instruction set, MKL branch or instruction set, or other
thread settings. Under the numerical policy (``amcf/numerics.py``) every variant must give
the same bytes; with the policy off (``AMCF_NUMERICS=native``) the table shows which settings
change them. ``--emulate CPU`` runs the plain variant under ``qemu-x86_64 -cpu CPU`` as well
(another vendor's CPUID, instruction set and cache sizes; about 250 times slower).

    python benchmarks/numerics.py                  # the table, native and policy (~4 min)
    python benchmarks/numerics.py --emulate EPYC-Rome Haswell --only plain --scale tiny
    python benchmarks/numerics.py pipeline OUT     # one run: OUT/digests.json
    python benchmarks/numerics.py emulated EPYC-Rome   # fails unless qemu's bytes equal these

``tests/test_numerics.py`` runs the grouped overrides of :data:`GROUPS` on every ``make test``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

# One setting at a time: what a machine could pick differently from this one.
SINGLE = {
    "plain": {},
    "aten=default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn=SSE41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "onednn=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "mkl-cbwr=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "mkl-isa=AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "mkl-isa=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "threads=1": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "threads=2": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "side-by-side=1": {"AMCF_LOCAL_WORKERS": "1"},
    "side-by-side=2": {"AMCF_LOCAL_WORKERS": "2"},
}
# Many at once, for the test: each group overrides every kind of setting.
GROUPS = {
    "plain": {},
    "low": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
            "DNNL_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "AUTO",
            "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OMP_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2", "AMCF_LOCAL_WORKERS": "1"},
    "high": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL",
             "MKL_CBWR": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "OMP_NUM_THREADS": "1", "AMCF_LOCAL_WORKERS": "2"},
}
# the variables an override may set: cleared first, so the caller's shell cannot leak in
_KNOBS = {k for env in (*SINGLE.values(), *GROUPS.values()) for k in env} | {
    "AMCF_NUMERICS", "OPENBLAS_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE"}


def _digits(train: int = 600, held_out: int = 300):
    """scikit-learn's 8x8 digits as a Splits: ``train`` images, ``held_out`` val and test."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from amcf.datasets import BatchAugment, Splits, TensorImageDataset

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    parts = {"train": order[:train], "val": order[train:train + held_out],
             "test": order[train + held_out:train + 2 * held_out]}

    def part(name, augment=None):
        idx = parts[name]
        return TensorImageDataset(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]),
                                  mean=[0.5], std=[0.5], augment=augment)

    return Splits(name="digits-8px", train=part("train", BatchAugment(pad=1)), val=part("val"),
                  test=part("test"), classes=[str(c) for c in range(10)])


# sizes of the pipeline: "small" for the native runs, "tiny" for an emulated CPU (qemu runs
# about 250 times slower)
SCALES = {"small": {"train": 600, "held_out": 300, "epochs": 2, "particles": 2},
          "tiny": {"train": 64, "held_out": 64, "epochs": 1, "particles": 2}}


def pipeline(out: Path, scale: str = "small") -> dict[str, str]:
    """Pretrain two sources, search twice, train AMCF twice; the sha256 of every result file.

    Run it in ``out`` with ``out`` given as ``.``: the results record the sources' paths, which
    are then the same in every run."""
    from amcf import numerics

    numerics.apply()  # as every stage, notebook and worker does before computing
    from amcf.models.build import SourceSpec
    from amcf.train.config import FitnessConfig, TrainConfig
    from compendium.pipeline.fanout import run_all
    from compendium.results import schemes_of
    from compendium.stages.amcf import run_amcf_and_select
    from compendium.stages.pretrain import pretrain_source
    from compendium.stages.runs import Setting
    from compendium.stages.search import run_searches

    size = SCALES[scale]
    epochs = size["epochs"]
    splits = _digits(size["train"], size["held_out"])
    work, results = out / "work", out / "results"
    specs = []
    for i, name in enumerate(["a", "b"]):
        recipe = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, seed=i, progress=False)
        pretrain_source(name, splits, "amcf_resnet_tiny", None, recipe, out / f"{name}.pt",
                        results / "sources" / name, work)
        specs.append(SourceSpec(name=name, arch="amcf_resnet_tiny",
                                weights=str(out / f"{name}.pt")))
    fitness = FitnessConfig(epochs=1, batch_size=32, lr=0.01, progress=False)
    swarm = {"particles": size["particles"], "iterations": 1, "v_max": 2.0}
    run_searches(splits, specs, swarm, fitness, 0.2, [0, 1], results / "search", work)
    schemes = schemes_of(results / "search" / "searches.json")
    setting = Setting(splits=splits, sources=specs, scheme=schemes[0], schemes=schemes,
                      train=TrainConfig(epochs=epochs, batch_size=32, lr=0.01, progress=False),
                      lam=0.2, results_dir=results, work_dir=work)
    run_all([partial(run_amcf_and_select, setting, seed) for seed in (0, 1)])
    _mc_loss_probe(results / "mc-loss-probe.bin")
    files = sorted(p for p in [*results.rglob("*"), *out.glob("*.pt")] if p.is_file())
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def _mc_loss_probe(path: Path) -> None:
    """The MC-loss and its gradient on fixed logits (K = 3, batch 32, 50 classes), as bytes.

    The pipeline's few short runs need not hit a value where an op's last bits depend on the
    CPU's vendor: its bytes stayed the same on an AMD EPYC while torch.sqrt in the penalty
    moved every full-size AMCF run there (docs/numerics.md). These logits do hit such values."""
    import torch

    from amcf.loss import collaborative_loss

    generator = torch.Generator().manual_seed(0)
    z = (torch.randn(3, 32, 50, generator=generator) * 3).requires_grad_()
    y = torch.randint(0, 50, (32,), generator=generator)
    loss = collaborative_loss(list(z), y, lam=0.2)
    loss.backward()
    path.write_bytes(loss.detach().numpy().tobytes() + z.grad.numpy().tobytes())


def run_variant(env: dict[str, str], policy: bool, emulate: str | None = None,
                timeout: float = 3600, scale: str = "small") -> tuple[dict[str, str], float]:
    """The digests of one pipeline run in a fresh process under ``env``; and its seconds."""
    clean = {k: v for k, v in os.environ.items() if k not in _KNOBS}
    clean.update(env)
    if not policy:
        clean["AMCF_NUMERICS"] = "native"
    with tempfile.TemporaryDirectory(prefix="amcf-numerics-") as tmp:
        cmd = [sys.executable, str(Path(__file__).resolve()), "pipeline", ".", "--scale", scale]
        if emulate:
            # one process: each worker would import torch under emulation again
            cmd = ["qemu-x86_64", "-cpu", emulate, *cmd]
            clean["AMCF_LOCAL_WORKERS"] = "1"
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=clean, capture_output=True, text=True, timeout=timeout,
                              cwd=tmp)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"the pipeline failed under {env} (policy {policy}, emulate "
                               f"{emulate}):\n{proc.stderr[-3000:]}")
        return json.loads((Path(tmp) / "digests.json").read_text()), seconds


def _summary(digests: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:12]


def table(variants: dict[str, dict[str, str]], emulate: list[str], scale: str,
          policies: tuple[bool, ...] = (False, True)) -> list[dict]:
    rows = []
    for policy in policies:
        reference = None
        for label, env in variants.items():
            digests, seconds = run_variant(env, policy, scale=scale)
            reference = reference or digests
            rows.append(_row(policy, label, "native", digests, reference, seconds))
            print(json.dumps(rows[-1]), flush=True)
            if label == "plain":
                for cpu in emulate:
                    digests, seconds = run_variant(env, policy, emulate=cpu, scale=scale)
                    rows.append(_row(policy, label, f"qemu {cpu}", digests, reference, seconds))
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def _row(policy, label, where, digests, reference, seconds) -> dict:
    changed = sorted(k for k in set(digests) | set(reference)
                     if digests.get(k) != reference.get(k))
    return {"policy": policy, "override": label, "cpu": where, "digest": _summary(digests),
            "files_changed": len(changed), "files": len(digests), "seconds": round(seconds, 1)}


def emulated(cpus: list[str]) -> int:
    """The tiny pipeline under the policy, here and under each emulated CPU: 0 when every run
    gives this machine's bytes."""
    reference, seconds = run_variant({}, policy=True, scale="tiny")
    print(json.dumps(_row(True, "plain", "native", reference, reference, seconds)), flush=True)
    failed = []
    for cpu in cpus:
        digests, seconds = run_variant({}, policy=True, emulate=cpu, scale="tiny", timeout=7200)
        row = _row(True, "plain", f"qemu {cpu}", digests, reference, seconds)
        print(json.dumps(row), flush=True)
        if row["files_changed"] or digests.keys() != reference.keys():
            failed.append(cpu)
    if failed:
        print(f"numerics: the bytes differ under emulated {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"numerics: the same bytes here and under emulated {', '.join(cpus)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="table",
                        choices=["table", "pipeline", "emulated"])
    parser.add_argument("out", nargs="*", help="pipeline: the folder to run in; emulated: the "
                        "qemu CPU models (default: EPYC-Rome)")
    parser.add_argument("--emulate", nargs="*", default=[], metavar="CPU",
                        help="also run the plain variant under qemu-x86_64 -cpu CPU")
    parser.add_argument("--only", nargs="*", default=None, help="just these variants")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small",
                        help="the pipeline's size (tiny: for --emulate)")
    parser.add_argument("--policy", choices=["both", "on", "off"], default="both",
                        help="run with the policy on, off (native kernels), or both")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    if args.command == "pipeline":
        out = Path(args.out[0] if args.out else ".")
        digests = pipeline(out, args.scale)
        (out / "digests.json").write_text(json.dumps(digests, indent=1, sort_keys=True))
        return 0
    if (args.emulate or args.command == "emulated") and shutil.which("qemu-x86_64") is None:
        parser.error("emulation needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    if args.command == "emulated":
        return emulated(args.out or ["EPYC-Rome"])
    variants = {k: v for k, v in SINGLE.items() if args.only is None or k in args.only}
    policies = {"both": (False, True), "on": (True,), "off": (False,)}[args.policy]
    rows = table(variants, args.emulate, args.scale, policies)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
