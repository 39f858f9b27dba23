"""GPU check (``make gpu-check``): the paper profile's data path and trainer on one CUDA GPU,
and from the measured rates the profile's GPU-hours per target.

In about two minutes on one H100 (``make gpu-check`` stops it at five):

1. data: JPEG photographs are generated and prepared as the paper's files path is (each
   decoded once into the uint8 views of :mod:`compendium.data.views`), then fed by the
   device feed (:mod:`amcf.feed`) through the paper profile's DataLoader workers;
2. training and evaluation: two ResNet-50s (random weights) trained together by amcf's
   trainer at the profile's batch size (64; evaluation at 256), bf16 and channels-last,
   after one untimed epoch: images/s of training, of evaluation, and a training's set-up;
3. a checkpoint: the pair's weights and momentum, written as the trainer writes its resume
   checkpoint (bytes, seconds);
4. two trainings at once on the GPU (two processes, the same training each): their
   combined images/s against one alone;
5. the campaign: every training the paper profile starts (:mod:`benchmarks.campaign`) at
   these rates, GPU-hours per target.

It writes ``benchmarks/gpu-check.json`` and ``docs/gpu-check.md``, which are committed and
quoted by the docs. Without a CUDA device it stops at once (exit 2). ``--device cpu --tiny``
runs every part at toy size on a CPU (tests/test_gpu_check.py): the logic, not the numbers.
``--assumed`` writes both files from the rates profiles/paper.yaml's header assumes, marked
as not measured.

    python benchmarks/gpu_check.py [--out benchmarks/gpu-check.json] [--markdown docs/gpu-check.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout: benchmarks/ imports from it

import numpy as np  # noqa: E402
import torch  # noqa: E402

from amcf.io import write_json, write_text  # noqa: E402
from benchmarks.campaign import campaign_hours  # noqa: E402

PROFILE = ROOT / "profiles" / "paper.yaml"
OUT = ROOT / "benchmarks" / "gpu-check.json"
MARKDOWN = ROOT / "docs" / "gpu-check.md"
# what profiles/paper.yaml's header assumed before any GPU ran this: per model at 224 px,
# bf16, batch 64, on an H100-class GPU; evaluation three times as fast
ASSUMED = {"train": 2500.0, "eval": 7500.0, "setup_s": 5.0, "checkpoint_s": 0.5,
           "two_at_once": 1.0}
SIZES = {
    # the paper's images and models; two epochs timed after one untimed
    "full": {"arch": "resnet50", "image_size": None, "photo": (500, 375), "train": 2048,
             "val": 256, "test": 512, "classes": 100, "epochs": 2, "batch": 64},
    # every part on a CPU in seconds (the trainer's and the feed's code, not their speed)
    "tiny": {"arch": "test_resnet", "image_size": 32, "photo": (60, 44), "train": 16,
             "val": 8, "test": 8, "classes": 2, "epochs": 1, "batch": 4},
}
SMALL_SHM = 256 * 2**20  # below this, DataLoader workers risk a bus error (docs/speed.md)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(OUT), help="the JSON report")
    p.add_argument("--markdown", default=str(MARKDOWN), help="the report as a docs page")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="toy sizes (with --device cpu: tests)")
    p.add_argument("--assumed", action="store_true",
                   help="write the files from the assumed rates; measure nothing")
    p.add_argument("--budget-s", type=float, default=280.0,
                   help="stop starting parts after this many seconds (default 280)")
    # the role of a child process of part 4
    p.add_argument("--concurrent", nargs=3, metavar=("PREPARED", "BARRIER", "RESULT"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def machine(device: torch.device) -> dict[str, Any]:
    cuda = device.type == "cuda"
    return {"gpu": torch.cuda.get_device_name(device) if cuda else None,
            "gpu_memory_bytes": torch.cuda.get_device_properties(device).total_memory
            if cuda else None,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
            "shm_bytes": shutil.disk_usage("/dev/shm").total
            if Path("/dev/shm").is_dir() else None}


# ---- 1. data ---------------------------------------------------------------------------------

def _photos(root: Path, size: dict[str, Any]) -> None:
    """JPEGs in ``root/<split>/<class>/``: smooth colour fields with grain, photo-sized."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size["photo"]
    for split in ("train", "val", "test"):
        for i in range(size[split]):
            folder = root / split / f"c{i % size['classes']:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            coarse = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
            img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))
            grain = rng.integers(-12, 12, img.shape)
            Image.fromarray(np.clip(img + grain, 0, 255).astype(np.uint8)).save(
                folder / f"{i:05d}.jpg", quality=90)


def prepare(root: Path, out: Path, image_size: int | None) -> Path:
    """The photos as the paper profile prepares a dataset: split, decoded once into views."""
    from compendium.data.commands import paper_sizes
    from compendium.data.folder import load_entries, scan
    from compendium.data.prepared import Prepared, write_prepared
    from compendium.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    [entry] = load_entries([{"name": "photos", "kind": "folder", "path": str(root),
                             "mode": "files"}])
    classes, files, labels, split = scan(entry)
    root = root.resolve()
    prep = Prepared(classes=classes, labels=labels, split=split,
                    ids=[str(f.resolve().relative_to(root)) for f in files], root=root,
                    transform="paper", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    meta=paper_sizes(image_size))
    write_prepared(out / "photos", {"name": "photos", "role": "target"}, prep, "")
    return out


# ---- 2. training and evaluation -----------------------------------------------------------

def _models(arch: str, classes: int) -> list[torch.nn.Module]:
    import timm

    torch.manual_seed(0)
    return [timm.create_model(arch, num_classes=classes) for _ in range(2)]


def _recipe(size: dict[str, Any], device: torch.device, workers: int):
    from amcf.train.config import TrainConfig

    return TrainConfig(epochs=size["epochs"], batch_size=size["batch"], num_workers=workers,
                       device=str(device), progress=False)


def measure_training(prepared: Path, size: dict[str, Any], device: torch.device,
                     workers: int) -> tuple[dict[str, Any], list[torch.nn.Module]]:
    """Rates of the trainer on the files path, after one untimed epoch; the trained models."""
    from amcf.train.fit import fit
    from compendium.data.prepared import load_splits

    splits = load_splits("photos", prepared)
    config = _recipe(size, device, workers)
    # untimed: the workers start, cuDNN picks its kernels, the allocator grows
    fit(_models(size["arch"], len(splits.classes)), splits, config.model_copy(
        update={"epochs": 1}))
    models = _models(size["arch"], len(splits.classes))
    start = time.perf_counter()
    result = fit(models, splits, config)
    wall = time.perf_counter() - start
    b = result.breakdown
    return {"epochs": size["epochs"], "batch_size": size["batch"], "eval_batch_size": max(
                256, size["batch"]), "workers": workers, "models": 2,
            "train_images": b["train_images"], "eval_images": b["eval_images"],
            "train_images_per_s": b["train_images"] / b["train_s"],
            "eval_images_per_s": b["eval_images"] / b["eval_s"],
            "setup_s": max(0.0, wall - sum(r["seconds"] for r in result.history))}, models


# ---- 3. a checkpoint ------------------------------------------------------------------------

def measure_checkpoint(models: list[torch.nn.Module], folder: Path,
                       device: torch.device) -> dict[str, Any]:
    """One resume checkpoint of ``models`` (weights and SGD momentum), as fit writes it."""
    from amcf.train import state

    optimizers = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]
    for m, opt in zip(models, optimizers, strict=True):
        for p in m.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()  # allocates the momentum buffers a real checkpoint carries
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    path = folder / "checkpoint.pt"
    start = time.perf_counter()
    state.save_resume_state(path, models=[m.state_dict() for m in models],
                            optimizers=[o.state_dict() for o in optimizers])
    seconds = time.perf_counter() - start
    return {"bytes": path.stat().st_size, "seconds": seconds, "models": len(models)}


# ---- 4. two trainings at once ---------------------------------------------------------------

def concurrent_child(prepared: Path, barrier: Path, result: Path, size: dict[str, Any],
                     device: torch.device, workers: int) -> None:
    """One of part 4's two processes: warm up, wait for the other, train, report."""
    from amcf.train.fit import fit
    from compendium.data.prepared import load_splits

    splits = load_splits("photos", prepared)
    config = _recipe(size, device, workers)
    fit(_models(size["arch"], len(splits.classes)), splits, config.model_copy(
        update={"epochs": 1}))
    mine = barrier / f"ready-{os.getpid()}"
    mine.touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    out = fit(_models(size["arch"], len(splits.classes)), splits, config)
    b = out.breakdown
    write_json(result, {"train_images_per_s": b["train_images"] / b["train_s"],
                        "eval_images_per_s": b["eval_images"] / b["eval_s"]})


def measure_two_at_once(prepared: Path, folder: Path, args: argparse.Namespace,
                        timeout: float) -> dict[str, Any]:
    """Two processes train at once; their combined training images/s."""
    barrier = folder / "barrier"
    barrier.mkdir()
    results = [folder / f"run{k}.json" for k in range(2)]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--device", args.device]
    cmd += ["--tiny"] if args.tiny else []
    procs = [subprocess.Popen(cmd + ["--concurrent", str(prepared), str(barrier), str(r)])
             for r in results]
    failed = []
    deadline = time.monotonic() + timeout  # one deadline: the two run side by side
    for proc in procs:
        try:
            if proc.wait(timeout=max(1.0, deadline - time.monotonic())) != 0:
                failed.append(f"exit {proc.returncode}")
        except subprocess.TimeoutExpired:
            failed.append("out of time")
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if failed or not all(r.is_file() for r in results):
        return {"error": ", ".join(failed) or "no result"}
    each = [json.loads(r.read_text()) for r in results]
    return {"train_images_per_s_each": [e["train_images_per_s"] for e in each],
            "train_images_per_s_combined": sum(e["train_images_per_s"] for e in each)}


# ---- 5. the campaign ------------------------------------------------------------------------

def rates_of(report: dict[str, Any]) -> dict[str, float]:
    """Per-model rates for :func:`benchmarks.campaign.campaign_hours` from a report's parts."""
    t, c = report["training"], report["checkpoint"]
    two = report.get("two_at_once", {})
    single = t["train_images_per_s"]
    combined = two.get("train_images_per_s_combined")
    return {"train": t["models"] * single, "eval": t["models"] * t["eval_images_per_s"],
            "setup_s": t["setup_s"], "checkpoint_s": c["seconds"] / c["models"],
            "two_at_once": combined / single if combined else 1.0}


def campaign(rates: dict[str, float]) -> dict[str, Any]:
    from compendium.params import load_params

    return campaign_hours(load_params(PROFILE), rates)


def render(report: dict[str, Any]) -> str:
    """``docs/gpu-check.md``: the report as a page the docs quote."""
    c, rates = report["campaign"], report["rates"]
    lines = ["# GPU check: measured rates and the paper profile's GPU-hours", "",
             "[Back to speed](speed.md). Written by `benchmarks/gpu_check.py` (`make "
             "gpu-check`) with `benchmarks/gpu-check.json`; do not edit by hand.", ""]
    if report.get("measured"):
        m = report["machine"]
        lines += [f"Measured on {m['gpu'] or m['cpu']} ({m['cores']} CPU cores, torch "
                  f"{m['torch']}, CUDA {m['cuda']}), {report['date']}, in "
                  f"{report['wall_s']:.0f} s.", ""]
        t, ck, two = report["training"], report["checkpoint"], report["two_at_once"]
        shared = (f"{rates['two_at_once']:.2f} x the training throughput of one"
                  if "error" not in two else f"not measured ({two['error']})")
        lines += ["| measured | |", "|---|---|",
                  f"| training, 2 x {report['arch']} at {report['image_size']} px, batch "
                  f"{t['batch_size']}, "
                  f"{t['workers']} workers | {t['train_images_per_s']:.0f} images/s |",
                  f"| evaluation, batch {t['eval_batch_size']} | "
                  f"{t['eval_images_per_s']:.0f} images/s |",
                  f"| set-up of one training | {t['setup_s']:.1f} s |",
                  f"| resume checkpoint of the pair (weights, momentum) | "
                  f"{ck['bytes'] / 1e9:.2f} GB in {ck['seconds']:.2f} s |",
                  f"| two trainings at once on the GPU | {shared} |", ""]
    else:
        lines += ["**No GPU has run `make gpu-check` yet.** The hours below use the rates "
                  "that profiles/paper.yaml's header assumes, not measurements: "
                  f"{rates['train']:.0f} training and {rates['eval']:.0f} evaluation images/s "
                  f"per model, {rates['setup_s']:.0f} s of set-up per training, "
                  f"{rates['checkpoint_s']:.1f} s per checkpoint and model, one training per "
                  "GPU at a time. Run `make gpu-check` on a CUDA machine and commit the two "
                  "files it writes.", ""]
    lines += ["| target | train / val / test images | search@ | amcf@ | baselines@ | "
              "ablations@ | GPU-hours |", "|---|---|---|---|---|---|---|"]
    for name, t in c["targets"].items():
        n = t["images"]
        approx = " (approx.)" if name in c["approximate_sizes"] else ""
        lines.append(f"| {name} | {n['train']:,} / {n['val']:,} / {n['test']:,}{approx} | "
                     f"{t['search']:.1f} | {t['amcf']:.1f} | {t['baselines']:.1f} | "
                     f"{t['ablations']:.1f} | {t['total']:.1f} |")
    for name, hours in c["pretrain"].items():
        lines.append(f"| pretrain@{name} | | | | | | {hours:.1f} |")
    lines += ["", f"In all **{c['total']:.0f} GPU-hours** with one training per GPU at a time"
              + (f", {c['total_two_per_gpu']:.0f} with two per GPU"
                 if rates["two_at_once"] != 1.0 else "")
              + f" (about {c['total_two_per_gpu'] / 24:.1f} days on one GPU, "
              f"{c['total_two_per_gpu'] / 24 / 8:.1f} on eight).", "",
              "Counted per target (`benchmarks/campaign.py`, from profiles/paper.yaml): "
              + "; ".join(f"{r['stage']} {r['what']}: {r['count']} x {r['models']} model(s) x "
                          f"{r['epochs']} epochs, {r['test_passes']} test passes"
                          for r in c["trainings_per_target"])
              + ". Each training evaluates validation every epoch and the test split as "
              "often as its stage's `test_eval` asks (every epoch for AMCF, whose "
              "best-over-epochs column needs it; at most 2 + K passes for the others; never "
              "for fitness calls), and writes a resume checkpoint every "
              "`checkpoint_every` epochs. Upper bounds: frozen layers (fitness calls, linear "
              "probes) are charged as full training, and the search's memo is ignored.", ""]
    return "\n".join(lines)


def write(report: dict[str, Any], args: argparse.Namespace) -> None:
    write_json(args.out, report)
    write_text(args.markdown, render(report))
    print(f"wrote {args.out} and {args.markdown}")


def _workers(args: argparse.Namespace, shm: int | None) -> int:
    from compendium.params import load_params

    workers = 1 if args.tiny else load_params(PROFILE).final.train.workers()
    if workers and shm is not None and shm < SMALL_SHM:
        print(f"gpu-check: /dev/shm holds only {shm / 2**20:.0f} MiB; DataLoader workers "
              "could die of a bus error, so this check runs without them (give a container "
              "--shm-size=1g)", file=sys.stderr)
        return 0
    return workers


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.assumed:
        write({"measured": False, "rates": ASSUMED, "campaign": campaign(ASSUMED)}, args)
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible (torch.cuda.is_available() is False). "
              "Run it on a machine with an NVIDIA GPU and the CUDA build of torch; "
              "`amcf bench` is the CPU comparison.", file=sys.stderr)
        return 2
    size = SIZES["tiny" if args.tiny else "full"]
    host = machine(device)
    workers = _workers(args, host["shm_bytes"])
    if args.concurrent:
        prepared, barrier, result = (Path(p) for p in args.concurrent)
        concurrent_child(prepared, barrier, result, size, device, workers)
        return 0
    started = time.perf_counter()
    report: dict[str, Any] = {"measured": True, "date": time.strftime("%Y-%m-%d"),
                              "machine": host, "device": str(device), "arch": size["arch"],
                              "image_size": size["image_size"] or 224}
    print(f"gpu-check on {host['gpu'] or host['cpu']}: 2 x {size['arch']}, files path with "
          f"{workers} workers", flush=True)
    with tempfile.TemporaryDirectory(prefix="amcf-gpu-check-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        _photos(tmp / "photos", size)
        prepared = prepare(tmp / "photos", tmp / "prepared", size["image_size"])
        report["data"] = {"images": size["train"] + size["val"] + size["test"],
                          "photo_size": list(size["photo"]),
                          "generate_and_prepare_s": time.perf_counter() - t0}
        print(f"  data: {report['data']['images']} photos generated and prepared in "
              f"{report['data']['generate_and_prepare_s']:.0f} s", flush=True)
        report["training"], models = measure_training(prepared, size, device, workers)
        print(f"  training {report['training']['train_images_per_s']:.0f} images/s, "
              f"evaluation {report['training']['eval_images_per_s']:.0f} images/s", flush=True)
        report["checkpoint"] = measure_checkpoint(models, tmp, device)
        print(f"  checkpoint {report['checkpoint']['bytes'] / 1e9:.2f} GB in "
              f"{report['checkpoint']['seconds']:.2f} s", flush=True)
        del models
        from amcf.datasets import release_loaders

        release_loaders()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        left = args.budget_s - (time.perf_counter() - started)
        report["two_at_once"] = (measure_two_at_once(prepared, tmp, args, left - 10)
                                 if left > 30 else {"error": "out of time"})
        print(f"  two at once: {report['two_at_once']}", flush=True)
    report["rates"] = rates_of(report)
    report["campaign"] = campaign(report["rates"])
    report["wall_s"] = time.perf_counter() - started
    print(f"  the paper profile: {report['campaign']['total']:.0f} GPU-hours "
          f"({report['campaign']['total_two_per_gpu']:.0f} with two trainings per GPU)")
    write(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
