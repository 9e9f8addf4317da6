"""fastlstm on Dask: lazy ``dynamic_rnn`` over chunked arrays, and batch scoring on a cluster.

Needs ``dask`` and ``distributed`` (``pip install 'fastlstm[dask]'``); workers
need fastlstm installed too. Every row's result is bitwise what the in-memory
:func:`fastlstm.dynamic_rnn` gives, whatever the chunking, because fastlstm's
results do not depend on the rest of the batch.

How the weights travel
----------------------
* :func:`dynamic_rnn` and :func:`run_model` put the cell or model into the
  graph once, as a single key that every chunk's task depends on. The
  scheduler hands that key to a worker once and the worker keeps it while
  tasks need it, instead of shipping the weights inside every task; if the
  worker holding it dies, the key is recomputed from the graph.
* :func:`score_batches` (``fastlstm score --scheduler``) registers the model
  as a worker plugin: it is deserialised exactly once in each worker process,
  including workers that join or are restarted during the job, and removed
  from the workers at the end.

Threads
-------
A task runs the numba kernels on ``numba_threads`` threads. The default avoids
oversubscription: on a ``distributed`` cluster each host's usable cores are
divided by the Dask threads of all workers on that host (a host with 2 cores
and two single-threaded workers gives each task 1 numba thread; one worker with
one thread on 8 cores gives 8); with Dask's local threaded scheduler, the
cores divided by its pool size (so 1 by default). Pass ``numba_threads`` to
choose. The count is set inside each task (numba's setting is per thread) and
restored afterwards.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastlstm.dask needs dask and distributed: pip install 'fastlstm[dask]'") from exc

import numba
from distributed.comm import get_address_host

import fastlstm

from ._threads import usable_cores as _usable_cores
from .scoring.compute import BatchResult, run_batch, using_numba_threads

__all__ = ["ThreadLayout", "dynamic_rnn", "run_model", "score_batches", "thread_layout"]


# -- threads ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThreadLayout:
    """How many numba threads a task uses, decided where the task runs.

    Attributes
    ----------
    fixed : int or None
        The count everywhere, when the user chose one.
    per_host : dict
        Host → count, from a cluster's layout (cores over the Dask threads of the host's workers).
    local : int
        The count outside a ``distributed`` worker (Dask's threaded or synchronous scheduler).
    """

    fixed: int | None = None
    per_host: dict[str, int] = field(default_factory=dict)
    local: int = 1

    def here(self) -> int:
        """The count for the calling task, clamped to the threads numba was started with."""
        if self.fixed is not None:
            count = self.fixed
        else:
            try:
                worker = distributed.get_worker()
            except ValueError:
                count = self.local
            else:
                host = get_address_host(worker.address)
                count = self.per_host.get(host) or max(1, _usable_cores() // worker.state.nthreads)
        return max(1, min(count, numba.config.NUMBA_NUM_THREADS))


def thread_layout(client: distributed.Client | None = None, numba_threads: int | None = None) -> ThreadLayout:
    """The default thread layout for ``client``'s cluster (or the local scheduler), or ``numba_threads``.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster to lay out; the local scheduler's pool when None.
    numba_threads : int, optional
        A fixed count for every task, which overrides the default.

    Returns
    -------
    ThreadLayout
    """
    if numba_threads is not None:
        if isinstance(numba_threads, bool) or not isinstance(numba_threads, (int, np.integer)):
            raise TypeError(f"numba_threads must be a positive integer, got {numba_threads!r}")
        if numba_threads <= 0:
            raise ValueError(f"numba_threads must be a positive integer, got {numba_threads}")
        return ThreadLayout(fixed=int(numba_threads))
    if client is None:
        if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
            pool = 1
        else:
            pool = dask.config.get("num_workers", None) or _usable_cores()
        return ThreadLayout(local=max(1, _usable_cores() // pool))
    cores = client.run(_usable_cores)
    dask_threads: dict[str, int] = {}
    host_cores: dict[str, int] = {}
    for address, nthreads in client.nthreads().items():
        host = get_address_host(address)
        dask_threads[host] = dask_threads.get(host, 0) + nthreads
        host_cores[host] = cores.get(address, 1)
    return ThreadLayout(per_host={host: max(1, host_cores[host] // n) for host, n in dask_threads.items()})


# -- state structures -------------------------------------------------------------------------
def _flatten(tree: Any, leaves: list) -> Any:
    """``tree`` with each array replaced by its index in ``leaves`` (appended); None stays None."""
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        parts = [_flatten(part, leaves) for part in tree]
        return type(tree)(*parts) if hasattr(tree, "_fields") else type(tree)(parts)
    leaves.append(tree)
    return len(leaves) - 1


def _unflatten(skeleton: Any, leaves: list) -> Any:
    """Inverse of :func:`_flatten`."""
    if skeleton is None:
        return None
    if isinstance(skeleton, (tuple, list)):
        parts = [_unflatten(part, leaves) for part in skeleton]
        return type(skeleton)(*parts) if hasattr(skeleton, "_fields") else type(skeleton)(parts)
    return leaves[skeleton]


# -- lazy API -----------------------------------------------------------------------------------
def _run(obj: Any, inputs: Any, lengths: Any, initial_state: Any, dtype: Any, time_major: bool) -> tuple:
    if isinstance(obj, fastlstm.LSTMModel):
        return obj(inputs, lengths, initial_state, time_major)
    return fastlstm.dynamic_rnn(obj, inputs, lengths, initial_state, dtype, time_major)


def _run_block(
    obj: Any,
    inputs: np.ndarray,
    lengths: np.ndarray | None,
    *state_leaves: np.ndarray,
    skeleton: Any,
    run_dtype: Any,
    time_major: bool,
    layout: ThreadLayout,
) -> tuple:
    """One chunk: ``(outputs, *final state leaves)``."""
    initial_state = _unflatten(skeleton, list(state_leaves))
    with using_numba_threads(layout.here()):
        outputs, state = _run(obj, inputs, lengths, initial_state, run_dtype, time_major)
    leaves: list = []
    _flatten(state, leaves)
    return (outputs, *leaves)


def _part(block: tuple, index: int) -> np.ndarray:
    return block[index]


def _current_client() -> distributed.Client | None:
    try:
        return distributed.default_client()
    except ValueError:
        return None


def _lazy_run(
    obj: Any,
    inputs: Any,
    sequence_length: Any,
    initial_state: Any,
    dtype: Any,
    time_major: bool,
    numba_threads: int | None,
) -> tuple[da.Array, Any]:
    x = da.asarray(inputs)
    takes_ids = isinstance(obj, fastlstm.LSTMModel) and obj.embedding is not None
    rank = 2 if takes_ids else 3
    if x.ndim != rank:
        layout = "[max_time, batch, depth]" if time_major else "[batch, max_time, depth]"
        if takes_ids:
            layout = "[max_time, batch] token ids" if time_major else "[batch, max_time] token ids"
        raise ValueError(f"inputs must be {rank}-D {layout}, got shape {x.shape}")
    batch_axis = 1 if time_major else 0
    x = x.rechunk({axis: -1 for axis in range(rank) if axis != batch_axis})
    batch, chunks = x.shape[batch_axis], x.chunks[batch_axis]
    lengths = None
    if sequence_length is not None:
        lengths = da.asarray(sequence_length)
        if lengths.shape != (batch,):
            raise ValueError(f"sequence_length must have shape ({batch},), got {lengths.shape}")
        lengths = lengths.rechunk((chunks,))
    leaves: list = []
    skeleton = _flatten(initial_state, leaves)
    state_leaves = []
    for k, leaf in enumerate(leaves):
        leaf = da.asarray(leaf)
        if leaf.ndim != 2 or leaf.shape[0] != batch:
            raise ValueError(
                f"initial state part {k} must be [{batch}, depth] (one row per sequence), "
                f"got shape {leaf.shape}"
            )
        state_leaves.append(leaf.rechunk((chunks, -1)))

    # A run on zero rows does every check the library does (cell, dtypes, depth,
    # state structure), builds an unbuilt cell once, here, and gives the dtype
    # and shapes of the results; no kernel runs.
    meta_x = np.empty((x.shape[0], 0, *x.shape[2:]) if time_major else (0, *x.shape[1:]), x.dtype)
    meta_lengths = None if lengths is None else np.empty(0, lengths.dtype)
    meta_initial = _unflatten(skeleton, [np.empty((0, leaf.shape[1]), leaf.dtype) for leaf in state_leaves])
    meta_outputs, meta_state = _run(obj, meta_x, meta_lengths, meta_initial, dtype, time_major)
    meta_leaves: list = []
    state_skeleton = _flatten(meta_state, meta_leaves)

    shared = dask.delayed(obj, pure=True, traverse=False)  # the one key holding the weights
    index = (("t", "b", "d") if time_major else ("b", "t", "d"))[:rank]
    args: list = [shared, None, x, index, lengths, None if lengths is None else ("b",)]
    for k, leaf in enumerate(state_leaves):
        args += [leaf, ("b", f"s{k}")]
    blocks = da.blockwise(
        _run_block,
        ("b",),
        *args,
        skeleton=skeleton,
        run_dtype=dtype,
        time_major=time_major,
        layout=thread_layout(_current_client(), numba_threads),
        concatenate=True,
        meta=np.empty((0,), object),
    )
    depth = meta_outputs.shape[-1]
    if meta_outputs.ndim == 2:  # a model's final outputs (return_sequences=False): [batch, depth]
        outputs = blocks.map_blocks(
            _part, 0, new_axis=[1], chunks=(chunks, (depth,)), meta=np.empty((0, 0), meta_outputs.dtype)
        )
    else:
        outputs = blocks.map_blocks(
            _part,
            0,
            new_axis=[0, 2] if time_major else [1, 2],
            chunks=((x.shape[0],), chunks, (depth,)) if time_major else (chunks, (x.shape[1],), (depth,)),
            meta=np.empty((0, 0, 0), meta_outputs.dtype),
        )
    state_parts = [
        blocks.map_blocks(
            _part, 1 + k, new_axis=[1], chunks=(chunks, (leaf.shape[1],)), meta=np.empty((0, 0), leaf.dtype)
        )
        for k, leaf in enumerate(meta_leaves)
    ]
    return outputs, _unflatten(state_skeleton, state_parts)


def dynamic_rnn(
    cell: Any,
    inputs: Any,
    sequence_length: Any = None,
    initial_state: Any = None,
    dtype: Any = None,
    time_major: bool = False,
    numba_threads: int | None = None,
) -> tuple[da.Array, Any]:
    """:func:`fastlstm.dynamic_rnn` over a dask array chunked along the batch axis.

    Each batch chunk is one task running :func:`fastlstm.dynamic_rnn`; the
    result equals the in-memory call bitwise.

    Parameters
    ----------
    cell : BasicLSTMCell, LSTMCell or MultiRNNCell
        Built here (once, before any task) if it has no weights yet.
    inputs : dask array or array_like, shape ``[batch, max_time, depth]``
        ``[max_time, batch, depth]`` when ``time_major``. Chunked along the
        batch axis; the other axes are rechunked to one chunk.
    sequence_length : dask array or array_like of int, shape ``[batch]``, optional
        Rechunked to the batch chunks. Its values are checked by each task (an
        error names the position within the chunk).
    initial_state : state, optional
        As ``cell.zero_state`` returns, with dask or numpy arrays ``[batch, ...]``.
    dtype : float32 or float64, optional
        As for :func:`fastlstm.dynamic_rnn`.
    time_major : bool, default False
        Layout of ``inputs`` and ``outputs``.
    numba_threads : int, optional
        numba threads per task; see the module notes for the default.

    Returns
    -------
    outputs : dask array
        ``[batch, max_time, output_size]`` (time-major if ``time_major``), with
        the batch chunks of ``inputs``.
    state : LSTMStateTuple, dask array or tuple
        The final state in the cell's structure, each part a dask array.

    Raises
    ------
    ValueError, TypeError
        What :func:`fastlstm.dynamic_rnn` raises for bad arguments, before any task runs.

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np, fastlstm, fastlstm.dask
    >>> cell = fastlstm.BasicLSTMCell(4)
    >>> x = np.random.default_rng(0).random((6, 5, 3), dtype=np.float32)
    >>> outputs, state = fastlstm.dask.dynamic_rnn(cell, da.from_array(x, chunks=(2, 5, 3)))
    >>> outputs.chunks[0], state.h.shape
    ((2, 2, 2), (6, 4))
    >>> bool((outputs.compute(scheduler="sync") == fastlstm.dynamic_rnn(cell, x)[0]).all())
    True
    """
    if isinstance(cell, fastlstm.LSTMModel):
        raise TypeError("dynamic_rnn takes a cell; run an LSTMModel with fastlstm.dask.run_model")
    return _lazy_run(cell, inputs, sequence_length, initial_state, dtype, time_major, numba_threads)


def run_model(
    model: fastlstm.LSTMModel,
    inputs: Any,
    sequence_length: Any = None,
    initial_state: Any = None,
    time_major: bool = False,
    numba_threads: int | None = None,
) -> tuple[da.Array, tuple]:
    """``model(inputs, ...)`` for an :class:`~fastlstm.LSTMModel`, over a dask array chunked by batch.

    Parameters are as for :func:`dynamic_rnn` (the model computes in
    ``model.dtype``; ``initial_state`` has one entry per recurrent layer, as for
    the model); a model that starts with an :class:`~fastlstm.Embedding` takes
    integer token ids ``[batch, max_time]``.

    Returns
    -------
    outputs : dask array
        The model's outputs (``[batch, output_size]`` for ``return_sequences=False``).
    states : tuple
        Each layer's final state, with dask arrays (pairs for bidirectional layers).
    """
    if not isinstance(model, fastlstm.LSTMModel):
        raise TypeError(
            f"run_model takes an LSTMModel, got {type(model).__name__}; use dynamic_rnn for a cell"
        )
    return _lazy_run(model, inputs, sequence_length, initial_state, None, time_major, numba_threads)


# -- batch scoring on a cluster -------------------------------------------------------------------
class _ModelPlugin(distributed.WorkerPlugin):
    """Carries a model to every worker; each worker process deserialises it once."""

    def __init__(self, model: Any) -> None:
        self.model = model


def _score_on_worker(
    name: str, inputs: np.ndarray, lengths: np.ndarray, layout: ThreadLayout, precision: str
) -> BatchResult:
    model = distributed.get_worker().plugins[name].model
    with using_numba_threads(layout.here()):
        return run_batch(model, inputs, lengths, precision)


def score_batches(
    client: distributed.Client,
    model: Any,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    numba_threads: int | None = None,
    max_in_flight: int | None = None,
    precision: str = "float32",
) -> Iterator[tuple[np.ndarray, BatchResult]]:
    """Score ``(inputs, lengths)`` batches on a cluster; yield ``(lengths, result)`` in input order.

    The model goes to the workers once, as a worker plugin (also to workers
    that join or restart during the job), and is removed at the end. At most
    ``max_in_flight`` batches are submitted and not yet collected, so the
    client's memory stays bounded while the results come back in order. A
    worker that dies loses nothing: the scheduler runs its tasks again elsewhere.

    Parameters
    ----------
    client : distributed.Client
    model : cell or LSTMModel
        Built; runs as ``fastlstm.scoring.compute.run_batch`` runs it.
    batches : iterable of (ndarray, ndarray)
        Padded inputs ``[b, t, depth]`` and their lengths ``[b]``.
    numba_threads : int, optional
        numba threads per task; by default :func:`thread_layout` of the cluster.
    max_in_flight : int, optional
        Default: twice the cluster's Dask threads.
    precision : {"float32", "bfloat16"}, default "float32"
        Precision of the matrix products (``"bfloat16"``: a float32 model).

    Yields
    ------
    lengths : ndarray
    result : BatchResult
    """
    name = f"fastlstm-model-{uuid.uuid4().hex}"
    layout = thread_layout(client, numba_threads)
    if max_in_flight is None:
        max_in_flight = 2 * max(1, sum(client.nthreads().values()))
    client.register_plugin(_ModelPlugin(model), name=name)
    pending: deque = deque()
    try:
        for inputs, lengths in batches:
            # The batch travels inside its task, so that a task lost with its worker
            # can run again elsewhere; the warning about large graphs does not apply.
            threshold = max(10 * 2**20, 4 * (inputs.nbytes + lengths.nbytes))
            with dask.config.set({"distributed.admin.large-graph-warning-threshold": threshold}):
                future = client.submit(_score_on_worker, name, inputs, lengths, layout, precision, pure=False)
            pending.append((lengths, future))
            while len(pending) >= max_in_flight:
                done_lengths, done = pending.popleft()
                yield done_lengths, done.result()
        while pending:
            done_lengths, done = pending.popleft()
            yield done_lengths, done.result()
    finally:
        for _, future in pending:
            future.cancel()
        client.unregister_worker_plugin(name)
