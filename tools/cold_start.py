"""Measure fastlstm's cold-start figures: whole-process wall time, median of N runs.

    python tools/cold_start.py [--runs 5]

1. ``python -c "import fastlstm"``;
2. a fresh process that imports fastlstm and runs ``dynamic_rnn`` on a 64 x 20 x 8
   float32 batch, with a warm on-disk cache;
3. the same with an empty cache (a new, empty ``NUMBA_CACHE_DIR`` for every run).

Each run is a new interpreter started from this script; the times include
interpreter start-up. Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPORT = "import fastlstm"
FIRST_RUN = (
    "import numpy as np, fastlstm; "
    "x = np.random.default_rng(0).standard_normal((64, 20, 8), dtype=np.float32); "
    "fastlstm.dynamic_rnn(fastlstm.BasicLSTMCell(32), x, dtype=np.float32)"
)


def wall_time(code: str, cache_dir: str) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    results = {}
    with tempfile.TemporaryDirectory() as warm_cache:
        wall_time(FIRST_RUN, warm_cache)  # fills the warm cache
        results["import"] = [wall_time(IMPORT, warm_cache) for _ in range(runs)]
        results["first run, warm cache"] = [wall_time(FIRST_RUN, warm_cache) for _ in range(runs)]
    empty = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as empty_cache:
            empty.append(wall_time(FIRST_RUN, empty_cache))
    results["first run, empty cache"] = empty
    for name, times in results.items():
        spread = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name:24s} median {statistics.median(times):.2f} s   ({spread})")


if __name__ == "__main__":
    main()
