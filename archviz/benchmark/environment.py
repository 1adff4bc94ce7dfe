"""What this machine can run and what it is: devices, dtype caveats, memory, MachineInfo.

Benchmarks mean little without the machine they ran on, and a missing GPU should be a
labelled row with a reason rather than a traceback.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import psutil
import torch

from archviz.benchmark.records import MachineInfo
from archviz.errors import ArchvizError

DEVICES = ("cpu", "cuda")  # one source of truth for the API and the CLI


def split_names(value: str | Iterable[str]) -> list[str]:
    """'cpu,cuda' or ['cpu', 'cuda'] -> ['cpu', 'cuda'], first occurrence wins."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def choose(given: str | Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """Split "a,b" and check each name against the allowed ones (one error for both CLIs)."""
    names = split_names(given)
    for name in names:
        if name not in allowed:
            raise ArchvizError(f"unknown {what} {name!r}; choose from {', '.join(allowed)}")
    if not names:
        raise ArchvizError(f"no {what} given; choose from {', '.join(allowed)}")
    return names


def check_devices(devices: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """Each requested device with the reason it cannot run (None when it can)."""
    names = choose(devices, DEVICES, "device")
    targets = [(n, unavailable_reason(n)) for n in names]
    if all(reason is not None for _, reason in targets):
        device, reason = targets[0]
        raise ArchvizError(f"{device.upper()} was requested but is not available: {reason}")
    return targets


def unavailable_reason(device: str) -> str | None:
    """Why `device` cannot run here, or None when it can."""
    if device == "cpu" or (device == "cuda" and torch.cuda.is_available()):
        return None
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    try:
        torch.cuda.init()
    except Exception as exc:  # torch raises RuntimeError or AssertionError here
        return str(exc).split(". ")[0].strip() or type(exc).__name__
    return "no CUDA device found"


def dtype_note(device: str, dtype: str) -> str:
    """A caveat for dtypes this device runs without native support: measured anyway."""
    if device == "cpu" and dtype == "bfloat16" and not cpu_bf16_native():
        return "bfloat16 without native CPU support (no AVX512-BF16/AMX): emulated, slow"
    if device == "cpu" and dtype == "float16" and not _mkldnn_flag("_is_mkldnn_fp16_supported"):
        return "float16 without native CPU support: emulated, slow"
    if device == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        return "bfloat16 without native support on this GPU"
    return ""


def cpu_bf16_native() -> bool:
    return _mkldnn_flag("_is_mkldnn_bf16_supported")


def peak_memory(model: Callable[[torch.Tensor], object], x: torch.Tensor) -> int:
    """Bytes the forward needs above what is already held (weights, input)."""
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        model(x)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    process = psutil.Process()
    release_free_heap()
    peak_tracked = _reset_peak_rss()
    base = process.memory_info().rss
    model(x)
    peak = _peak_rss() if peak_tracked else process.memory_info().rss
    return max(0, peak - base)


def release_free_heap() -> bool:
    """Hand memory the allocator holds but does not use back to the OS (glibc malloc_trim).

    Without it a forward that reuses memory freed by earlier ones grows the resident set by
    nothing, and resnet50's peak read 0 MB instead of ~20 MB; True where it could be done.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def _reset_peak_rss() -> bool:
    """Linux lets a process reset its resident-set high-water mark (VmHWM); elsewhere
    we fall back to the RSS after the forward, which undercounts freed temporaries."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s*(\d+)\s*kB", status)
    return int(match.group(1)) * 1024 if match else psutil.Process().memory_info().rss


def machine_info() -> MachineInfo:
    """The CPU, GPU and software versions the figures came from."""
    cuda = torch.cuda.is_available()
    return MachineInfo(
        cpu_model=_cpu_model(),
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        torch_threads=torch.get_num_threads(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cpu_bf16_native=cpu_bf16_native(),
        gpu_name=torch.cuda.get_device_name() if cuda else None,
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda,
        python_version=platform.python_version(),
        platform=platform.platform(),
    )


def _mkldnn_flag(name: str) -> bool:
    """oneDNN's own answer to "does this CPU have fast bf16/fp16"; False if it cannot say."""
    try:
        return bool(getattr(torch.ops.mkldnn, name)())
    except (AttributeError, RuntimeError):
        return False


def _cpu_model() -> str:
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    except OSError:
        match = None
    return match.group(1).strip() if match else platform.processor() or platform.machine()
