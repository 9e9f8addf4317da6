"""The contenders: one class per library and precision, each with every correct recipe it has.

A contender turns a :class:`~fastlstm.bench.problems.Problem` into one or more
*recipes*: named zero-argument calls that return ``(padded outputs, final h)``
as float32 numpy arrays, ``[batch, max_time, units]`` (zeros past each row's
length) and ``[batch, units]``.  Every recipe is checked against a float64
reference and timed; the fastest correct one is the contender's figure.
Libraries are imported only inside the methods, so this module imports
without any of them.

A precision of an existing library is a subclass that sets ``name`` and
``precision`` (and, for fastlstm, the keyword arguments of its call), as
:class:`FastLSTMBFloat16` and :class:`TorchBFloat16` do:

>>> FastLSTMBFloat16.precision, FastLSTMBFloat16.call_options
('bfloat16', {'precision': 'bfloat16'})
>>> list(CONTENDERS)
['fastlstm', 'fastlstm-bf16', 'torch', 'torch-bf16', 'onnxruntime', 'tensorflow', 'numpy-ref']
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from .problems import Problem

__all__ = [
    "CONTENDERS",
    "Contender",
    "FastLSTM",
    "FastLSTMBFloat16",
    "NumpyReference",
    "OnnxRuntime",
    "RunFn",
    "TensorFlow1",
    "Torch",
    "TorchBFloat16",
    "Unavailable",
    "tf_to_gate_order",
]

RunFn = Callable[[], tuple[np.ndarray, np.ndarray]]


class Unavailable(Exception):
    """A contender cannot run here (not importable, or its setup failed)."""


class Contender:
    """One library at one precision.  Subclasses implement :meth:`recipes`."""

    name: ClassVar[str] = "?"
    library: ClassVar[str] = "?"
    precision: ClassVar[str] = "float32"
    role: ClassVar[str] = "peer"  # "ours" (fastlstm), "peer" (ranked against ours) or "baseline"

    def available(self) -> None:
        """Raise :class:`Unavailable` when the library cannot run here."""

    def version(self) -> str | None:
        """The library's version string."""
        return None

    def set_threads(self, n: int) -> None:
        """Use ``n`` threads from now on."""

    def recipes(self, p: Problem) -> dict[str, RunFn]:
        """Every correct way this library has to compute ``p``, by name."""
        raise NotImplementedError

    def close(self) -> None:
        """Release sessions and the like."""


def tf_to_gate_order(
    kernel: np.ndarray, bias: np.ndarray, order: str, forget_bias: float
) -> tuple[np.ndarray, np.ndarray]:
    """Re-order TF's ``(i, j, f, o)`` gate blocks to ``order`` (a word of the letters i j f o).

    Returns the kernel ``[D + H, 4H]`` and the bias ``[4H]`` re-ordered, with
    ``forget_bias`` folded into the f block of the bias.
    """
    h = bias.shape[0] // 4
    src = {"i": 0, "j": 1, "f": 2, "o": 3}
    idx = np.concatenate([np.arange(src[g] * h, (src[g] + 1) * h) for g in order])
    k = kernel[:, idx]
    b = bias[idx].astype(np.float32).copy()
    fpos = order.index("f")
    b[fpos * h : (fpos + 1) * h] += np.float32(forget_bias)
    return np.ascontiguousarray(k), b


class FastLSTM(Contender):
    """``fastlstm.dynamic_rnn`` on a ``BasicLSTMCell``; ``call_options`` go to the call."""

    name = "fastlstm"
    library = "fastlstm"
    role = "ours"
    call_options: ClassVar[dict] = {}

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

    def recipes(self, p: Problem) -> dict[str, RunFn]:
        import fastlstm

        cell = fastlstm.BasicLSTMCell(p.num_units, forget_bias=p.forget_bias)
        cell.build(p.input_size)
        cell.set_weights([p.kernel, p.bias])
        x, lengths, options = p.inputs, p.lengths, dict(self.call_options)

        def run():
            out, state = fastlstm.dynamic_rnn(cell, x, sequence_length=lengths, dtype=np.float32, **options)
            return out, state[1]

        return {"dynamic_rnn": run}


class FastLSTMBFloat16(FastLSTM):
    """The same call with ``precision="bfloat16"``: bfloat16 matrix products, float32 everything else."""

    name = "fastlstm-bf16"
    precision = "bfloat16"
    call_options: ClassVar[dict] = {"precision": "bfloat16"}


class NumpyReference(Contender):
    """``fastlstm.reference``: one BLAS matrix product per step, in numpy."""

    name = "numpy-ref"
    library = "numpy"
    role = "baseline"

    def version(self) -> str | None:
        return np.__version__

    def recipes(self, p: Problem) -> dict[str, RunFn]:
        from ..reference import dynamic_rnn_reference

        k, b, x, lengths = p.kernel, p.bias, p.inputs, p.lengths

        def run():
            out, (_, h) = dynamic_rnn_reference(k, b, x, lengths, forget_bias=p.forget_bias)
            return out, h

        return {"reference": run}


class Torch(Contender):
    """``torch.nn.LSTM``: packed; padded with the outputs masked; the plain call at full length."""

    name = "torch"
    library = "torch"
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
            with contextlib.suppress(RuntimeError):  # already set, or work already ran
                torch.set_num_interop_threads(1)

    def _dtype(self):
        import torch

        return {"float32": torch.float32, "bfloat16": torch.bfloat16}[self.precision]

    def module(self, p: Problem):
        """An ``nn.LSTM(batch_first=True)`` holding the problem's weights, in this precision."""
        import torch

        d = p.input_size
        k, b = tf_to_gate_order(p.kernel, p.bias, "ifjo", p.forget_bias)  # torch: i f g o
        lstm = torch.nn.LSTM(d, p.num_units, batch_first=True)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(k[:d].T)))
            lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(k[d:].T)))
            lstm.bias_ih_l0.copy_(torch.from_numpy(b))
            lstm.bias_hh_l0.zero_()
        return lstm.to(self._dtype()).eval()

    def recipes(self, p: Problem) -> dict[str, RunFn]:
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        lstm, dtype = self.module(p), self._dtype()
        x_np, t_max = p.inputs, p.max_time
        lengths = torch.from_numpy(p.lengths.astype(np.int64))
        rows = torch.arange(p.batch)
        last = lengths - 1
        mask = (torch.arange(t_max)[None, :] < lengths[:, None]).to(dtype)[:, :, None]

        def packed():
            with torch.inference_mode():
                x = torch.from_numpy(x_np).to(dtype)
                seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                y, (h_n, _) = lstm(seq)
                out, _ = pad_packed_sequence(y, batch_first=True, total_length=t_max)
                return out.float().numpy(), h_n[0].float().numpy()

        def padded():
            # An LSTM is causal: over the padded batch, the outputs before each
            # row's length are right; zero the rest and take h at the last step.
            with torch.inference_mode():
                y, _ = lstm(torch.from_numpy(x_np).to(dtype))
                h = y[rows, last]
                return (y * mask).float().numpy(), h.float().numpy()

        def full():
            with torch.inference_mode():
                y, (h_n, _) = lstm(torch.from_numpy(x_np).to(dtype))
                return y.float().numpy(), h_n[0].float().numpy()

        recipes = {"packed": packed, "padded": padded}
        if p.all_full:
            recipes["full"] = full
        return recipes


class TorchBFloat16(Torch):
    """The same recipes on ``module.to(torch.bfloat16)`` (inputs converted in the call)."""

    name = "torch-bf16"
    precision = "bfloat16"


class OnnxRuntime(Contender):
    """One ONNX ``LSTM`` node, time-major (the transposes are part of the call)."""

    name = "onnxruntime"
    library = "onnxruntime"

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

    def recipes(self, p: Problem) -> dict[str, RunFn]:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        d, hsz = p.input_size, p.num_units
        k, b = tf_to_gate_order(p.kernel, p.bias, "iofj", p.forget_bias)  # ORT: i o f c
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

        return {"lstm_node": run}


class TensorFlow1(Contender):
    """``tf.compat.v1.nn.dynamic_rnn`` on a ``BasicLSTMCell`` in a session."""

    name = "tensorflow"
    library = "tensorflow"

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

    def recipes(self, p: Problem) -> dict[str, RunFn]:
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

        return {"dynamic_rnn": run}

    def close(self) -> None:
        for s in self._sessions:
            with contextlib.suppress(Exception):
                s.close()
        self._sessions.clear()


CONTENDERS: dict[str, type[Contender]] = {
    c.name: c
    for c in (FastLSTM, FastLSTMBFloat16, Torch, TorchBFloat16, OnnxRuntime, TensorFlow1, NumpyReference)
}
