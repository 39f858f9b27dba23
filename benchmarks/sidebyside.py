"""amcf's trainer and search against the authors' loop, side by side (``amcf bench``).

The yardstick is ``benchmarks/reference.py`` (the authors' loop, written from the method
description). For each target, on the same source models, data, seed and number of steps:

- training and search: both loops in this process, with the same kernels and threads, so
  the ratios hold even on a loaded machine; the command checks that both compute the same
  loss on the same first batch and that both searches choose the same scheme;
- trainings side by side: N independent trainings (seeds) through the pipeline's own
  fan-out (:func:`compendium.pipeline.fanout.run_all`: local worker processes, one thread
  each under the numerical policy), against the reference doing them one after another in
  this process with the machine's threads, as the script would.

It prints the figures and writes them as JSON. Speed is never asserted.
"""

from __future__ import annotations

import dataclasses
import functools
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

    from compendium.data.prepared import load_splits
    from compendium.params import load_params
    from compendium.stages.runs import source_draws

    p = load_params(params)
    if target not in p.targets:
        raise ValueError(f"--target {target!r} is not a target of {params} "
                         f"({', '.join(p.targets)})")
    # the sources of the first draw (the one training seed 0 and the first search use)
    specs = source_draws({n: s.model_dump() for n, s in p.amcf.sources.items()})[0]
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


def compare_training(setup: Setup, ref: ModuleType, files: Any, *, epochs: int, device
                     ) -> dict[str, Any]:
    """Train the same K frozen models with both loops for the same steps; images/s and memory."""
    device = torch.device(device)
    config = setup.final.model_copy(update={"epochs": epochs, "device": str(device)})
    loop = ref.ReferenceLoop(files, setup.lam, ref.Recipe.from_config(config), device)

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
    }
    row["train_ratio"] = (row["amcf"]["train_images_per_s"]
                          / row["reference"]["train_images_per_s"])
    row["eval_ratio"] = row["amcf"]["eval_images_per_s"] / row["reference"]["eval_images_per_s"]
    return row


def eval_policy_cost(setup: Setup, *, device) -> dict[str, Any]:
    """What evaluating test every epoch costs (the paper's best-over-epochs column needs it)
    against evaluating it only when a validation accuracy improves, in one final run, and
    against ``selected`` (only the epochs selection reports, after training), run as well.

    The history is the same under every policy (tests check it), so one run with test
    every epoch tells how many of its test passes ``improved`` would make; the ``selected``
    run is timed, and must report the same test accuracies.
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
    selected = fit(setup.frozen(setup.scheme), setup.splits,
                   config.model_copy(update={"test_eval": "selected"}), MCLoss(setup.lam))
    if (selected.test_acc, selected.metrics["final_test_acc"]) != (
            result.test_acc, result.metrics["final_test_acc"]):
        raise RuntimeError("test_eval 'selected' reported other test accuracies than 'every'")
    s = selected.breakdown
    return {"epochs": config.epochs, "val_images": val_n, "test_images": test_n,
            "test_pass_s": test_pass_s, "run_wall_s": wall,
            "every": {"test_passes": t["test_evaluations"],
                      "share_of_wall": t["test_evaluations"] * test_pass_s / wall},
            "improved": {"test_passes": needed, "share_of_wall": needed * test_pass_s / wall},
            "selected": {"test_passes": s["test_evaluations"],
                         "run_wall_s": s["train_s"] + s["eval_s"]},
            "saved_share": (t["test_evaluations"] - needed) * test_pass_s / wall}


def compare_search(setup: Setup, ref: ModuleType, files: Any, *, device) -> dict[str, Any]:
    """The paper's procedure (no memo, fresh builds, the reference loop) against run_amls."""
    from amcf.amls import run_amls
    from amcf.layers import freeze_bottom, num_layers

    fitness_config = setup.fitness.model_copy(update={"device": str(device)})
    start = time.perf_counter()
    ours = run_amls(setup.sources, setup.splits, setup.pso, fitness_config, setup.lam,
                    freeze_bn_stats=setup.freeze_bn_stats, build=setup.build_one)
    ours_s = time.perf_counter() - start

    loop = ref.ReferenceLoop(files, setup.lam, ref.Recipe.from_config(fitness_config), device)
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


def _amcf_training(setup: Setup, config: TrainConfig) -> dict[str, Any]:
    """One independent training as a stage runs it in a local worker (a seed of ``amcf@``)."""
    from amcf.objective import MCLoss

    result = fit(setup.frozen(setup.scheme), setup.splits, config, MCLoss(setup.lam))
    return {"seed": config.seed, "first_loss": result.breakdown["first_loss"],
            "test_acc": result.test_acc, "pid": os.getpid(), "threads": torch.get_num_threads()}


def _started() -> int:
    """Nothing but what a worker pays before its first training: start-up and imports."""
    import amcf.train.fit  # noqa: F401

    return os.getpid()


@contextmanager
def _local_workers(workers: int):
    """``run_all`` with ``workers`` local processes, in a pool started (and ended) inside."""
    from compendium.pipeline import fanout

    saved = os.environ.get(fanout.LOCAL_WORKERS_ENV)
    os.environ[fanout.LOCAL_WORKERS_ENV] = str(workers)
    try:
        yield fanout
    finally:
        fanout.end_local_workers()  # a stage's pool ends with the stage: charge its ending too
        if saved is None:
            os.environ.pop(fanout.LOCAL_WORKERS_ENV, None)
        else:
            os.environ[fanout.LOCAL_WORKERS_ENV] = saved


def compare_parallel(setup: Setup, ref: ModuleType, files: Any, *, trainings: int,
                     workers: int, epochs: int, device) -> dict[str, Any]:
    """``trainings`` independent trainings (seeds 0, 1, ...), each the final recipe for
    ``epochs`` epochs: amcf side by side through the pipeline's fan-out with ``workers``
    local processes (their start and end included), the reference one after another here.

    The reference's trainings share this process, so it pays no start-up per training,
    which the script, run once per seed, would: the ratio is a lower bound.
    """
    device = torch.device(device)
    seeds = list(range(trainings))
    config = setup.final.model_copy(update={"epochs": epochs, "device": str(device)})
    begun = time.perf_counter()
    with _local_workers(workers) as fanout:
        fanout.run_all([_started] * workers)
        ready = time.perf_counter()
        ours = fanout.run_all([functools.partial(
            _amcf_training, dataclasses.replace(
                setup, final=setup.final.model_copy(update={"seed": seed})),
            config.model_copy(update={"seed": seed})) for seed in seeds])
        trained = time.perf_counter()
    ended = time.perf_counter()

    start = time.perf_counter()
    theirs = []
    for seed in seeds:  # one run of the script per seed: its own loaders and models
        recipe = dataclasses.replace(ref.Recipe.from_config(config), seed=seed)
        models = dataclasses.replace(
            setup, final=setup.final.model_copy(update={"seed": seed})).frozen(setup.scheme)
        theirs.append(ref.ReferenceLoop(files, setup.lam, recipe, device).train(models))
    ref_s = time.perf_counter() - start

    amp = config.amp and device.type == "cuda"
    for a, b in zip(theirs, ours, strict=True):
        if abs(a.first_loss - b["first_loss"]) > LOSS_RTOL[amp] * abs(a.first_loss):
            raise AssertionError(
                f"seed {b['seed']}: the reference's first-batch loss {a.first_loss!r} is not "
                f"amcf's {b['first_loss']!r} in its worker: they no longer train the same "
                "models on the same data")
    return {
        "trainings": trainings, "epochs": epochs, "workers": workers,
        "worker_pids": sorted({row["pid"] for row in ours}),
        "worker_threads": sorted({row["threads"] for row in ours}),
        "reference": {"wall_s": ref_s, "threads": torch.get_num_threads()},
        "amcf": {"wall_s": ended - begun, "start_s": ready - begun,
                 "trainings_s": trained - ready, "end_s": ended - trained},
        "parallel_ratio": ref_s / (ended - begun),
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


def bench_target(setup: Setup, ref: ModuleType, *, device: torch.device, epochs: int,
                 search: bool, trainings: int, workers: int,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every comparison on one target; its JSON-ready part of the report."""
    if not isinstance(setup.splits.train, TensorImageDataset):
        raise TypeError("amcf bench compares on a tensor target (uint8 images in memory), "
                        f"got {type(setup.splits.train).__name__}")
    out: dict[str, Any] = {"setup": setup.name, "train_images": len(setup.splits.train),
                           "batch_size": setup.final.batch_size}
    with tempfile.TemporaryDirectory(prefix="amcf-bench-") as tmp:
        files = ref.file_splits(setup.splits, Path(tmp))
        log(f"{setup.name}: training, {len(setup.sources)} models, {epochs} epochs ...")
        out["training"] = compare_training(setup, ref, files, epochs=epochs, device=device)
        log(f"{setup.name}: test evaluation policy, one {setup.final.epochs}-epoch final run ...")
        out["test_eval"] = eval_policy_cost(setup, device=device)
        if search:
            log(f"{setup.name}: search, the paper's procedure, then amcf's ...")
            out["search"] = compare_search(setup, ref, files, device=device)
        if trainings:
            log(f"{setup.name}: {trainings} trainings, {workers} side by side, then in turn ...")
            out["parallel"] = compare_parallel(setup, ref, files, trainings=trainings,
                                               workers=workers, epochs=epochs, device=device)
    out["ratios"] = {
        "train": out["training"]["train_ratio"], "eval": out["training"]["eval_ratio"],
        "search": out["search"]["search_ratio"] if search else None,
        "parallel": out["parallel"]["parallel_ratio"] if trainings else None}
    return out


def default_workers() -> int:
    """The local worker processes a stage would use here (``AMCF_LOCAL_WORKERS``, else one per
    core under the numerical policy), at least 2, so the comparison runs side by side."""
    from compendium.pipeline.fanout import local_workers

    return max(2, local_workers())


def run_bench(setups: Sequence[Setup], *, device: str = "auto", epochs: int = 4,
              threads: int | None = None, search: bool = True, trainings: int = 4,
              workers: int | None = None,
              stages: Callable[[], dict[str, Any]] | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every comparison on every target of ``setups``; returns the JSON-ready report."""
    ref = load_reference()
    dev = resolve_device(device)
    # both loops in this process get the machine's cores, as the script would (a shell with
    # OMP_NUM_THREADS=1 would give them one); the side-by-side workers take one each
    torch.set_num_threads(threads or usable_cores())
    workers = default_workers() if workers is None else workers
    report: dict[str, Any] = {"device": str(dev), "machine": machine(), "targets": []}
    started = time.perf_counter()
    for setup in setups:
        report["targets"].append(bench_target(setup, ref, device=dev, epochs=epochs,
                                              search=search, trainings=trainings,
                                              workers=workers, log=log))
    if stages is not None:
        report["stages"] = stages()
    report["ratios"] = {t["setup"]: t["ratios"] for t in report["targets"]}
    report["same_scheme"] = ({t["setup"]: t["search"]["same_scheme"] for t in report["targets"]}
                             if search else None)
    report["bench_wall_s"] = time.perf_counter() - started
    return report


def _render_target(t: dict[str, Any]) -> list[str]:
    tr = t["training"]
    lines = [f"{t['setup']} ({t['train_images']} training images, batch {t['batch_size']}):",
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
    te = t["test_eval"]
    lines.append(f"test split every epoch: {te['every']['test_passes']} passes, "
                 f"{100 * te['every']['share_of_wall']:.0f} % of a {te['epochs']}-epoch run; "
                 f"only when val improves: {te['improved']['test_passes']} passes, "
                 f"{100 * te['improved']['share_of_wall']:.0f} %; only the epochs selection "
                 f"reports: {te['selected']['test_passes']} passes, run "
                 f"{te['selected']['run_wall_s']:.2f} s against {te['run_wall_s']:.2f} s")
    if t.get("search"):
        s = t["search"]
        lines += [f"search ({s['swarm']['particles']} particles, {s['swarm']['iterations']} "
                  f"iterations, {s['fitness_epochs']}-epoch fitness):",
                  f"{'wall time s':24s}{s['reference']['wall_s']:12.1f}"
                  f"{s['amcf']['wall_s']:12.1f}{s['search_ratio']:8.2f}",
                  f"{'trainings':24s}{s['reference']['trainings']:12d}"
                  f"{s['amcf']['trainings']:12d}",
                  f"chosen scheme: reference {s['reference']['best']}, amcf {s['amcf']['best']}"
                  f" (same: {s['same_scheme']})"]
    if t.get("parallel"):
        p = t["parallel"]
        a = p["amcf"]
        threads = "/".join(map(str, p["worker_threads"]))
        lines += [f"{p['trainings']} trainings of {p['epochs']} epochs: reference one after "
                  f"another ({p['reference']['threads']} threads), amcf {p['workers']} side by "
                  f"side ({len(p['worker_pids'])} processes, {threads} thread each):",
                  f"{'wall time s':24s}{p['reference']['wall_s']:12.1f}{a['wall_s']:12.1f}"
                  f"{p['parallel_ratio']:8.2f}",
                  f"  amcf: workers start {a['start_s']:.1f} s, trainings {a['trainings_s']:.1f}"
                  f" s, workers end {a['end_s']:.1f} s"]
    return lines


def render(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    m = report["machine"]
    lines = [f"amcf bench ({report['device']}; {m['cpu']}, {m['cores']} cores, "
             f"{m['threads']} threads" + (f", {m['cuda']}" if m["cuda"] else "") + ")"]
    for t in report["targets"]:
        lines += _render_target(t)
    if report.get("stages"):
        from benchmarks.stage_costs import render_stages

        lines += render_stages(report["stages"])
    lines.append("ratios, amcf over the authors' loop (speed-up):")
    lines.append(f"{'target':24s}{'train':>8s}{'eval':>8s}{'search':>8s}{'parallel':>9s}")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for name, r in report["ratios"].items():
        lines.append(f"{name:24s}{fmt(r['train']):>8s}{fmt(r['eval']):>8s}"
                     f"{fmt(r['search']):>8s}{fmt(r['parallel']):>9s}")
    lines.append(f"same scheme: {report['same_scheme']}; {report['bench_wall_s']:.0f} s")
    return "\n".join(lines)


__all__ = ["Setup", "bench_target", "compare_parallel", "compare_search", "compare_training",
           "embedded_setup", "eval_policy_cost", "load_reference", "run_bench"]
