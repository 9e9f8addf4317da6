"""The machine under the comparison: CPU model, other processes' load, BLAS threads, the sgemm ceiling."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from .._threads import usable_cores

__all__ = [
    "SGEMM_N",
    "BlasLimit",
    "CpuMonitor",
    "cpu_model",
    "load_average",
    "machine_was_busy",
    "measure_sgemm",
]

SGEMM_N = 2048


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, where the platform has them."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


class CpuMonitor:
    """CPU time used by *other* processes while we run (Linux ``/proc``; else None).

    Benchmarks on a small machine are only meaningful when nothing else runs;
    this measures how much something else did, so the report can say so.
    """

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        busy = sum(vals[:3]) + sum(vals[5:8])  # user nice system irq softirq steal
        own = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        return busy / self._tick, own / self._tick, time.perf_counter()

    def foreign(self) -> dict | None:
        """``{'cpu_s': other processes' CPU seconds, 'frac': their share of all cores}``."""
        end = self._read()
        if end is None or self._start is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self._start))
        other = max(0.0, busy - own)
        return {"cpu_s": other, "frac": other / max(wall * usable_cores(), 1e-9)}


def machine_was_busy(foreign: dict | None) -> bool:
    """Whether other processes took more than 5% of the cores (and half a CPU-second)."""
    return bool(foreign) and foreign["frac"] > 0.05 and foreign["cpu_s"] > 0.5


class BlasLimit:
    """Caps numpy's BLAS threads via threadpoolctl, when installed."""

    def __init__(self) -> None:
        self._limiter = None
        self.note = "threadpoolctl not installed: numpy BLAS threads left as is"

    def apply(self, n: int) -> None:
        """Limit the BLAS pools to ``n`` threads for the rest of the process."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        self._limiter = threadpool_limits(limits=n, user_api="blas")
        self.note = f"numpy BLAS limited to {n} thread(s) via threadpoolctl"


def measure_sgemm(n: int = SGEMM_N, reps: int = 5) -> dict:
    """numpy float32 ``n x n`` matmul: ``{'n', 'median_s', 'gflops'}`` (median of ``reps``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    np.matmul(a, b, out=c)  # warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    return {"n": n, "median_s": med, "gflops": 2.0 * n**3 / med / 1e9}
