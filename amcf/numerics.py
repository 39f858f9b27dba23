"""The numerical policy: CPU results that are the same bits on any x86-64 CPU with AVX2.

PyTorch picks its CPU kernels by the machine it runs on: ATen's vectorised kernels by the
widest instruction set the CPU has, oneDNN's convolutions by instruction set (and, in
principle, cache sizes), MKL's BLAS by vendor and instruction set, and every library splits
its reductions by thread count. Each choice sums in another order, so the same seed gives
other weights on another CPU, and a few-shot benchmark's verdicts move with them.

The policy fixes every one of those choices to one that every x86-64 CPU with AVX2 and FMA
(Intel since 2013, AMD since 2015) can make, so that a result is a function of its inputs
and not of the machine:

- one thread per training (torch's intra-op, OpenMP, MKL, OpenBLAS): a training's sums
  are never split by thread; parallelism comes from running trainings side by side;
- ATen's kernels at the AVX2 level (``ATEN_CPU_CAPABILITY``);
- oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA``); NNPACK, which picks its own kernels, off;
- MKL in conditional numerical reproducibility mode, branch ``COMPATIBLE``: the one branch
  MKL documents as giving the same results on Intel and non-Intel CPUs (its ``AVX2`` branch
  falls back to automatic dispatch on AMD);
- NumPy's and OpenBLAS's dispatch held at the AVX2 level (the reporting's arithmetic);
- float32 matrix products in full float32 precision.

Which settings are necessary and sufficient was measured, not assumed (README, "Numerics";
``tests/test_numerics.py`` and ``benchmarks/emulated_cpus.py`` check it): without the policy,
each of the capability, the oneDNN ISA, the MKL branch, the MKL instruction set and the thread
count changes a training's bits; with it, none does, and a training under emulated AMD EPYC
and Intel Haswell CPUs gives the bits of a native AVX-512 Xeon.

``AMCF_NUMERICS=native`` switches the policy off (every kernel as the machine picks it): faster,
but the results then differ from the committed ones in their last bits, and so in more.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# Raise the version when a setting changes: results made under another policy differ in bits,
# so runs record it and a cached run under another policy is not reused. v2: the trainer's
# CPU convolutions went channels-last (TrainConfig.channels_last), which sums in another order.
POLICY = "x86-avx2-1thread-v2"
NATIVE = "native"
SWITCH = "AMCF_NUMERICS"
REQUIRED_FLAGS = ("avx2", "fma")
THREADS = 1

# NumPy's dispatch targets above AVX2 (names of NumPy 2.x and 1.x; unknown names are ignored)
_NUMPY_ABOVE_AVX2 = (
    "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX "
    "AVX512_CLX AVX512_CNL AVX512_FP16")

ENVIRONMENT: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "OPENBLAS_NUM_THREADS": str(THREADS),
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": _NUMPY_ABOVE_AVX2,
}


class NumericsError(RuntimeError):
    """The policy cannot hold here: this CPU lacks what it needs, or torch ran too early."""


def enabled() -> bool:
    """Whether the policy is on (``AMCF_NUMERICS`` unset or not ``native``)."""
    value = os.environ.get(SWITCH, POLICY)
    if value not in (POLICY, NATIVE, ""):
        raise NumericsError(
            f"{SWITCH}={value!r}: use {NATIVE!r} to switch the numerical policy off, or unset it "
            f"(the policy {POLICY!r})")
    return value != NATIVE


def name() -> str:
    """The numerics a run in this process uses: the policy's name, or ``native``."""
    return POLICY if enabled() else NATIVE


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The CPU's feature flags (Linux), or None where the kernel does not list them."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name, for timing records (never for committed results)."""
    for line in (_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown CPU"


def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> None:
    """Raise :class:`NumericsError` unless this CPU can honour the policy (x86-64, AVX2, FMA)."""
    if not enabled():
        return
    machine = machine or platform.machine()
    fix = (f"Results computed here would differ from the committed ones. To run anyway, set "
           f"{SWITCH}={NATIVE} (make reproduce's byte-for-byte check will then fail), or run on "
           "an x86-64 machine with AVX2 (any Intel CPU since 2013 or AMD CPU since 2015).")
    if machine.lower() not in ("x86_64", "amd64"):
        raise NumericsError(
            f"the numerical policy {POLICY} needs an x86-64 CPU with AVX2 and FMA; this machine "
            f"is {machine}. {fix}")
    flags = cpu_flags(cpuinfo)
    missing = [f for f in REQUIRED_FLAGS if flags is not None and f not in flags]
    if missing:
        raise NumericsError(
            f"the numerical policy {POLICY} needs a CPU with {' and '.join(REQUIRED_FLAGS)}; "
            f"this CPU ({cpu_name(cpuinfo)}) lacks {', '.join(missing)}. {fix}")


def set_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Put the policy's variables into ``environ`` (default: this process's, so that the
    processes it starts, a notebook's kernel or a worker, inherit them); returns ``environ``.

    The variables take effect in a process only if set before its first torch operation (they
    are read once, when a library first dispatches), which :func:`apply` checks."""
    environ = os.environ if environ is None else environ
    if enabled():
        environ.update(ENVIRONMENT)
    return environ


def apply() -> str:
    """Put the policy in force in this process; returns its name (or ``native``).

    Call it before torch computes anything: the first cell of every notebook does, as do the
    stage command, the local and Ray workers and the tests. Raises :class:`NumericsError` when
    the CPU cannot honour the policy, or when torch already chose its kernels otherwise (then
    restart the kernel or process and call this first).
    """
    if not enabled():
        return NATIVE
    check_cpu()
    set_environment()
    _check_numpy()
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "AVX2":
        raise NumericsError(
            f"torch already runs its CPU kernels at the {capability} level, chosen before the "
            f"numerical policy {POLICY} was applied: restart the kernel (or process) and run "
            "`amcf.numerics.apply()` before anything else touches torch (every notebook's "
            "first cell does)")
    torch.set_num_threads(THREADS)
    torch.backends.nnpack.set_flags(False)
    torch.set_float32_matmul_precision("highest")
    return POLICY


def _check_numpy() -> None:
    """NumPy reads its dispatch limit when imported: one imported before :func:`apply` may
    use AVX-512 kernels (whose last bits differ from the AVX2 ones) for the reporting."""
    core = sys.modules.get("numpy._core._multiarray_umath") or sys.modules.get(
        "numpy.core._multiarray_umath")
    features = getattr(core, "__cpu_features__", {}) if core is not None else {}
    targets = getattr(core, "__cpu_dispatch__", []) if core is not None else []
    above = [f for f in targets if f in _NUMPY_ABOVE_AVX2.split() and features.get(f)]
    if above:
        raise NumericsError(
            f"NumPy was imported before the numerical policy {POLICY} was applied and uses "
            f"{', '.join(above)} kernels: restart the kernel (or process) and run "
            "`amcf.numerics.apply()` before anything else imports NumPy (every notebook's first "
            "cell does)")
