"""Shared helpers for the benchmark scripts: machine description, GEMM peak, timing, output.

Every benchmark writes ``benchmarks/results/<name>.json`` through :func:`write_result`, with
the output of :func:`machine_info` attached, so that figures are never separated from the
machine that produced them.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = [
    "RESULTS_DIR",
    "code_version",
    "gemm_peak_gflops",
    "machine_info",
    "summarise_times",
    "time_once",
    "timeit",
    "write_result",
]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    """The SIMD flags that matter for GEMM throughput (AVX2/AVX-512/FMA/AMX)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    keep = ("avx", "fma", "amx")
                    return sorted(f for f in flags if f.startswith(keep))
    except OSError:
        pass
    return []


def _version(module: str) -> str | None:
    try:
        return getattr(importlib.import_module(module), "__version__", "unknown")
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None


def machine_info() -> dict[str, Any]:
    """Description of the machine and software stack the benchmark ran on."""
    info: dict[str, Any] = {
        "timestamp_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_simd_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env_threads": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
    }
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    info["mem_total_gib"] = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    info["versions"] = {
        m: _version(m) for m in ("numpy", "scipy", "torch", "himalaya", "sklearn")
    }
    try:
        import torch

        info["torch_num_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        info["torch_num_threads"] = None
        info["cuda_available"] = False
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {
                k: d.get(k)
                for k in ("user_api", "internal_api", "prefix", "version", "num_threads",
                          "threading_layer", "architecture")
            }
            for d in threadpool_info()
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def code_version(modules: list[str]) -> dict[str, Any]:
    """git HEAD, whether src/ has uncommitted changes, and a hash of each module's source
    as imported (the benchmarked code may differ from HEAD)."""
    import hashlib
    import subprocess

    out: dict[str, Any] = {}
    for name in modules:
        mod = importlib.import_module(name)
        digest = hashlib.sha256(Path(mod.__file__).read_bytes()).hexdigest()[:16]
        out[f"{name}_sha256"] = digest
    root = Path(__file__).resolve().parents[1]
    try:
        out["git_head"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        out["src_dirty"] = bool(status)
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def gemm_peak_gflops(n: int = 2048, dtype=np.float64, repeats: int = 5) -> dict[str, Any]:
    """Measured best-of-``repeats`` rate of a square numpy matmul (2 n^3 flops).

    This is the practical BLAS peak of this machine as the benchmarks see it (all threads
    BLAS uses by default), the yardstick against which achieved GFLOP/s are reported.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b  # warm-up (thread pool start, page faults)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n**3
    return {
        "n": n,
        "dtype": np.dtype(dtype).name,
        "repeats": repeats,
        "best_s": min(times),
        "gflops": flops / min(times) / 1e9,
        "median_gflops": flops / statistics.median(times) / 1e9,
    }


def time_once(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds over all threads, result) of one call of ``fn``."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def summarise_times(times: list[float], cpu_times: list[float] | None = None) -> dict[str, Any]:
    """{times_s, median_s, min_s[, cpu_times_s, median_cpu_s]} of repeated runs."""
    out: dict[str, Any] = {
        "times_s": list(times),
        "median_s": statistics.median(times),
        "min_s": min(times),
    }
    if cpu_times:
        out["cpu_times_s"] = list(cpu_times)
        out["median_cpu_s"] = statistics.median(cpu_times)
    return out


def timeit(fn: Callable[[], Any], repeats: int = 3) -> tuple[dict[str, Any], Any]:
    """Call ``fn()`` ``repeats`` times; return (:func:`summarise_times` dict, last result).

    No separate warm-up: the median over >= 3 runs absorbs a first-call cost, and every
    run is reported. CPU time (all threads) is recorded too: on a shared machine, wall
    time inflates with other load while CPU time mostly does not.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    times, cpu = [], []
    result = None
    for _ in range(repeats):
        result = None  # free the previous result before the next run
        wall, c, result = time_once(fn)
        times.append(wall)
        cpu.append(c)
    return summarise_times(times, cpu), result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else str(obj)
    return obj


def write_result(name: str, payload: dict[str, Any], directory: Path | None = None) -> Path:
    """Write ``payload`` (machine info added under "machine" if absent) as ``<name>.json``."""
    directory = RESULTS_DIR if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    payload.setdefault("machine", machine_info())
    path = directory / f"{name}.json"
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    return path
