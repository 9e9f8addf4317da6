"""Batch 1 (`single`) against ONNX Runtime, on an idle machine and with one core taken by a busy loop.

    python tools/busy_neighbour.py [--rounds 4] [--workload single] [--json out.json]
                                   [--tree NAME=SRC_DIR ...]

Each round and tree runs, in a fresh process each time, the side-by-side timing of
``python -m fastlstm bench`` (``fastlstm.bench.timing.run_side_by_side``: every output checked
against the float64 reference first, then 3 rotating rounds of 0.1 s samples, 0.3 s idle before
each contender) for fastlstm float32, fastlstm ``precision="bfloat16"`` and ONNX Runtime, on 2
threads: once as it is ("idle") and once beside a Python busy loop pinned to the last CPU
("busy"; ``taskset``). The idle/busy order alternates between rounds, the trees rotate.
Before each run it waits (up to 15 minutes) until other processes use under 8% of the CPUs.
A figure is the median over rounds of the per-run median call time; the slowdown is busy over
idle. ``--tree`` compares source trees (e.g. ``--tree main=/tmp/main/src --tree
this=src``; default: this checkout's ``src``), each put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = ("fastlstm", "fastlstm-bf16", "onnxruntime")

# The child: one side-by-side timing, printed as JSON {contender: median seconds per call}.
CHILD = """
import json, sys
from fastlstm.bench.cli import BlasLimit
from fastlstm.bench.contenders import FastLSTM, OnnxRuntime
from fastlstm.bench.problems import WORKLOADS, make_problem
from fastlstm.bench.timing import run_side_by_side


class FastLSTMBFloat16(FastLSTM):
    name = "fastlstm-bf16"
    precision = "bfloat16"
    call_options = {"precision": "bfloat16"}


BlasLimit().apply(2)
contenders = []
for kind in (FastLSTM, FastLSTMBFloat16, OnnxRuntime):
    contender = kind()
    contender.available()
    contender.set_threads(2)
    contenders.append(contender)
problem = make_problem(*WORKLOADS[sys.argv[1]], "full", name=sys.argv[1])
entries = run_side_by_side(problem, contenders, {"float32": 1e-4, "bfloat16": 2e-2}, 3, 0.1, 0.3, lambda *a: None)
print(json.dumps({e.contender: e.median_s for e in entries if e.status == "ok"}))
"""


def others_busy(seconds: float = 1.0) -> float:
    """Fraction of the CPUs' time spent outside the idle states over ``seconds`` (Linux)."""

    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]

    total0, idle0 = read()
    time.sleep(seconds)
    total1, idle1 = read()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_idle(limit: float = 0.08, timeout: float = 900.0) -> float:
    start = time.monotonic()
    while True:
        busy = others_busy()
        if busy <= limit or time.monotonic() - start > timeout:
            return busy
        time.sleep(5)


def run_once(src: str, workload: str, busy: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    hog = None
    if busy:
        last_cpu = str(max(os.sched_getaffinity(0)))
        hog = subprocess.Popen(["taskset", "-c", last_cpu, sys.executable, "-c", "while True: pass"])
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, workload], env=env, capture_output=True, text=True, check=False
        )
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--workload", default="single")
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=SRC_DIR")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(HERE.parent / "src")}
    names = list(trees)
    runs: dict[str, dict[str, list[dict]]] = {n: {"idle": [], "busy": []} for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for mode in ("idle", "busy") if r % 2 == 0 else ("busy", "idle"):
                others = wait_for_idle()
                load = os.getloadavg()[0]
                result = run_once(trees[name], args.workload, mode == "busy")
                result.update(others_before=others, load=load)
                runs[name][mode].append(result)
                times = "  ".join(f"{c} {result[c] * 1e3:7.2f} ms" for c in CONTENDERS)
                print(
                    f"round {r} {name:8s} {mode:4s} load {load:.2f} others {others:.0%}  {times}", flush=True
                )
    print("\nmedian ms per call, idle -> busy (slowdown):")
    summary = {}
    for name in names:
        medians = {
            mode: {c: statistics.median(run[c] for run in runs[name][mode]) for c in CONTENDERS}
            for mode in ("idle", "busy")
        }
        summary[name] = medians
        print(
            f"  {name:8s} "
            + "  ".join(
                f"{c}: {medians['idle'][c] * 1e3:.2f} -> {medians['busy'][c] * 1e3:.2f}"
                f" ({medians['busy'][c] / medians['idle'][c]:.1f}x)"
                for c in CONTENDERS
            )
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": summary}, f, indent=1)


if __name__ == "__main__":
    main()
