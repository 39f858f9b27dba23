"""Why CUDA cannot be used here, in words that say what to do about it.

A recipe that asks for ``device: cuda`` must never train on the CPU instead (ResNet-50 at
224 px would take weeks), and must not fail hours in. :func:`cuda_problem` tells apart the
three cases a user meets: no NVIDIA GPU at all; a GPU whose driver is too old for the CUDA
this torch wheel was built for (``torch.version.cuda``); and CUDA working. The probes are
small functions of their own so that tests can stand in for each machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from importlib import metadata
from pathlib import Path

import torch

# NVIDIA's minor version compatibility: a build for CUDA major M runs on any driver of at
# least this version (docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility).
MIN_DRIVER = {13: 580, 12: 525, 11: 450}
WHEEL_INDEX = "https://download.pytorch.org/whl"
DRIVER_FILE = Path("/proc/driver/nvidia/version")


class CudaUnavailable(RuntimeError):
    """A recipe asks for CUDA and this machine cannot give it."""


def driver_version() -> str | None:
    """The loaded NVIDIA kernel driver's version (e.g. ``'550.54.15'``), or None without one."""
    try:
        text = DRIVER_FILE.read_text(errors="replace")
    except OSError:
        text = ""
    found = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+\.\d+(?:\.\d+)?)", text)
    if found:
        return found.group(1)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        proc = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    first = proc.stdout.strip().splitlines()[:1]
    return first[0].strip() if proc.returncode == 0 and first else None


def torch_sees_cuda() -> tuple[bool, str]:
    """Whether torch can use a CUDA device, and what torch warned while finding out (it says
    so, e.g. "The NVIDIA driver on your system is too old", rather than raising)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    return available, " ".join(str(w.message).strip() for w in caught)


def wheel_cuda() -> str | None:
    """The CUDA version the installed torch was built for (``torch.version.cuda``)."""
    return torch.version.cuda


def _plain(version: str) -> str:
    return version.split("+")[0]


def install_command(index: str) -> str:
    """The pip command that installs this torch and torchvision from one of PyTorch's indexes."""
    try:
        vision = f" torchvision=={_plain(metadata.version('torchvision'))}"
    except metadata.PackageNotFoundError:
        vision = ""
    torch_pin = f"torch=={_plain(torch.__version__)}"
    return f"pip install {torch_pin}{vision} --index-url {WHEEL_INDEX}/{index}"


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def _older_driver_advice(driver: int | None) -> str:
    """Which of PyTorch's wheels runs on a driver older than this wheel needs."""
    if driver is not None and driver < MIN_DRIVER[12]:
        return (f"No CUDA 12 or 13 build runs on a driver older than {MIN_DRIVER[12]}: update "
                "the driver.")
    return ("Either update the driver, or install PyTorch's build for CUDA 12, which runs on "
            f"drivers >= {MIN_DRIVER[12]}: {install_command('cu126')} (or .../cu128 on a "
            "driver >= 570).")


def cuda_problem() -> str | None:
    """None when torch can use CUDA here; else what is wrong and how to fix it."""
    available, warned = torch_sees_cuda()
    if available:
        return None
    built = wheel_cuda()
    version = _plain(torch.__version__)
    if built is None:
        return (f"the installed torch {torch.__version__} is a CPU-only build. Install a CUDA "
                f"build: {install_command('cu130')} (needs an NVIDIA driver >= "
                f"{MIN_DRIVER[13]}; for an older driver, .../cu126).")
    need = MIN_DRIVER.get(_major(built) or 0)
    needs = f"an NVIDIA driver >= {need}" if need else "a matching NVIDIA driver"
    driver = driver_version()
    if driver is None:
        return ("no NVIDIA GPU was found on this machine (no driver: neither "
                f"{DRIVER_FILE} nor nvidia-smi). The installed torch {version} is built for "
                f"CUDA {built}, which needs {needs}. Run on a machine with an NVIDIA GPU and "
                "its driver; on a CPU use the embedded default or the rehearsal profile.")
    found = _major(driver)
    if need is not None and found is not None and found < need:
        return (f"the NVIDIA driver {driver} is too old for the installed torch {version}, "
                f"which is built for CUDA {built} and needs {needs}. "
                + _older_driver_advice(found) + (f" (torch said: {warned})" if warned else ""))
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = (f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU from this process; unset it"
             if hidden is not None and hidden.strip() in ("", "-1")
             else "check that `nvidia-smi` lists a GPU and that CUDA_VISIBLE_DEVICES does "
             "not hide it")
    return (f"NVIDIA driver {driver} is loaded and the installed torch {version} (CUDA "
            f"{built}) needs {needs}, yet torch finds no usable CUDA device"
            + (f" ({warned})" if warned else "") + f": {where}.")


def require_cuda(what: str = "this run") -> None:
    """Raise :class:`CudaUnavailable` naming ``what`` asked for CUDA, unless CUDA works."""
    problem = cuda_problem()
    if problem is not None:
        raise CudaUnavailable(f"{what} requires CUDA, but {problem}")


def requires_cuda(device: str) -> bool:
    """Whether a recipe's ``device`` setting asks for CUDA (``cuda`` or ``cuda:N``)."""
    return device.split(":")[0] == "cuda"
