"""GPU check (``make gpu-check``): amcf against the authors' loop at the paper's sizes, on CUDA.

Two parts, within about 5 minutes on one GPU, written to one JSON file:

1. training: two ResNet-50 sources (random weights) at 224 px, batch 64, on a synthetic
   224-px target: the reference loop (fp32, images decoded from PNG files on every access
   in its own process, scikit-learn every batch) against amcf's trainer (bf16 autocast,
   channels-last, fused SGD, in-memory batches), with the same first-batch loss checked;
2. the files path at 224 px with real JPEG decoding: JPEGs are generated on the fly (larger
   than 256 px, as photographs are), prepared as a ``mode: files`` folder dataset (stored
   once at shorter side 256) and fed by amcf's pooled, persistent DataLoader workers. The
   GPU's busy share is the step time with a batch already on the device divided by the step
   time with real data; the authors' way (full-size JPEGs, a new DataLoader each epoch) is
   timed beside it.

    python benchmarks/gpu_check.py [--out build/gpu-check.json]

Without a CUDA device it stops at once (exit 2). ``--device cpu`` with small sizes runs the
same logic on a CPU, for testing the script, not for its numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# run as a script from a checkout: benchmarks/ and scripts/ import from its root
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amcf.datasets import BatchAugment, Splits, TensorImageDataset, iterate_batches
from amcf.io import write_json
from amcf.loss import collaborative_loss
from amcf.models import SourceSpec
from amcf.train.config import TrainConfig, usable_cores
from benchmarks.sidebyside import Setup, compare_training, load_reference, machine
from compendium.data.folder import load_entries, prepare_folder
from compendium.data.prepared import load_splits
from compendium.data.transforms import FileImageDataset, paper_transform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/gpu-check.json")
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--resize", type=int, default=256, help="the recipe's Resize (shorter side)")
    p.add_argument("--photo-size", type=int, nargs=2, default=(500, 375),
                   help="width and height of the generated JPEGs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-images", type=int, default=640)
    p.add_argument("--eval-images", type=int, default=256)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="timed steps of the files-path part")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers (default: from the cores, at most 8)")
    return p.parse_args(argv)


def _pictures(n: int, size: int, seed: int) -> np.ndarray:
    """Smooth random colour images (N, 3, size, size): decodable and not trivially small."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 3, max(2, size // 16), max(2, size // 16)),
                          dtype=np.uint8)
    up = torch.nn.functional.interpolate(torch.from_numpy(coarse).float(), size=size,
                                         mode="bilinear", align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8).numpy()


def tensor_target(a: argparse.Namespace) -> Splits:
    images = _pictures(a.train_images + 2 * a.eval_images, a.image_size, 0)
    labels = torch.from_numpy(np.arange(len(images)) % a.classes)
    parts = np.split(np.arange(len(images)), [a.train_images, a.train_images + a.eval_images])

    def make(idx, augment=None):
        return TensorImageDataset(torch.from_numpy(images[idx]), labels[idx], MEAN, STD, augment)

    return Splits("synthetic-224", make(parts[0], BatchAugment(pad=16, flip=True)),
                  make(parts[1]), make(parts[2]), [str(c) for c in range(a.classes)])


def training_part(a: argparse.Namespace, device: torch.device) -> dict:
    splits = tensor_target(a)
    sources = [SourceSpec(name=f"random{j}", arch=a.arch, weights=None) for j in range(2)]
    recipe = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, progress=False,
                         device=str(device))
    setup = Setup(name=f"synthetic {a.image_size} px, 2 x {a.arch}", sources=sources,
                  splits=splits, lam=0.2, freeze_bn_stats=False, pso={}, fitness=recipe,
                  final=recipe, scheme=(0, 0))
    ref = load_reference()
    with tempfile.TemporaryDirectory(prefix="amcf-gpu-check-") as tmp:
        files = ref.file_splits(splits, Path(tmp))
        # the reference decodes in its own process, as the authors' script does
        return compare_training(setup, ref, files, epochs=a.epochs, device=device)


def _photos(root: Path, n: int, classes: int, size: tuple[int, int]) -> None:
    w, h = size
    side = max(w, h)
    pics = _pictures(n, side, 1)
    for i in range(n):
        folder = root / f"c{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(pics[i].transpose(1, 2, 0)).crop((0, 0, w, h))
        img.save(folder / f"{i:05d}.jpg", quality=90)


def _step(models, opts, x, y, amp: bool, channels_last: bool):
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    with autocast:
        logits = [m(x) for m in models]
    loss = collaborative_loss([z.float() for z in logits], y, 0.2)
    for o in opts:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in opts:
        o.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def files_part(a: argparse.Namespace, device: torch.device, workers: int) -> dict:
    import timm

    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="amcf-gpu-check-files-") as tmp:
        root, out = Path(tmp) / "photos", Path(tmp) / "prepared"
        n = a.batch_size * (a.steps + 4)
        start = time.perf_counter()
        _photos(root, n, a.classes, tuple(a.photo_size))
        generate_s = time.perf_counter() - start
        [entry] = load_entries([{"name": "photos", "kind": "folder", "path": str(root),
                                 "mode": "files", "test_fraction": 0.05, "val_fraction": 0.05}])
        start = time.perf_counter()
        prepare_folder(entry, out)
        prepare_s = time.perf_counter() - start
        splits = load_splits("photos", out, image_size=a.image_size, resize=a.resize)

        torch.manual_seed(0)
        models = [timm.create_model(a.arch, num_classes=len(splits.classes)).to(device)
                  for _ in range(2)]
        for m in models:
            if cuda:
                m.to(memory_format=torch.channels_last)
            m.train()
        opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                                fused=True if cuda else None) for m in models]
        generator = torch.Generator().manual_seed(0)

        def batches():
            while True:
                yield from iterate_batches(splits.train, a.batch_size, train=True,
                                           generator=generator, device=device,
                                           num_workers=workers)

        feed = batches()
        for _ in range(3):  # warm-up: workers start, cuDNN picks its kernels
            _step(models, opts, *next(feed), cuda, cuda)
        _sync(device)
        start = time.perf_counter()
        for _ in range(a.steps):
            _step(models, opts, *next(feed), cuda, cuda)
        _sync(device)
        real = (time.perf_counter() - start) / a.steps

        x, y = next(feed)
        _sync(device)
        start = time.perf_counter()
        for _ in range(a.steps):
            _step(models, opts, x, y, cuda, cuda)
        _sync(device)
        resident = (time.perf_counter() - start) / a.steps

        loader_rate = _loader_rate(splits.train, a, workers, persistent=True)
        originals = FileImageDataset(root, [str(p.relative_to(root)) for p in
                                            sorted(root.rglob("*.jpg"))],
                                     [0] * n, paper_transform(True, a.image_size, a.resize))
        authors_rate = _loader_rate(originals, a, workers, persistent=False)
    return {"images": n, "photo_size": list(a.photo_size), "generate_s": generate_s,
            "prepare_s": prepare_s, "workers": workers,
            "step_s_real_data": real, "step_s_resident_batch": resident,
            "gpu_busy_share": resident / real,
            "train_images_per_s_real_data": a.batch_size / real,
            "decode_images_per_s_stored_256_persistent": loader_rate,
            "decode_images_per_s_full_size_new_loader_each_epoch": authors_rate}


def _loader_rate(dataset, a: argparse.Namespace, workers: int, *, persistent: bool) -> float:
    """Images/s a data pipeline delivers on its own: two passes, no model."""
    seen, start = 0, time.perf_counter()
    for epoch in range(2):
        if persistent:
            batches = iterate_batches(dataset, a.batch_size, train=True,
                                      generator=torch.Generator().manual_seed(epoch),
                                      num_workers=workers)
        else:
            batches = torch.utils.data.DataLoader(dataset, batch_size=a.batch_size,
                                                  shuffle=True, num_workers=workers)
        for x, _ in batches:
            seen += x.shape[0]
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible (torch.cuda.is_available() is False). "
              "Run it on a machine with an NVIDIA GPU and the CUDA build of torch; "
              "`amcf bench` is the CPU comparison.", file=sys.stderr)
        return 2
    workers = a.workers if a.workers is not None else min(8, max(0, usable_cores() - 1))
    started = time.perf_counter()
    report = {"machine": machine(), "device": str(device), "arch": a.arch,
              "image_size": a.image_size, "batch_size": a.batch_size}
    print(f"gpu-check on {report['machine']['cuda'] or report['machine']['cpu']}: training "
          f"2 x {a.arch} at {a.image_size} px, reference vs amcf ...", flush=True)
    report["training"] = training_part(a, device)
    report["train_ratio"] = report["training"]["train_ratio"]
    print(f"  training images/s: reference "
          f"{report['training']['reference']['train_images_per_s']:.0f}, amcf "
          f"{report['training']['amcf']['train_images_per_s']:.0f} "
          f"(ratio {report['train_ratio']:.2f})", flush=True)
    print("files path with JPEG decoding ...", flush=True)
    report["files"] = files_part(a, device, workers)
    report["gpu_busy_share"] = report["files"]["gpu_busy_share"]
    report["wall_s"] = time.perf_counter() - started
    print(f"  step with real data {1000 * report['files']['step_s_real_data']:.1f} ms, with a "
          f"resident batch {1000 * report['files']['step_s_resident_batch']:.1f} ms: GPU busy "
          f"{100 * report['gpu_busy_share']:.0f} %; decode "
          f"{report['files']['decode_images_per_s_stored_256_persistent']:.0f} img/s stored "
          f"vs {report['files']['decode_images_per_s_full_size_new_loader_each_epoch']:.0f} "
          f"img/s full size", flush=True)
    write_json(a.out, report)
    print(json.dumps({k: report[k] for k in ("train_ratio", "gpu_busy_share", "wall_s")}))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
