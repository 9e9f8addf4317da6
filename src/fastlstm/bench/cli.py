"""``fastlstm bench`` / ``benchmarks/compare.py``: the command line of the side-by-side comparison."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import sys
import time

import numpy as np

from .._threads import usable_cores
from .contenders import CONTENDERS, Contender, Unavailable
from .machine import BlasLimit, CpuMonitor, cpu_model, load_average, machine_was_busy, measure_sgemm
from .problems import DEFAULT_SEED, LENGTH_MODES, WORKLOADS, make_problem
from .report import PEAK_OVER_SGEMM, format_markdown, format_table, summarize
from .timing import cross_check, run_side_by_side, time_alone

__all__ = ["build_parser", "main"]

DEFAULT_TOLERANCES = {"float32": 1e-4, "bfloat16": 2e-2}


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"--shape wants B,T,D,H positive ints, got {text!r}")
    return parts  # type: ignore[return-value]


def _parse_lengths(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in LENGTH_MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError(
            f"--lengths wants a comma list of {', '.join(LENGTH_MODES)}, got {text!r}"
        )
    return modes


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the comparison."""
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Time fastlstm (float32 and bfloat16) against PyTorch (float32 and bfloat16), "
        "ONNX Runtime, TensorFlow 1 and numpy on identical float32 LSTM problems (every output checked "
        "first), then time each contender alone in a fresh process to cross-check the side-by-side figures.",
    )
    ap.add_argument(
        "--workloads",
        default=None,
        help=f"comma list of {','.join(WORKLOADS)} or 'all' (default: all, or none when --shape is given)",
    )
    ap.add_argument(
        "--shape",
        action="append",
        type=_parse_shape,
        default=[],
        metavar="B,T,D,H",
        help="custom workload (batch,max_time,input_size,num_units); repeatable",
    )
    ap.add_argument(
        "--lengths",
        type=_parse_lengths,
        default=["uniform", "full"],
        metavar="MODES",
        help=f"comma list of {','.join(LENGTH_MODES)} (default: uniform,full)",
    )
    ap.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma list of contenders (default: all that import)",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="threads for every contender (default: usable cores)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds side by side")
    ap.add_argument(
        "--min-time",
        type=float,
        default=0.1,
        help="seconds per timed sample (calls are repeated to reach it)",
    )
    ap.add_argument("--sleep", type=float, default=0.3, help="idle seconds before each contender's turn")
    ap.add_argument(
        "--tol", type=float, default=DEFAULT_TOLERANCES["float32"], help="max abs error of float32 contenders"
    )
    ap.add_argument(
        "--tol-bf16",
        type=float,
        default=DEFAULT_TOLERANCES["bfloat16"],
        help="max abs error of bfloat16 contenders",
    )
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--no-sgemm", action="store_true", help="skip the 2048^3 sgemm ceiling")
    ap.add_argument(
        "--no-cross-check", action="store_true", help="skip timing each contender alone in a fresh process"
    )
    ap.add_argument("--alone-rounds", type=int, default=3, help="rounds of the timing alone")
    ap.add_argument("--json", metavar="PATH", help="write all figures as JSON ('-' for stdout)")
    ap.add_argument("--markdown", metavar="PATH", help="write the README table ('-' for stdout)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    return ap


def _write(path: str, text: str, log) -> None:
    if path == "-":
        sys.stdout.write(text + "\n")
        return
    with open(path, "w") as f:
        f.write(text + "\n")
    log(f"# wrote {path}")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the comparison; returns the exit code (1 when fastlstm itself fails its check)."""
    if prog is None and os.path.basename(sys.argv[0] if sys.argv else "") in ("__main__.py", "fastlstm"):
        prog = "fastlstm bench"
    args = build_parser(prog).parse_args(argv)
    out = sys.stderr if "-" in (args.json, args.markdown) else sys.stdout

    def log(*a):
        print(*a, file=out, flush=True)

    if args.list:
        for k, v in WORKLOADS.items():
            log(f"{k:<12} B,T,D,H = {','.join(map(str, v))}")
        return 0

    if args.workloads is None:
        names = [] if args.shape else list(WORKLOADS)
    elif args.workloads.strip() == "all":
        names = list(WORKLOADS)
    else:
        names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        log(f"unknown workload {unknown[0]!r}; known: {', '.join(WORKLOADS)}")
        return 2
    specs = [(n, WORKLOADS[n]) for n in names]
    specs += [("custom_" + "x".join(map(str, shp)), shp) for shp in args.shape]
    problems = [make_problem(*shape, mode, args.seed, name=n) for n, shape in specs for mode in args.lengths]

    threads = args.threads or usable_cores()
    tolerances = {"float32": args.tol, "bfloat16": args.tol_bf16}
    blas = BlasLimit()
    blas.apply(threads)

    contenders: list[Contender] = []
    skipped: dict[str, str] = {}
    for name in [c.strip() for c in args.contenders.split(",") if c.strip()]:
        if name not in CONTENDERS:
            log(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
            return 2
        c = CONTENDERS[name]()
        try:
            c.available()
            c.set_threads(threads)
        except Exception as e:  # noqa: BLE001 - skip a contender that cannot run here
            skipped[name] = str(e) if isinstance(e, Unavailable) else f"{type(e).__name__}: {e}"
            log(f"note: skipping {name}: {skipped[name]}")
            continue
        contenders.append(c)

    try:
        import numba
    except ImportError:  # the comparison can still run the other contenders
        numba = None
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__ if numba else None,
    }
    for c in contenders:
        if c.library not in versions:
            with contextlib.suppress(Exception):
                versions[c.library] = c.version()
    command = shlex.join(getattr(sys, "orig_argv", None) or sys.argv)
    machine = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_before": load_average(),
    }
    log(
        f"# machine: {machine['cpu']}, {machine['cores']} usable cores; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    log(f"# command: {command}")
    log(f"# load average before: {machine['load_average_before']}")
    log(
        f"# threads={threads} rounds={args.rounds} min_time={args.min_time}s sleep={args.sleep}s "
        f"lengths={','.join(args.lengths)} tol={args.tol:g} tol_bf16={args.tol_bf16:g}; {blas.note}"
    )

    sgemm = None
    if not args.no_sgemm:
        sgemm = measure_sgemm()
        sgemm["peak_gflops"] = {prec: k * sgemm["gflops"] for prec, k in PEAK_OVER_SGEMM.items()}
        log(
            f"# numpy sgemm {sgemm['n']}^3 float32: {sgemm['gflops']:.1f} GFLOP/s (ceiling; "
            f"bfloat16 peak taken as {PEAK_OVER_SGEMM['bfloat16']:g}x: "
            f"{sgemm['peak_gflops']['bfloat16']:.1f} GFLOP/s)"
        )

    t_start = time.perf_counter()
    monitor = CpuMonitor()
    side: dict = {}
    results = []
    for p in problems:
        log(f"# {p.label} B,T,D,H={','.join(map(str, p.shape))} sum(lengths)={p.sum_lengths} ...")
        wl_monitor = CpuMonitor()
        entries = run_side_by_side(p, contenders, tolerances, args.rounds, args.min_time, args.sleep, log)
        results.append((p, entries, wl_monitor.foreign()))
        side.update({(p.label, e.contender, e.recipe): e.median_s for e in entries})
    for c in contenders:
        c.close()
    with contextlib.suppress(Exception):
        versions["numba_threading_layer"] = numba.threading_layer()  # type: ignore[union-attr]

    alone: dict = {}
    alone_failed: dict[str, str] = {}
    if not args.no_cross_check:
        for c in contenders:
            log(f"# timing {c.name} alone in a fresh process ...")
            try:
                alone.update(
                    time_alone(
                        c.name,
                        problems,
                        threads,
                        tolerances,
                        args.alone_rounds,
                        args.min_time,
                        args.seed,
                    )
                )
            except (RuntimeError, OSError, ValueError) as e:
                alone_failed[c.name] = str(e)
                log(f"  {e}")
    checks = cross_check(side, alone)
    kinds = {c.name: (c.precision, c.role) for c in contenders}
    gflops = sgemm["gflops"] if sgemm else None
    summaries = []
    for p, entries, busy in results:
        summaries.append(summarize(p, entries, kinds, gflops, checks))
        summaries[-1]["other_processes_cpu"] = busy
    foreign = monitor.foreign()
    machine["load_average_after"] = load_average()

    log("")
    log(format_table(summaries, sgemm))
    if foreign is not None:
        log(
            f"# other processes used {foreign['cpu_s']:.1f} CPU-s during the side-by-side run "
            f"({100 * foreign['frac']:.0f}% of the cores)"
            + (
                "; WARNING: the machine was not idle, figures are unreliable"
                if machine_was_busy(foreign)
                else ""
            )
        )
    log(f"# load average after: {machine['load_average_after']}")
    log(
        f"# wall {time.perf_counter() - t_start:.1f}s; speedup = peer median / fastlstm median "
        "(>1: fastlstm faster)"
    )
    if args.markdown:
        _write(args.markdown, format_markdown(summaries, sgemm), log)
    if args.json:
        doc = {
            "machine": machine,
            "versions": versions,
            "command": command,
            "threads": threads,
            "rounds": args.rounds,
            "alone_rounds": args.alone_rounds,
            "min_time_s": args.min_time,
            "sleep_s": args.sleep,
            "lengths": args.lengths,
            "tolerances": tolerances,
            "seed": args.seed,
            "skipped": skipped,
            "alone_failed": alone_failed,
            "sgemm": sgemm,
            "other_processes_cpu": foreign,
            "workloads": summaries,
        }
        _write(args.json, json.dumps(doc, indent=2), log)

    ours = {c.name for c in contenders if c.role == "ours"}
    bad = [
        f"{r['contender']}/{r['recipe']}@{s['label']}"
        for s in summaries
        for r in s["entries"]
        if r["contender"] in ours and r["status"] != "ok"
    ]
    if bad:
        log(f"# fastlstm failed on: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
