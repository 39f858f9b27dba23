"""The numerical policy: a short real pipeline gives the same bytes whatever kernels the
machine would pick (benchmarks/numerics.py runs it; here its grouped overrides)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amcf import numerics

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("numerics_bench",
                                                  ROOT / "benchmarks" / "numerics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_short_pipeline_gives_the_same_bytes_under_every_override():
    """Pretrainings, searches and AMCF runs: the policy's bytes do not move with the ATen
    capability, oneDNN's ISA, MKL's branch and ISA, thread counts or side-by-side workers;
    with the policy off, the same overrides move them (so the check can fail)."""
    bench = _bench()
    runs = {label: bench.run_variant(env, policy=True, timeout=600)[0]
            for label, env in bench.GROUPS.items()}
    reference = runs["plain"]
    assert len(reference) >= 20 and any(k.endswith(".pt") for k in reference)
    for label, digests in runs.items():
        changed = sorted(k for k in reference if digests.get(k) != reference[k])
        assert digests.keys() == reference.keys() and not changed, (label, changed)

    native = {label: bench.run_variant(env, policy=False, timeout=600)[0]
              for label, env in (("plain", {}), ("low", bench.GROUPS["low"]))}
    assert native["plain"]["a.pt"] != native["low"]["a.pt"]  # the kernels do matter


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in numerics.ENVIRONMENT}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_apply_pins_the_kernels_and_threads_in_a_fresh_process():
    proc = _python(
        "from amcf import numerics; name = numerics.apply(); import torch; "
        "print(name, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), "
        "torch.backends.nnpack.is_available() and torch._C._get_nnpack_enabled())",
        ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [numerics.POLICY, "AVX2", "1", "False"]


def test_apply_refuses_when_torch_chose_its_kernels_first():
    # NumPy (which torch imports) held at AVX2 already, so that torch's own check is reached
    numpy_ok = {"NPY_DISABLE_CPU_FEATURES": numerics.ENVIRONMENT["NPY_DISABLE_CPU_FEATURES"]}
    proc = _python("import torch; torch.ones(3).sum(); from amcf import numerics; "
                   "numerics.apply()", ATEN_CPU_CAPABILITY="default", **numpy_ok)
    assert proc.returncode != 0
    assert "restart the kernel" in proc.stderr and "DEFAULT" in proc.stderr


def test_apply_refuses_numpy_imported_first_with_avx512_kernels():
    proc = _python("import numpy; from amcf import numerics; numerics.apply()")
    features = _python("import numpy._core._multiarray_umath as m; "
                       "print(m.__cpu_features__.get('X86_V4', False))")
    if features.stdout.strip() != "True":
        pytest.skip("this CPU has no AVX-512: NumPy's kernels are at the AVX2 level anyway")
    assert proc.returncode != 0 and "NumPy was imported before" in proc.stderr


@pytest.mark.parametrize(("cpuinfo", "machine", "missing"), [
    ("flags\t: fpu sse2 avx\n", "x86_64", "avx2, fma"),
    ("flags\t: fpu sse2 avx avx2\n", "x86_64", "fma"),
    ("", "arm64", "arm64"),
])
def test_a_cpu_that_cannot_honour_the_policy_is_refused_with_the_fix(cpuinfo, machine,
                                                                     missing, monkeypatch):
    monkeypatch.delenv(numerics.SWITCH, raising=False)
    with pytest.raises(numerics.NumericsError) as err:
        numerics.check_cpu(cpuinfo, machine)
    assert missing in str(err.value) and f"{numerics.SWITCH}=native" in str(err.value)
    monkeypatch.setenv(numerics.SWITCH, "native")
    numerics.check_cpu(cpuinfo, machine)  # switched off: nothing to honour


def test_a_cpu_with_avx2_and_fma_is_accepted(monkeypatch):
    monkeypatch.delenv(numerics.SWITCH, raising=False)
    numerics.check_cpu("model name\t: Some CPU\nflags\t: fpu avx avx2 fma\n", "x86_64")
    assert numerics.cpu_name("model name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"


def test_an_unknown_switch_value_is_refused(monkeypatch):
    monkeypatch.setenv(numerics.SWITCH, "fast")
    with pytest.raises(numerics.NumericsError, match="native"):
        numerics.enabled()


def test_make_reproduce_checks_the_cpu_before_anything_else():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nreproduce:", 1)[1].split("\n\n", 1)[0]
    first = [line.strip() for line in recipe.splitlines()[1:] if line.strip()][0]
    assert first == "$(BIN)/amcf numerics check"


def test_cli_check_names_the_policy_or_refuses_a_bad_switch():
    cmd = [sys.executable, "-m", "compendium.cli", "numerics", "check"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and numerics.POLICY in ok.stdout
    bad = subprocess.run(cmd, env={**os.environ, numerics.SWITCH: "bogus"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "AMCF_NUMERICS='bogus'" in bad.stderr
