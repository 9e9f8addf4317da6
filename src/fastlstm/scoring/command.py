"""``fastlstm score``: the command-line face of :func:`fastlstm.scoring.score_file`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numba

from .errors import ScoreError
from .job import ScoreSummary, score_file

__all__ = ["add_score_command", "run_score"]

DESCRIPTION = """\
Score every sequence of INPUT with the model in MODEL (a cell or LSTMModel
saved with fastlstm.save) and write OUTPUT. Input and output are streamed in
batches: memory stays bounded by --batch-size whatever the file sizes. OUTPUT
appears only when complete (it is written to a hidden temporary file beside it
and renamed); after an error, Ctrl-C or a kill, any previous OUTPUT is intact.
"""

EPILOG = """\
inputs (told apart by content, not by name):
  .npy      [N, max_time, depth] padded, any real dtype; lengths from
            --lengths (1-D integer .npy) or all max_time
  .npz      ragged: 'values' [total_steps, depth] (each sequence's steps one
            after the other, no padding) and 'lengths' [N]
  Parquet   one row per sequence in a list<list<number>> column (time, then
            depth); needs pyarrow (pip install 'fastlstm[parquet]')
  token ids, for a model that starts with an Embedding: a 2-D integer .npy
            [N, max_time] (with --lengths), a ragged .npz with 1-D integer
            'values' [total_steps] and 'lengths', or a Parquet list<integer>
            column; every id is checked against the vocabulary (exit 2)

outputs (dtype: --dtype, by default the model's; T: the input's max_time for
a padded .npy, else its longest sequence):
  sequences   OUTPUT.npy: [N, T, output_size], zero past each length;
              OUTPUT.npz: ragged 'values' [sum(lengths), output_size] and
              'lengths' [N]
  final       OUTPUT.npy: [N, output_size], the top layer's final h
              (forward and backward concatenated for a bidirectional layer)
  both        OUTPUT.npz: 'values' and 'lengths' as above, 'final_h'
              [N, output_size] and 'final_c' [N, c_size]
  predictions the model's outputs (a Dense head's): OUTPUT.npy [N, units]
              for a model with return_sequences=False, else per step as
              'sequences' (zero past each length)
  (for a model with a head, 'sequences' are its per-step outputs and 'final'
  the top recurrent layer's final h)
  An .npz output is itself a valid ragged input.

exit status: 0 done; 2 bad input or arguments (one line on stderr naming the
file); 1 output could not be written; 130 Ctrl-C; 143 SIGTERM.

threads: --threads sets numba's threads (default: all cores). With --scheduler
it is the numba threads of each task on the workers; the default there divides
each host's cores by the Dask threads of its workers, so nothing is
oversubscribed.
"""


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the temporary files are removed."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_score_command(commands: Any) -> None:
    """Add ``score`` to the ``fastlstm`` subcommands (``commands`` from ``add_subparsers``)."""
    score = commands.add_parser(
        "score",
        help="score a file of sequences with a saved model, streaming, into an output file",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("model", metavar="MODEL", help="a model file written by fastlstm.save")
    score.add_argument("input", metavar="INPUT", help="a padded .npy, a ragged .npz or a Parquet file")
    score.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="file to write (.npy or .npz)")
    score.add_argument(
        "--lengths", metavar="FILE", help="1-D integer .npy of lengths for a padded .npy INPUT"
    )
    score.add_argument(
        "--column", metavar="NAME", help="Parquet column (default: the only list-of-lists one)"
    )
    score.add_argument(
        "--batch-size", type=_positive, default=1024, metavar="N", help="sequences per batch (default: 1024)"
    )
    score.add_argument("--threads", type=_positive, metavar="N", help="numba threads (see below)")
    score.add_argument(
        "--outputs",
        choices=["sequences", "final", "both", "predictions"],
        default="sequences",
        help="what to write (default: sequences; layouts below)",
    )
    score.add_argument(
        "--dtype", choices=["float32", "float64"], help="computation and output dtype (default: the model's)"
    )
    score.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="precision of the matrix products (default: float32; bfloat16 computes in float32)",
    )
    score.add_argument("--quiet", action="store_true", help="print nothing but errors")
    score.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batches on this Dask scheduler (e.g. tcp://host:8786); needs fastlstm[dask]",
    )
    score.set_defaults(run=run_score)


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar (sequences, sequences/s) if ``enabled`` and tqdm is installed, else None."""
    if not enabled:
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield None
        return
    with tqdm(unit="seq", unit_scale=True, dynamic_ncols=True, leave=False) as bar:

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield update


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _connect(address: str) -> Any:
    try:
        import distributed
    except ImportError:
        raise ScoreError("--scheduler", "needs dask.distributed: pip install 'fastlstm[dask]'") from None
    try:
        return distributed.Client(address, set_as_default=False)  # timeout: distributed.comm.timeouts.connect
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ScoreError(address, f"cannot connect to the Dask scheduler: {exc}") from exc


def run_score(args: argparse.Namespace) -> int:
    """Run ``fastlstm score`` with parsed arguments; the exit status."""
    if args.threads and args.scheduler is None and args.threads > numba.config.NUMBA_NUM_THREADS:
        print(
            f"fastlstm score: error: --threads {args.threads}: numba was started with "
            f"{numba.config.NUMBA_NUM_THREADS} threads (set NUMBA_NUM_THREADS to allow more)",
            file=sys.stderr,
        )
        return 2
    if args.precision == "bfloat16" and args.dtype == "float64":
        print(
            "fastlstm score: error: --precision bfloat16 computes in float32; drop --dtype float64",
            file=sys.stderr,
        )
        return 2
    show_bar = not args.quiet and sys.stderr.isatty()
    client = None
    try:
        with _sigterm_raises():
            if args.scheduler is not None:
                client = _connect(args.scheduler)
            with _progress_bar(show_bar) as progress:
                summary = score_file(
                    args.model,
                    args.input,
                    args.output,
                    lengths_path=args.lengths,
                    column=args.column,
                    batch_size=args.batch_size,
                    outputs=args.outputs,
                    dtype=args.dtype,
                    precision=args.precision,
                    numba_threads=args.threads,
                    client=client,
                    progress=progress,
                )
    except ScoreError as exc:
        print(f"fastlstm score: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"fastlstm score: interrupted; {args.output} was not written", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"fastlstm score: terminated; {args.output} was not written", file=sys.stderr)
        return 143
    finally:
        if client is not None:
            client.close()
    if not args.quiet:
        print(_summary_line(summary), file=sys.stderr)
    return 0


def _summary_line(summary: ScoreSummary) -> str:
    return (
        f"fastlstm score: {summary.sequences} sequences ({summary.steps} steps) in "
        f"{summary.seconds:.2f} s, {summary.sequences_per_second:,.0f} sequences/s -> {summary.output}"
    )
