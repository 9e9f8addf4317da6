"""Measure the per-call overhead of a tiny ``dynamic_rnn`` call (median of many, after warm-up).

    python tools/call_overhead.py [--calls 20000]

``BasicLSTMCell(8)`` on a ``[2, 3, 4]`` float32 input: the work is a few
hundred multiply-adds, so the time is what the Python layers and the kernel
calls cost around it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastlstm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    calls = parser.parse_args().calls
    cell = fastlstm.BasicLSTMCell(8)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for _ in range(200):
        fastlstm.dynamic_rnn(cell, x, dtype=np.float32)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fastlstm.dynamic_rnn(cell, x, dtype=np.float32)
        times.append(time.perf_counter() - start)
    print(f"median {statistics.median(times) * 1e6:.1f} us per call over {calls} calls")


if __name__ == "__main__":
    main()
