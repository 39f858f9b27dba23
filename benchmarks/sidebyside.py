"""amcf's trainer and search against the authors' loop, side by side (``amcf bench``).

Both run in one process on the same source models, target data, seed and number of steps:
the yardstick is ``benchmarks/reference.py`` (the authors' loop, written from the method
description), so the ratios hold even on a loaded machine. The command checks that both
compute the same loss on the same first batch, and that both searches choose the same
scheme, then prints the figures and writes them as JSON. Speed is never asserted.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from amcf.datasets import Splits, TensorImageDataset
from amcf.train.config import TrainConfig, resolve_device, usable_cores
from amcf.train.fit import fit

REFERENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "reference.py"
# fp32 on both sides: the same first-batch loss up to summation order. With bf16 autocast
# (amcf on CUDA) the two differ by bf16 rounding, about 1e-2 relative.
LOSS_RTOL = {False: 1e-4, True: 3e-2}


def load_reference() -> ModuleType:
    """``benchmarks/reference.py``, the yardstick (it lives beside the package, not in it)."""
    if not REFERENCE.is_file():
        raise FileNotFoundError(
            f"the reference loop {REFERENCE} is missing: `amcf bench` runs from a checkout of "
            "the repository (pip install -e .), where benchmarks/ sits beside amcf/")
    spec = importlib.util.spec_from_file_location("amcf_reference_loop", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@dataclass
class Setup:
    """What both loops share: sources, target, method settings and recipes."""

    name: str
    sources: list[Any]  # SourceSpec
    splits: Splits
    lam: float
    freeze_bn_stats: bool
    pso: dict[str, Any]
    fitness: TrainConfig
    final: TrainConfig
    scheme: tuple[int, ...]  # the freezing scheme of the training comparison
    build_one: Callable[[int], nn.Module] | None = None  # default: amcf.models.build_model

    def build(self) -> list[nn.Module]:
        """The K source models with new heads, read from their files again."""
        if self.build_one is not None:
            return [self.build_one(j) for j in range(len(self.sources))]
        from amcf.models import build_model

        return [build_model(s, self.splits.num_classes, in_chans=self.splits.in_chans)
                for s in self.sources]

    def frozen(self, scheme: Sequence[int]) -> list[nn.Module]:
        from amcf.layers import freeze_bottom

        torch.manual_seed(self.final.seed)
        models = self.build()
        for m, k in zip(models, scheme, strict=True):
            freeze_bottom(m, int(k), freeze_bn_stats=self.freeze_bn_stats)
        return models


def embedded_setup(target: str = "digits", params: str | Path = "params.yaml",
                   prepared_dir: str | Path = "build/data") -> Setup:
    """The embedded default as params.yaml describes it, on one of its targets."""
    import json

    from amcf.models import SourceSpec
    from compendium.data.prepared import load_splits
    from compendium.params import load_params

    p = load_params(params)
    if target not in p.targets:
        raise ValueError(f"--target {target!r} is not a target of {params} "
                         f"({', '.join(p.targets)})")
    specs = [SourceSpec(name=n, **s.model_dump()) for n, s in p.amcf.sources.items()]
    missing = [s.weights for s in specs if s.weights not in (None, "hub")
               and not Path(s.weights).is_file()]
    if missing or not (Path(prepared_dir) / target / "info.json").is_file():
        raise FileNotFoundError(
            f"the embedded default's inputs are not built (missing: "
            f"{', '.join(map(str, missing)) or Path(prepared_dir) / target}); run "
            "`make inputs` (or `dvc repro prepare pretrain`) first")
    # the scheme the pipeline's search chose (results per profile, or the older flat layout)
    found = [f for f in (Path("results") / p.profile / target / "search.json",
                         Path("results") / target / "search.json") if f.is_file()]
    scheme = tuple(json.loads(found[0].read_text())["best"]) if found else (0,) * len(specs)
    quiet = {"progress": False}
    return Setup(name=f"embedded:{target}", sources=specs,
                 splits=load_splits(target, prepared_dir), lam=p.amcf.lam,
                 freeze_bn_stats=p.amcf.freeze_bn_stats, pso=p.search.pso.model_dump(),
                 fitness=p.search.fitness.model_copy(update=quiet),
                 final=p.final.train.model_copy(update={**quiet, "seed": p.seeds[0]}),
                 scheme=scheme)


class PeakMemory:
    """Peak memory of a block: this process's resident set (sampled), or CUDA's allocator."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @contextmanager
    def measure(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            yield self
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        if not Path("/proc/self/statm").exists():  # not Linux: no sampling
            yield self
            return
        self.peak = self._rss()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak = max(self.peak, self._rss())


def _rate(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("nan")


def compare_training(setup: Setup, ref: ModuleType, files: Any, *, epochs: int, device,
                     workers: int) -> dict[str, Any]:
    """Train the same K frozen models with both loops for the same steps; images/s and memory."""
    device = torch.device(device)
    config = setup.final.model_copy(update={"epochs": epochs, "device": str(device)})
    recipe = ref.Recipe.from_config(config, workers)
    loop = ref.ReferenceLoop(files, setup.lam, recipe, device)

    from amcf.objective import MCLoss

    # one untimed epoch first, so that neither loop pays the kernels' first-use set-up
    fit(setup.frozen(setup.scheme), setup.splits,
        config.model_copy(update={"epochs": 1, "eval_test": False}), MCLoss(setup.lam))
    memory = PeakMemory(device)
    with memory.measure():
        reference = loop.train(setup.frozen(setup.scheme), eval_test=True)
    ref_peak = memory.peak
    memory = PeakMemory(device)
    with memory.measure():
        ours = fit(setup.frozen(setup.scheme), setup.splits, config, MCLoss(setup.lam))
    ours_peak = memory.peak
    t = ours.breakdown
    amp = config.amp and device.type == "cuda"
    same_loss = abs(reference.first_loss - t["first_loss"]) <= LOSS_RTOL[amp] * abs(
        reference.first_loss)
    if not same_loss:
        raise AssertionError(
            f"the two loops disagree on the first batch's loss (reference "
            f"{reference.first_loss!r}, amcf {t['first_loss']!r}): they no longer train the "
            "same models on the same data, so their speeds cannot be compared")
    row = {
        "epochs": epochs, "steps": -(-len(setup.splits.train) // config.batch_size) * epochs,
        "batch_size": config.batch_size, "models": len(setup.sources),
        "first_batch_loss": {"reference": reference.first_loss, "amcf": t["first_loss"],
                             "rtol": LOSS_RTOL[amp]},
        "reference": {"train_images_per_s": _rate(reference.train_images, reference.train_s),
                      "eval_images_per_s": _rate(reference.eval_images, reference.eval_s),
                      "peak_memory_bytes": ref_peak},
        "amcf": {"train_images_per_s": _rate(t["train_images"], t["train_s"]),
                 "eval_images_per_s": _rate(t["eval_images"], t["eval_s"]),
                 "peak_memory_bytes": ours_peak},
        "memory_kind": "cuda max allocated" if device.type == "cuda" else "process RSS",
        "reference_workers": workers,
    }
    row["train_ratio"] = (row["amcf"]["train_images_per_s"]
                          / row["reference"]["train_images_per_s"])
    row["eval_ratio"] = row["amcf"]["eval_images_per_s"] / row["reference"]["eval_images_per_s"]
    return row


def eval_policy_cost(setup: Setup, *, device) -> dict[str, Any]:
    """What evaluating test every epoch costs (the paper's best-over-epochs column needs it)
    against evaluating it only when a validation accuracy improves, in one final run.

    The history is the same under both policies (tests check it), so one run with test
    every epoch tells how many of its test passes the other policy would make.
    """
    from amcf.objective import MCLoss
    from amcf.train.fit import val_improved

    config = setup.final.model_copy(update={"device": str(device), "test_eval": "every"})
    result = fit(setup.frozen(setup.scheme), setup.splits, config, MCLoss(setup.lam))
    t, history = result.breakdown, result.history
    needed = sum(val_improved(history[:i], (row["val_acc"], [
        row[f"val_acc_m{j}"] for j in range(len(setup.sources))]))
        for i, row in enumerate(history))
    val_n, test_n = len(setup.splits.val), len(setup.splits.test)
    per_image = t["eval_s"] / t["eval_images"]
    test_pass_s = per_image * test_n
    wall = t["train_s"] + t["eval_s"]
    return {"epochs": config.epochs, "val_images": val_n, "test_images": test_n,
            "test_pass_s": test_pass_s, "run_wall_s": wall,
            "every": {"test_passes": t["test_evaluations"],
                      "share_of_wall": t["test_evaluations"] * test_pass_s / wall},
            "improved": {"test_passes": needed, "share_of_wall": needed * test_pass_s / wall},
            "saved_share": (t["test_evaluations"] - needed) * test_pass_s / wall}


def compare_search(setup: Setup, ref: ModuleType, files: Any, *, device, workers: int
                   ) -> dict[str, Any]:
    """The paper's procedure (no memo, fresh builds, the reference loop) against run_amls."""
    from amcf.amls import run_amls
    from amcf.layers import freeze_bottom, num_layers

    fitness_config = setup.fitness.model_copy(update={"device": str(device)})
    start = time.perf_counter()
    ours = run_amls(setup.sources, setup.splits, setup.pso, fitness_config, setup.lam,
                    freeze_bn_stats=setup.freeze_bn_stats, build=setup.build_one)
    ours_s = time.perf_counter() - start

    loop = ref.ReferenceLoop(files, setup.lam, ref.Recipe.from_config(fitness_config, workers),
                             device)
    fitness = ref.reference_fitness(
        loop, setup.build,
        lambda m, k: freeze_bottom(m, k, freeze_bn_stats=setup.freeze_bn_stats))
    start = time.perf_counter()
    high = [num_layers(m) - 1 for m in setup.build()]
    pso = {k: v for k, v in setup.pso.items() if k in (
        "particles", "iterations", "seed", "c1", "c2", "w_start", "w_end", "v_max")}
    reference = ref.reference_pso(fitness, high, **pso)
    ref_s = time.perf_counter() - start
    return {
        "swarm": pso, "fitness_epochs": fitness_config.epochs,
        "reference": {"wall_s": ref_s, "calls": reference.calls,
                      "trainings": reference.trainings, "best": list(reference.best),
                      "best_fitness": reference.best_fitness},
        "amcf": {"wall_s": ours_s, "calls": ours.calls, "trainings": ours.evaluations,
                 "best": list(ours.best), "best_fitness": ours.best_fitness},
        "same_scheme": tuple(reference.best) == tuple(ours.best),
        "search_ratio": ref_s / ours_s,
    }


def machine() -> dict[str, Any]:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": usable_cores(),
            "threads": torch.get_num_threads(), "cuda": None}
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu"] = names[0] if names else info["cpu"]
    except OSError:
        pass
    if torch.cuda.is_available():
        info["cuda"] = torch.cuda.get_device_name(0)
    return info


def run_bench(setup: Setup, *, device: str = "auto", epochs: int = 4,
              workers: int | None = None, threads: int | None = None, search: bool = True,
              stages: Callable[[], dict[str, Any]] | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every comparison on ``setup``; returns the JSON-ready report."""
    ref = load_reference()
    dev = resolve_device(device)
    # both loops get the machine's cores, as a pipeline stage does (not the 1 thread that a
    # shell with OMP_NUM_THREADS=1 would give)
    torch.set_num_threads(threads or usable_cores())
    workers = ref.default_workers() if workers is None else workers
    report: dict[str, Any] = {"setup": setup.name, "device": str(dev), "machine": machine()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amcf-bench-") as tmp:
        if not isinstance(setup.splits.train, TensorImageDataset):
            raise TypeError("amcf bench compares on a tensor target (uint8 images in memory), "
                            f"got {type(setup.splits.train).__name__}")
        files = ref.file_splits(setup.splits, Path(tmp))
        log(f"training: {len(setup.sources)} models, {epochs} epochs on {setup.name} ...")
        report["training"] = compare_training(setup, ref, files, epochs=epochs, device=dev,
                                              workers=workers)
        log(f"test evaluation policy: one {setup.final.epochs}-epoch final run ...")
        report["test_eval"] = eval_policy_cost(setup, device=dev)
        if search:
            log("search: the paper's procedure, then amcf's ...")
            report["search"] = compare_search(setup, ref, files, device=dev, workers=workers)
    if stages is not None:
        report["stages"] = stages()
    report["train_ratio"] = report["training"]["train_ratio"]
    report["search_ratio"] = report["search"]["search_ratio"] if search else None
    report["same_scheme"] = report["search"]["same_scheme"] if search else None
    report["bench_wall_s"] = time.perf_counter() - started
    return report


def render(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    tr = report["training"]
    lines = [f"amcf bench on {report['setup']} ({report['device']}; "
             f"{report['machine']['cpu']}, {report['machine']['cores']} cores"
             + (f", {report['machine']['cuda']}" if report["machine"]["cuda"] else "") + ")",
             f"first-batch loss: reference {tr['first_batch_loss']['reference']:.6f}, "
             f"amcf {tr['first_batch_loss']['amcf']:.6f} (same)",
             f"{'':24s}{'reference':>12s}{'amcf':>12s}{'ratio':>8s}"]
    for key, label in (("train_images_per_s", "training images/s"),
                       ("eval_images_per_s", "evaluation images/s")):
        a, b = tr["reference"][key], tr["amcf"][key]
        lines.append(f"{label:24s}{a:12.0f}{b:12.0f}{b / a:8.2f}")
    mib = 2**20
    lines.append(f"{'peak memory MiB':24s}{tr['reference']['peak_memory_bytes'] / mib:12.0f}"
                 f"{tr['amcf']['peak_memory_bytes'] / mib:12.0f}   ({tr['memory_kind']})")
    te = report["test_eval"]
    lines.append(f"test split every epoch: {te['every']['test_passes']} passes, "
                 f"{100 * te['every']['share_of_wall']:.0f} % of a {te['epochs']}-epoch run; "
                 f"only when val improves: {te['improved']['test_passes']} passes, "
                 f"{100 * te['improved']['share_of_wall']:.0f} %")
    if report.get("search"):
        s = report["search"]
        lines += [f"search ({s['swarm']['particles']} particles, {s['swarm']['iterations']} "
                  f"iterations, {s['fitness_epochs']}-epoch fitness):",
                  f"{'':24s}{'reference':>12s}{'amcf':>12s}{'ratio':>8s}",
                  f"{'wall time s':24s}{s['reference']['wall_s']:12.1f}"
                  f"{s['amcf']['wall_s']:12.1f}{s['search_ratio']:8.2f}",
                  f"{'trainings':24s}{s['reference']['trainings']:12d}"
                  f"{s['amcf']['trainings']:12d}",
                  f"chosen scheme: reference {s['reference']['best']}, amcf {s['amcf']['best']}"
                  f" (same: {s['same_scheme']})"]
    if report.get("stages"):
        from benchmarks.stage_costs import render_stages

        lines += render_stages(report["stages"])
    lines.append(f"train_ratio {report['train_ratio']:.2f}, search_ratio "
                 f"{report['search_ratio'] or float('nan'):.2f}, same_scheme "
                 f"{report['same_scheme']}; {report['bench_wall_s']:.0f} s")
    return "\n".join(lines)


__all__ = ["Setup", "compare_search", "compare_training", "embedded_setup", "load_reference",
           "run_bench", "eval_policy_cost"]
