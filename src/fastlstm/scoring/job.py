"""The scoring job: a saved model over an input file, batch by batch, into an output file."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import LSTMModel, load
from .compute import BatchResult, Scorable, final_sizes, run_batch, using_numba_threads, with_dtype
from .errors import ScoreError
from .sinks import open_sink
from .sources import Source, open_source

if TYPE_CHECKING:
    import distributed

__all__ = ["ScoreSummary", "load_model", "score_file"]


@dataclass(frozen=True)
class ScoreSummary:
    """What a finished job did."""

    sequences: int
    steps: int
    seconds: float
    output: str

    @property
    def sequences_per_second(self) -> float:
        """Throughput over the whole job (reading, computing and writing)."""
        return self.sequences / self.seconds if self.seconds > 0 else float("inf")


def load_model(path: str | os.PathLike) -> Scorable:
    """A cell or model saved with :func:`fastlstm.save`; any problem as a :class:`ScoreError`."""
    name = os.fspath(path)
    try:
        return load(name)
    except OSError as exc:
        raise ScoreError(name, exc.strerror or str(exc)) from exc
    except ValueError as exc:
        message = str(exc)
        problem = message[len(name) :].lstrip(" :") if message.startswith(name) else message
        raise ScoreError(name, problem) from exc


def _local_results(
    model: Scorable, source: Source, batch_size: int, dtype: np.dtype, precision: str
) -> Iterator[tuple[np.ndarray, BatchResult]]:
    for inputs, lengths in source.batches(batch_size, dtype):
        yield lengths, run_batch(model, inputs, lengths, precision)


def score_file(
    model: Scorable | str | os.PathLike,
    input_path: str,
    output_path: str,
    *,
    lengths_path: str | None = None,
    column: str | None = None,
    batch_size: int = 1024,
    outputs: str = "sequences",
    dtype: Any = None,
    precision: str = "float32",
    numba_threads: int | None = None,
    client: distributed.Client | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score every sequence of ``input_path`` and write ``output_path`` (all or nothing).

    The input is read and the output written one batch at a time, so memory is
    bounded by ``batch_size`` (plus 8 bytes per sequence for the lengths),
    whatever the file sizes. See :mod:`fastlstm.scoring.sources` for the input
    formats and :mod:`fastlstm.scoring.sinks` for the output layouts.

    Parameters
    ----------
    model : cell, LSTMModel or path
        A built cell or model, or a file written by :func:`fastlstm.save`.
    input_path : str
        Padded ``.npy``, ragged ``.npz`` or Parquet: vectors, or token ids for a
        model that starts with an :class:`~fastlstm.Embedding`.
    output_path : str
        ``.npy`` or ``.npz`` as ``outputs`` requires.
    lengths_path : str, optional
        Lengths of a padded ``.npy`` input.
    column : str, optional
        Parquet column (default: the only list-of-lists column).
    batch_size : int, default 1024
        Sequences per batch (and per task on a cluster).
    outputs : {"sequences", "final", "both", "predictions"}
        ``"predictions"``: the model's outputs (its last layer's, e.g. a Dense
        head's): ``[N, output_size]`` for a model with
        ``return_sequences=False``, else per step like ``"sequences"``.
    dtype : float32 or float64, optional
        Computation and output dtype; the model's by default (float32 with
        ``precision="bfloat16"``).
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products (see :func:`fastlstm.dynamic_rnn`).
    numba_threads : int, optional
        numba threads: of this process (restored afterwards), or per task on
        a cluster (default there: :func:`fastlstm.dask.thread_layout`).
    client : distributed.Client, optional
        Run the batches on this cluster; the output is still written here, in order.
    progress : callable, optional
        ``progress(done, total)`` at the start and after each batch is written:
        sequences done so far and in all.

    Returns
    -------
    ScoreSummary

    Raises
    ------
    ScoreError
        Bad model, input, lengths or output: nothing is written (a previous
        output file is left as it was).
    """
    start = time.perf_counter()
    obj = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    if not obj.built:
        raise ValueError("the model has no weights; build it, set its weights or load a saved one")
    default_dtype = np.dtype(np.float32) if precision == "bfloat16" else obj.dtype
    run_dtype = default_dtype if dtype is None else np.dtype(dtype)
    if run_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype {run_dtype} is not supported; use float32 or float64")
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision {precision!r} is not supported; use 'float32' or 'bfloat16'")
    if precision == "bfloat16" and run_dtype != np.float32:
        raise ValueError(f"precision 'bfloat16' computes in float32, not {run_dtype}; leave dtype unset")
    obj = with_dtype(obj, run_dtype)
    inputs = (input_path, lengths_path, model if isinstance(model, (str, os.PathLike)) else None)
    if os.path.abspath(output_path) in {os.path.abspath(p) for p in inputs if p is not None}:
        raise ScoreError(output_path, "is also an input file; choose another OUTPUT")
    takes_ids = isinstance(obj, LSTMModel) and obj.embedding is not None
    final_only = isinstance(obj, LSTMModel) and not obj.return_sequences
    if final_only and outputs in ("sequences", "both"):
        raise ScoreError(
            output_path,
            f"--outputs {outputs}: the model gives only final outputs (return_sequences=False); "
            "use --outputs predictions or final",
        )
    with open_source(input_path, lengths_path, column) as source:
        if source.tokens != takes_ids:
            problem = (
                "holds token ids but the model has no Embedding (it takes vectors)"
                if source.tokens
                else "holds vectors but the model starts with an Embedding (it takes integer token ids)"
            )
            raise ScoreError(input_path, problem)
        if not source.tokens:
            if source.depth is None:
                source.depth = obj.input_size
            if source.depth != obj.input_size:
                raise ScoreError(
                    input_path, f"inputs have depth {source.depth} but the model takes depth {obj.input_size}"
                )
        with open_sink(
            output_path,
            outputs,
            source.lengths,
            source.max_time,
            obj.output_size,
            final_sizes(obj),
            run_dtype,
            final_outputs=final_only,
        ) as sink:
            if client is None:
                results = _local_results(obj, source, batch_size, run_dtype, precision)
                threads = (
                    contextlib.nullcontext() if numba_threads is None else using_numba_threads(numba_threads)
                )
            else:
                from ..dask import score_batches

                results = score_batches(
                    client, obj, source.batches(batch_size, run_dtype), numba_threads, precision=precision
                )
                threads = contextlib.nullcontext()
            done, total = 0, int(source.lengths.shape[0])
            if progress is not None:
                progress(done, total)
            with threads, contextlib.closing(results):
                while True:
                    try:
                        lengths, result = next(results)
                    except StopIteration:
                        break
                    except (ValueError, TypeError) as exc:  # the library's checks of the data
                        raise ScoreError(input_path, str(exc)) from exc
                    sink.write(result, lengths)
                    done += lengths.shape[0]
                    if progress is not None:
                        progress(done, total)
            sink.commit()
    return ScoreSummary(
        sequences=int(source.lengths.shape[0]),
        steps=int(source.lengths.sum()),
        seconds=time.perf_counter() - start,
        output=output_path,
    )
