"""Side-by-side comparison of fastlstm against PyTorch, ONNX Runtime, TF 1 and numpy.

Run as ``python -m fastlstm bench [options]`` or ``python benchmarks/compare.py
[options]``; ``--help`` lists the options.  Every contender gets identical float32
inputs, weights and sequence lengths; each one's padded outputs and final ``h``
are checked against a float64 numpy evaluation before it is timed, and one that
disagrees by more than ``--tol`` is reported as wrong and not ranked.  Timing is
done in interleaved rounds (each round runs every contender once, in rotating
order, after a short sleep so that other runtimes' spinning thread pools go
idle); the figure reported is the median over rounds.

The problem builders here (:func:`make_problem`, :func:`make_lengths`,
:func:`lstm_flops`) are also used by the asv suites in ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .reference import dynamic_rnn_reference

__all__ = [
    "WORKLOADS",
    "Problem",
    "lstm_flops",
    "main",
    "make_lengths",
    "make_problem",
    "reference_outputs",
]

# name -> (batch, max_time, input_size, num_units)
WORKLOADS: dict[str, tuple[int, int, int, int]] = {
    "small": (32, 50, 32, 64),
    "scoring": (256, 100, 64, 128),
    "large": (64, 100, 256, 512),
    "single": (1, 200, 64, 256),
    "longseq": (16, 1000, 40, 128),
    "wide_batch": (2048, 30, 16, 32),
}

LENGTH_MODES = ("uniform", "full", "skewed")
FORGET_BIAS = 1.0
DEFAULT_SEED = 1234
SGEMM_N = 2048


# --------------------------------------------------------------------------- problem


@dataclass
class Problem:
    """One workload's data, shared by every contender (float32, batch-major)."""

    name: str
    batch: int
    max_time: int
    input_size: int
    num_units: int
    lengths_mode: str
    inputs: np.ndarray  # [B, T, D] float32
    kernel: np.ndarray  # [D + H, 4H] float32, TF gate order (i, j, f, o)
    bias: np.ndarray  # [4H] float32
    lengths: np.ndarray  # [B] int32
    forget_bias: float = FORGET_BIAS

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.max_time, self.input_size, self.num_units)

    @property
    def sum_lengths(self) -> int:
        return int(self.lengths.sum())

    @property
    def flops(self) -> float:
        return lstm_flops(self.input_size, self.num_units, self.sum_lengths)


def lstm_flops(input_size: int, num_units: int, sum_lengths: int) -> float:
    """Matmul FLOPs of an LSTM over ``sum_lengths`` valid steps: 2*(D+H)*4H per step."""
    return 2.0 * (input_size + num_units) * 4 * num_units * float(sum_lengths)


def make_lengths(batch: int, max_time: int, mode: str = "uniform", seed: int = DEFAULT_SEED) -> np.ndarray:
    """Sequence lengths, int32 ``[batch]``; row 0 is always ``max_time``.

    ``uniform``: integers uniform in ``[max(1, max_time // 10), max_time]``.
    ``full``: every row ``max_time``.
    ``skewed``: mostly short rows (``lo + (T - lo) * u**3``) with row 0 full.
    """
    rng = np.random.default_rng(seed + 1)
    lo = max(1, max_time // 10)
    if mode == "full":
        lengths = np.full(batch, max_time, dtype=np.int64)
    elif mode == "uniform":
        lengths = rng.integers(lo, max_time + 1, size=batch)
    elif mode == "skewed":
        u = rng.random(batch)
        lengths = np.rint(lo + (max_time - lo) * u**3).astype(np.int64)
    else:
        raise ValueError(f"unknown lengths mode {mode!r}; use one of {LENGTH_MODES}")
    lengths = np.clip(lengths, 1, max_time)
    if batch:
        lengths[0] = max_time
    return lengths.astype(np.int32)


def make_problem(
    batch: int,
    max_time: int,
    input_size: int,
    num_units: int,
    lengths_mode: str = "uniform",
    seed: int = DEFAULT_SEED,
    name: str | None = None,
) -> Problem:
    """Deterministic float32 inputs, Glorot-uniform kernel (as TF), small bias."""
    rng = np.random.default_rng(seed)
    rows, cols = input_size + num_units, 4 * num_units
    limit = math.sqrt(6.0 / (rows + cols))
    kernel = rng.uniform(-limit, limit, size=(rows, cols)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, size=cols).astype(np.float32)
    inputs = rng.standard_normal((batch, max_time, input_size)).astype(np.float32)
    lengths = make_lengths(batch, max_time, lengths_mode, seed)
    return Problem(
        name=name or f"{batch},{max_time},{input_size},{num_units}",
        batch=batch,
        max_time=max_time,
        input_size=input_size,
        num_units=num_units,
        lengths_mode=lengths_mode,
        inputs=inputs,
        kernel=kernel,
        bias=bias,
        lengths=lengths,
    )


def reference_outputs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """float64 evaluation of the float32 problem: (padded outputs, final h)."""
    out, (_, h) = dynamic_rnn_reference(
        problem.kernel.astype(np.float64),
        problem.bias.astype(np.float64),
        problem.inputs.astype(np.float64),
        problem.lengths,
        forget_bias=problem.forget_bias,
    )
    return out, h


# --------------------------------------------------------------------------- contenders

RunFn = Callable[[], tuple[np.ndarray, np.ndarray]]


class Unavailable(Exception):
    """A contender cannot run here (not importable, or its setup failed)."""


class Contender:
    name = "?"
    is_peer = True  # counted for "fastest peer"

    def available(self) -> None:  # raise Unavailable
        pass

    def version(self) -> str | None:
        return None

    def set_threads(self, n: int) -> None:
        pass

    def prepare(self, p: Problem) -> RunFn:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FastLSTM(Contender):
    name = "fastlstm"
    is_peer = False

    def available(self) -> None:
        try:
            import fastlstm

            fastlstm.BasicLSTMCell, fastlstm.dynamic_rnn  # noqa: B018
        except Exception as e:  # pragma: no cover - depends on the build
            raise Unavailable(f"import fastlstm failed: {e!r}") from e

    def version(self) -> str | None:
        import fastlstm

        return getattr(fastlstm, "__version__", "?")

    def set_threads(self, n: int) -> None:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))

    def prepare(self, p: Problem) -> RunFn:
        import fastlstm

        cell = fastlstm.BasicLSTMCell(p.num_units, forget_bias=p.forget_bias)
        cell.build(p.input_size)
        cell.set_weights([p.kernel, p.bias])
        x, lengths = p.inputs, p.lengths

        def run():
            out, state = fastlstm.dynamic_rnn(cell, x, sequence_length=lengths, dtype=np.float32)
            return out, state[1]

        return run


class NumpyReference(Contender):
    name = "numpy-ref"
    is_peer = False

    def version(self) -> str | None:
        return np.__version__

    def prepare(self, p: Problem) -> RunFn:
        k, b, x, lengths = p.kernel, p.bias, p.inputs, p.lengths

        def run():
            out, (_, h) = dynamic_rnn_reference(k, b, x, lengths, forget_bias=p.forget_bias)
            return out, h

        return run


def _tf_to_order(kernel: np.ndarray, bias: np.ndarray, order: str, forget_bias: float):
    """Re-order TF (i, j, f, o) gate blocks to ``order`` (letters of i j f o).

    Returns (kernel [D+H, 4H] re-ordered, bias [4H] re-ordered with forget_bias
    folded into the f block).
    """
    h = bias.shape[0] // 4
    src = {"i": 0, "j": 1, "f": 2, "o": 3}
    idx = np.concatenate([np.arange(src[g] * h, (src[g] + 1) * h) for g in order])
    k = kernel[:, idx]
    b = bias[idx].astype(np.float32).copy()
    fpos = order.index("f")
    b[fpos * h : (fpos + 1) * h] += np.float32(forget_bias)
    return np.ascontiguousarray(k), b


class Torch(Contender):
    name = "torch"
    _interop_set = False

    def available(self) -> None:
        try:
            import torch  # noqa: F401
        except Exception as e:
            raise Unavailable(f"import torch failed: {e!r}") from e

    def version(self) -> str | None:
        import torch

        return torch.__version__

    def set_threads(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)
        if not Torch._interop_set:
            Torch._interop_set = True
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass

    def prepare(self, p: Problem) -> RunFn:
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        d = p.input_size
        k, b = _tf_to_order(p.kernel, p.bias, "ifjo", p.forget_bias)  # torch: i f g o
        lstm = torch.nn.LSTM(d, p.num_units, batch_first=True)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(k[:d].T)))
            lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(k[d:].T)))
            lstm.bias_ih_l0.copy_(torch.from_numpy(b))
            lstm.bias_hh_l0.zero_()
        lstm.eval()
        x_np, len_np, t_max = p.inputs, p.lengths.astype(np.int64), p.max_time

        def run():
            with torch.inference_mode():
                x = torch.from_numpy(x_np)
                packed = pack_padded_sequence(
                    x, torch.from_numpy(len_np), batch_first=True, enforce_sorted=False
                )
                y, (h_n, _) = lstm(packed)
                out, _ = pad_packed_sequence(y, batch_first=True, total_length=t_max)
                return out.numpy(), h_n[0].numpy()

        return run


class OnnxRuntime(Contender):
    name = "onnxruntime"

    def __init__(self) -> None:
        self.threads = 0

    def available(self) -> None:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except Exception as e:
            raise Unavailable(f"import onnxruntime/onnx failed: {e!r}") from e

    def version(self) -> str | None:
        import onnxruntime

        return onnxruntime.__version__

    def set_threads(self, n: int) -> None:
        self.threads = n

    def prepare(self, p: Problem) -> RunFn:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        d, hsz = p.input_size, p.num_units
        k, b = _tf_to_order(p.kernel, p.bias, "iofj", p.forget_bias)  # ORT: i o f c
        w = np.ascontiguousarray(k[:d].T)[None]  # [1, 4H, D]
        r = np.ascontiguousarray(k[d:].T)[None]  # [1, 4H, H]
        bb = np.concatenate([b, np.zeros_like(b)])[None]  # [1, 8H]
        node = helper.make_node(
            "LSTM",
            inputs=["X", "W", "R", "B", "sequence_lens"],
            outputs=["Y", "Y_h"],
            hidden_size=hsz,
            direction="forward",
        )
        graph = helper.make_graph(
            [node],
            "fastlstm_bench_lstm",
            inputs=[
                helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", d]),
                helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
            ],
            outputs=[
                helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", 1, "B", hsz]),
                helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, "B", hsz]),
            ],
            initializer=[
                numpy_helper.from_array(w.astype(np.float32), "W"),
                numpy_helper.from_array(r.astype(np.float32), "R"),
                numpy_helper.from_array(bb.astype(np.float32), "B"),
            ],
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="fastlstm-bench"
        )
        model.ir_version = 8
        onnx.checker.check_model(model)
        so = ort.SessionOptions()
        if self.threads:
            so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        x_np, lens = p.inputs, p.lengths.astype(np.int32)

        def run():
            xt = np.ascontiguousarray(x_np.transpose(1, 0, 2))  # [T, B, D]
            y, y_h = sess.run(["Y", "Y_h"], {"X": xt, "sequence_lens": lens})
            out = np.ascontiguousarray(y[:, 0].transpose(1, 0, 2))  # [B, T, H]
            return out, y_h[0]

        return run


class TensorFlow1(Contender):
    name = "tensorflow"

    def __init__(self) -> None:
        self.threads = 0
        self._sessions: list = []

    def available(self) -> None:
        import importlib.util

        if "tensorflow" not in sys.modules:
            # TF >= 2.16 ships Keras 3, which has no BasicLSTMCell; with tf_keras
            # (Keras 2) installed, this switch brings tf.compat.v1's cells back.
            if importlib.util.find_spec("tf_keras") is not None:
                os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            self._cell_class()
        except Exception as e:
            raise Unavailable(f"import tensorflow failed: {e!r}") from e

    @staticmethod
    def _cell_class():
        import tensorflow as tf

        try:
            return tf.compat.v1.nn.rnn_cell.BasicLSTMCell
        except AttributeError:
            # Keras 3 is active but tf_keras may still be importable directly
            from tf_keras.src.layers.rnn.legacy_cells import BasicLSTMCell

            return BasicLSTMCell

    def version(self) -> str | None:
        import tensorflow as tf

        return tf.__version__

    def set_threads(self, n: int) -> None:
        self.threads = n

    def prepare(self, p: Problem) -> RunFn:
        import warnings

        import tensorflow as tf

        v1 = tf.compat.v1
        tf.get_logger().setLevel("ERROR")
        graph = tf.Graph()
        with graph.as_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x_ph = v1.placeholder(tf.float32, [None, p.max_time, p.input_size], "x")
            len_ph = v1.placeholder(tf.int32, [None], "lengths")
            cell = self._cell_class()(p.num_units, forget_bias=p.forget_bias)
            outputs, state = v1.nn.dynamic_rnn(cell, x_ph, sequence_length=len_ph, dtype=tf.float32)
            variables = v1.trainable_variables()
            kernel_var = next(v for v in variables if "kernel" in v.name)
            bias_var = next(v for v in variables if "bias" in v.name)
            k_ph = v1.placeholder(tf.float32, p.kernel.shape)
            b_ph = v1.placeholder(tf.float32, p.bias.shape)
            assign = [v1.assign(kernel_var, k_ph), v1.assign(bias_var, b_ph)]
            init = v1.global_variables_initializer()
        config = v1.ConfigProto(
            intra_op_parallelism_threads=self.threads,
            inter_op_parallelism_threads=1 if self.threads else 0,
        )
        sess = v1.Session(graph=graph, config=config)
        self._sessions.append(sess)
        sess.run(init)
        sess.run(assign, {k_ph: p.kernel, b_ph: p.bias})
        fetch = [outputs, state.h]
        feed = {x_ph: p.inputs, len_ph: p.lengths.astype(np.int32)}

        def run():
            out, h = sess.run(fetch, feed)
            return out, h

        return run

    def close(self) -> None:
        for s in self._sessions:
            with contextlib.suppress(Exception):
                s.close()
        self._sessions.clear()


CONTENDERS: dict[str, type[Contender]] = {
    "fastlstm": FastLSTM,
    "torch": Torch,
    "onnxruntime": OnnxRuntime,
    "tensorflow": TensorFlow1,
    "numpy-ref": NumpyReference,
}


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class CpuMonitor:
    """CPU time used by *other* processes while we run (Linux /proc; else None).

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

    def restart(self) -> None:
        self._start = self._read()

    def foreign(self) -> dict | None:
        """{'cpu_s': other processes' CPU seconds, 'frac': share of all cores}."""
        end = self._read()
        if end is None or self._start is None:
            return None
        busy, own, wall = (e - s for e, s in zip(end, self._start))
        other = max(0.0, busy - own)
        return {"cpu_s": other, "frac": other / max(wall * usable_cores(), 1e-9)}


class _BlasLimit:
    """Caps numpy's BLAS threads via threadpoolctl, when installed."""

    def __init__(self) -> None:
        self._limiter = None
        self.note = "threadpoolctl not installed: numpy BLAS threads left as is"

    def apply(self, n: int) -> None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        self._limiter = threadpool_limits(limits=n, user_api="blas")
        self.note = f"numpy BLAS limited to {n} thread(s) via threadpoolctl"


def measure_sgemm(n: int = SGEMM_N, reps: int = 5) -> dict:
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


# --------------------------------------------------------------------------- timing


@dataclass
class Result:
    contender: str
    status: str = "ok"  # ok | wrong | error
    note: str = ""
    max_abs_err: float | None = None
    calls_per_sample: int = 0
    times_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        return float(np.median(self.times_s)) if self.times_s else None


def _max_err(got: RunFn, ref_out: np.ndarray, ref_h: np.ndarray, p: Problem) -> float:
    out, h = got()
    out = np.asarray(out)
    h = np.asarray(h)
    if out.shape != ref_out.shape:
        raise ValueError(f"outputs shape {out.shape} != {ref_out.shape}")
    if h.shape != ref_h.shape:
        raise ValueError(f"final h shape {h.shape} != {ref_h.shape}")
    e1 = float(np.max(np.abs(out.astype(np.float64) - ref_out))) if out.size else 0.0
    e2 = float(np.max(np.abs(h.astype(np.float64) - ref_h))) if h.size else 0.0
    if not (np.isfinite(e1) and np.isfinite(e2)):
        return float("inf")
    return max(e1, e2)


def _time_calls(fn: RunFn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def run_workload(
    p: Problem,
    contenders: list[Contender],
    rounds: int,
    min_time: float,
    sleep: float,
    tol: float,
    log=print,
) -> list[Result]:
    ref_out, ref_h = reference_outputs(p)
    results: dict[str, Result] = {}
    runners: dict[str, RunFn] = {}
    for c in contenders:
        res = Result(c.name)
        results[c.name] = res
        try:
            fn = c.prepare(p)
            err = _max_err(fn, ref_out, ref_h, p)  # also the warm-up / compile call
        except Exception as e:  # noqa: BLE001 - a failing contender is reported, not fatal
            res.status, res.note = "error", f"{type(e).__name__}: {e}"
            log(f"  {c.name}: setup/run failed: {res.note}")
            continue
        res.max_abs_err = err
        if not err <= tol:
            res.status = "wrong"
            res.note = f"max |err| {err:.3g} > tol {tol:g}"
            log(f"  {c.name}: WRONG ({res.note}); not timed")
            continue
        # warm up for ~min_time (at least 3 calls) and calibrate calls per sample
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < min_time:
            fn()
            n += 1
        per_call = (time.perf_counter() - t0) / n
        res.calls_per_sample = max(1, math.ceil(min_time / max(per_call, 1e-9)))
        runners[c.name] = fn
    names = list(runners)
    for r in range(rounds):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            if sleep > 0:
                time.sleep(sleep)
            results[name].times_s.append(_time_calls(runners[name], results[name].calls_per_sample))
    return [results[c.name] for c in contenders]


# --------------------------------------------------------------------------- report


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def summarize(p: Problem, results: list[Result]) -> dict:
    rows = []
    by = {}
    for res in results:
        med = res.median_s
        row = {
            "contender": res.contender,
            "status": res.status,
            "note": res.note,
            "max_abs_err": res.max_abs_err,
            "calls_per_sample": res.calls_per_sample,
            "times_s": res.times_s,
            "median_s": med,
            "min_s": min(res.times_s) if res.times_s else None,
            "spread": (float(np.subtract(*np.percentile(res.times_s, [75, 25])) / med) if med else None),
            "gflops": (p.flops / med / 1e9) if med else None,
            "seq_per_s": (p.batch / med) if med else None,
        }
        rows.append(row)
        by[res.contender] = row
    fast = by.get("fastlstm")
    ratios: dict[str, float | None] = {}
    fastest_peer = None
    if fast and fast["median_s"]:
        for row in rows:
            if row["contender"] == "fastlstm" or not row["median_s"]:
                continue
            ratios[row["contender"]] = row["median_s"] / fast["median_s"]
        peers = [r for r in rows if r["median_s"] and CONTENDERS[r["contender"]].is_peer]
        if peers:
            best = min(peers, key=lambda r: r["median_s"])
            fastest_peer = {
                "contender": best["contender"],
                "ratio": best["median_s"] / fast["median_s"],
            }
    return {
        "name": p.name,
        "batch": p.batch,
        "max_time": p.max_time,
        "input_size": p.input_size,
        "num_units": p.num_units,
        "lengths": p.lengths_mode,
        "sum_lengths": p.sum_lengths,
        "flops": p.flops,
        "results": rows,
        "fastlstm_speedup": ratios,  # peer median / fastlstm median (>1: fastlstm faster)
        "fastest_peer": fastest_peer,
    }


def format_table(summaries: list[dict], sgemm: dict | None) -> str:
    w = max(
        [22]
        + [
            len(f"{s['name']} ({s['batch']},{s['max_time']},{s['input_size']},{s['num_units']})")
            for s in summaries
        ]
    )
    head = f"{'workload':<{w}} {'contender':<12} {'median ms':>11} {'IQR':>5} {'GFLOP/s':>9} {'seq/s':>11} {'max|err|':>8}  note"
    lines = [head, "-" * len(head)]
    for s in summaries:
        label = f"{s['name']} ({s['batch']},{s['max_time']},{s['input_size']},{s['num_units']})"
        first = True
        for r in s["results"]:
            wl = label if first else ""
            first = False
            if r["median_s"]:
                ms = f"{r['median_s'] * 1e3:11.3f} {100 * r['spread']:4.0f}%"
                gf = f"{r['gflops']:9.2f}"
                sq = f"{r['seq_per_s']:11.0f}"
                note = ""
            else:
                ms, gf, sq = f"{'-':>11} {'':>5}", f"{'-':>9}", f"{'-':>11}"
                note = f"{r['status'].upper()}: {r['note']}"
            err = "-" if r["max_abs_err"] is None else f"{r['max_abs_err']:.0e}"
            lines.append(f"{wl:<{w}} {r['contender']:<12} {ms} {gf} {sq} {err:>8}  {note}".rstrip())
        sp = s["fastlstm_speedup"]
        if sp:
            parts = [f"vs {k} {_fmt_ratio(v)}" for k, v in sp.items()]
            fp = s["fastest_peer"]
            if fp:
                parts.append(f"vs fastest peer ({fp['contender']}) {_fmt_ratio(fp['ratio'])}")
            lines.append(f"{'':<{w}} fastlstm speedup: " + ", ".join(parts))
        busy = s.get("other_processes_cpu")
        if busy and busy["frac"] > 0.05 and busy["cpu_s"] > 0.5:
            lines.append(
                f"{'':<{w}} WARNING: other processes used {100 * busy['frac']:.0f}% of the cores "
                "during this workload"
            )
        fast = next((r for r in s["results"] if r["contender"] == "fastlstm"), None)
        if sgemm and fast and fast["gflops"]:
            lines.append(
                f"{'':<{w}} fastlstm at {100 * fast['gflops'] / sgemm['gflops']:.0f}% "
                f"of the sgemm ceiling ({sgemm['gflops']:.1f} GFLOP/s)"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- cli


def _parse_shape(text: str) -> tuple[int, int, int, int]:
    try:
        parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"--shape wants B,T,D,H positive ints, got {text!r}")
    return parts  # type: ignore[return-value]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Time fastlstm against PyTorch, ONNX Runtime, TensorFlow 1 and "
        "numpy on identical float32 LSTM problems (outputs checked first).",
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
    ap.add_argument("--lengths", choices=LENGTH_MODES, default="uniform")
    ap.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma list of contenders (default: all that import)",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="threads for every contender (default: usable cores)"
    )
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--min-time",
        type=float,
        default=0.1,
        help="seconds per timed sample (calls are repeated to reach it)",
    )
    ap.add_argument("--sleep", type=float, default=0.3, help="idle seconds before each timed sample")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs error vs float64 reference")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--no-sgemm", action="store_true", help="skip the 2048^3 sgemm ceiling")
    ap.add_argument("--json", metavar="PATH", help="write all figures as JSON ('-' for stdout)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    return ap


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    if prog is None and os.path.basename(sys.argv[0] if sys.argv else "") in ("__main__.py", "fastlstm"):
        prog = "fastlstm bench"
    args = build_parser(prog).parse_args(argv)
    to_stdout_json = args.json == "-"
    out = sys.stderr if to_stdout_json else sys.stdout

    def log(*a):
        print(*a, file=out, flush=True)

    if args.list:
        for k, v in WORKLOADS.items():
            log(f"{k:<12} B,T,D,H = {','.join(map(str, v))}")
        return 0

    problems_spec: list[tuple[str, tuple[int, int, int, int]]] = []
    if args.workloads is None:
        names = [] if args.shape else list(WORKLOADS)
    elif args.workloads.strip() == "all":
        names = list(WORKLOADS)
    else:
        names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for n in names:
        if n not in WORKLOADS:
            log(f"unknown workload {n!r}; known: {', '.join(WORKLOADS)}")
            return 2
        problems_spec.append((n, WORKLOADS[n]))
    for shp in args.shape:
        problems_spec.append(("custom_" + "x".join(map(str, shp)), shp))

    threads = args.threads or usable_cores()
    blas = _BlasLimit()
    blas.apply(threads)

    wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]
    contenders: list[Contender] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        if name not in CONTENDERS:
            log(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")
            return 2
        c = CONTENDERS[name]()
        try:
            c.available()
            c.set_threads(threads)
        except Unavailable as e:
            skipped[name] = str(e)
            log(f"note: skipping {name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - skip a contender whose setup breaks
            skipped[name] = f"{type(e).__name__}: {e}"
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
        if c.name == "numpy-ref":
            continue
        try:
            versions[c.name] = c.version()
        except Exception:  # noqa: BLE001
            versions[c.name] = "?"
    command = shlex.join(getattr(sys, "orig_argv", None) or sys.argv)
    if argv is not None:
        command += f"  [argv={shlex.join(argv)}]" if list(argv) != sys.argv[-len(argv) :] or not argv else ""
    machine = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    log(
        f"# machine: {machine['cpu']}, {machine['cores']} usable cores; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    log(f"# command: {command}")
    log(
        f"# threads={threads} rounds={args.rounds} min_time={args.min_time}s "
        f"sleep={args.sleep}s lengths={args.lengths} tol={args.tol:g}; {blas.note}"
    )

    sgemm = None
    if not args.no_sgemm:
        sgemm = measure_sgemm()
        log(f"# numpy sgemm {SGEMM_N}^3 float32: {sgemm['gflops']:.1f} GFLOP/s (ceiling)")

    summaries = []
    t_start = time.perf_counter()
    monitor = CpuMonitor()
    for name, (b, t, d, h) in problems_spec:
        label = name
        p = make_problem(b, t, d, h, args.lengths, args.seed, name=label)
        log(f"# {label} B,T,D,H={b},{t},{d},{h} sum(lengths)={p.sum_lengths} ...")
        wl_monitor = CpuMonitor()
        res = run_workload(p, contenders, args.rounds, args.min_time, args.sleep, args.tol, log)
        summaries.append(summarize(p, res))
        summaries[-1]["other_processes_cpu"] = wl_monitor.foreign()
    for c in contenders:
        c.close()

    with contextlib.suppress(Exception):
        versions["numba_threading_layer"] = numba.threading_layer()  # type: ignore[union-attr]

    foreign = monitor.foreign()
    log("")
    log(format_table(summaries, sgemm))
    if foreign is not None:
        warn = foreign["frac"] > 0.05 and foreign["cpu_s"] > 0.5
        log(
            f"# other processes used {foreign['cpu_s']:.1f} CPU-s during the run "
            f"({100 * foreign['frac']:.0f}% of the cores)"
            + ("; WARNING: the machine was not idle, figures are unreliable" if warn else "")
        )
    log(
        f"# wall {time.perf_counter() - t_start:.1f}s; speedup = peer median / fastlstm median (>1: fastlstm faster)"
    )

    if args.json:
        doc = {
            "machine": machine,
            "versions": versions,
            "command": command,
            "threads": threads,
            "rounds": args.rounds,
            "min_time_s": args.min_time,
            "sleep_s": args.sleep,
            "lengths": args.lengths,
            "tol": args.tol,
            "seed": args.seed,
            "skipped": skipped,
            "sgemm": sgemm,
            "other_processes_cpu": foreign,
            "workloads": summaries,
        }
        text = json.dumps(doc, indent=2)
        if to_stdout_json:
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
            log(f"# wrote {args.json}")

    bad = [
        r["contender"] + "@" + s["name"]
        for s in summaries
        for r in s["results"]
        if r["contender"] == "fastlstm" and r["status"] != "ok"
    ]
    if bad:
        log(f"# fastlstm failed on: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
