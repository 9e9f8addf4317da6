"""The ``fastlstm`` command: ``demo``, ``warmup``, ``bench`` and ``score``."""

from __future__ import annotations

import argparse
import sys

from .scoring.command import add_score_command


def _demo(args: argparse.Namespace) -> int:
    import numba

    from .demo import run_demo

    if args.threads:
        numba.set_num_threads(args.threads)
    result = run_demo(args.batch, args.max_time, args.input_size, args.num_units, args.repeats)
    return 0 if result["max_abs_error"] < 1e-5 else 1


def _warmup(args: argparse.Namespace) -> int:
    from .warmup import warmup

    precisions = args.precision or ["float32"]
    # bfloat16 alone runs in float32 only: the default dtypes follow
    dtypes = args.dtype or (["float32", "float64"] if "float32" in precisions else ["float32"])
    try:
        spent = warmup(dtypes, precisions)
    except ValueError as e:
        print(f"fastlstm warmup: error: {e}", file=sys.stderr)
        return 2
    for name, seconds in spent.items():
        print(f"{name}: kernels ready in {seconds:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlstm",
        description="TensorFlow 1 LSTMs on the CPU with numba.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="score a built-in synthetic batch; print sequences/s, GFLOP/s and the error vs numpy",
    )
    demo.add_argument("--batch", type=int, default=1024)
    demo.add_argument("--max-time", type=int, default=100)
    demo.add_argument("--input-size", type=int, default=64)
    demo.add_argument("--num-units", type=int, default=128)
    demo.add_argument("--repeats", type=int, default=5)
    demo.add_argument("--threads", type=int, default=0, help="numba threads (default: all cores)")
    demo.set_defaults(run=_demo)

    warm = commands.add_parser(
        "warmup",
        help="compile the kernels into numba's on-disk cache (e.g. while building a container image)",
    )
    warm.add_argument(
        "--dtype",
        action="append",
        choices=["float32", "float64"],
        help="dtype to prepare (repeatable; default: both, or float32 with only --precision bfloat16)",
    )
    warm.add_argument(
        "--precision",
        action="append",
        choices=["float32", "bfloat16"],
        help="precision of the matrix products to prepare, as in `fastlstm score --precision` "
        "(repeatable; default: float32; bfloat16 runs in float32 only)",
    )
    warm.set_defaults(run=_warmup)

    add_score_command(commands)

    commands.add_parser(
        "bench",
        help="side-by-side comparison with PyTorch, ONNX Runtime, TensorFlow and numpy "
        "(options: fastlstm bench --help)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastlstm`` console script and ``python -m fastlstm``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return bench_main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    return args.run(args)
