"""Throughput of a text classifier, Embedding -> LSTM -> Dense(1, sigmoid), fed token ids.

    python tools/embedding_speed.py [--batch 256] [--time 100] [--vocab 10000] [--dim 128]
                                    [--units 128] [--repeats 7]

Sequences per second (median of ``--repeats`` calls after a warm-up) for:
fastlstm fed ids (the kernel gathers the precomputed projection bias + E @ W_x),
fed ids with the projection switched off (the kernel gathers embedding rows),
the same recurrent model fed the vectors ``E[ids]`` (made outside the timing),
PyTorch (``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear`` under ``torch.inference_mode``)
on 1 thread and on its default threads (a busy machine can make one faster), ONNX
Runtime running that PyTorch model exported whole, and Keras 3 running the same model
(``Input(int32) -> Embedding -> LSTM -> Dense(1, sigmoid)``) with ``predict_on_batch``,
compiled by ``tf.function`` and by XLA (``jit_compile=True``), the faster reported
(each only if installed; Keras needs TensorFlow, which fastlstm never depends on:
run the tool in a throwaway venv, see tools/golden/make_heads_golden.py).
Every result is checked against fastlstm's before it is timed. Full-length
rows, float32, the threads numba, torch and TensorFlow use by default; each
contender starts after 0.3 s of idle so the previous one's threads have gone to sleep.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import time

import numpy as np

import fastlstm
from fastlstm import _runner


def median_seconds(run, repeats: int) -> float:
    time.sleep(0.3)  # let the previous contender's thread pool go idle
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("batch", 256), ("time", 100), ("vocab", 10000), ("dim", 128), ("units", 128)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.5, (args.vocab, args.dim)).astype(np.float32)
    kernel = rng.uniform(-0.1, 0.1, (args.dim + args.units, 4 * args.units)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 4 * args.units).astype(np.float32)
    head_w = rng.uniform(-0.3, 0.3, (args.units, 1)).astype(np.float32)
    head_b = np.array([0.1], np.float32)
    ids = rng.integers(1, args.vocab, (args.batch, args.time))

    cell = fastlstm.BasicLSTMCell(args.units, forget_bias=0.0)
    cell.set_weights([kernel, bias])
    dense = fastlstm.Dense(head_w, head_b, "sigmoid")
    model = fastlstm.LSTMModel([fastlstm.Embedding(table), cell, dense], return_sequences=False)
    vectors_model = fastlstm.LSTMModel([cell, dense], return_sequences=False)
    vectors = np.ascontiguousarray(table[ids])
    want, _ = model(ids)
    got, _ = vectors_model(vectors)
    assert np.array_equal(want, got), "ids and vectors differ"

    print(
        f"batch {args.batch} x time {args.time}, vocab {args.vocab}, embed {args.dim}, units {args.units}; "
        f"numba threads {fastlstm._runner.numba.get_num_threads()}, load average {os.getloadavg()[0]:.2f}"
    )
    results = {}
    results["fastlstm, ids (projected table)"] = median_seconds(lambda: model(ids), args.repeats)
    limit = _runner.PROJECTED_TABLE_BYTES
    _runner.PROJECTED_TABLE_BYTES = 0
    try:
        results["fastlstm, ids (rows gathered)"] = median_seconds(lambda: model(ids), args.repeats)
    finally:
        _runner.PROJECTED_TABLE_BYTES = limit
    results["fastlstm, vectors E[ids]"] = median_seconds(lambda: vectors_model(vectors), args.repeats)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        embed = torch.nn.Embedding(args.vocab, args.dim)
        lstm = torch.nn.LSTM(args.dim, args.units, batch_first=True)
        linear = torch.nn.Linear(args.units, 1)
        # TF's gate order i, j, f, o to PyTorch's i, f, g, o; one bias (the other zero).
        i, j, f, o = np.split(kernel, 4, axis=1)
        bi, bj, bf, bo = np.split(bias, 4)
        with torch.no_grad():
            embed.weight.copy_(torch.from_numpy(table))
            lstm.weight_ih_l0.copy_(torch.from_numpy(np.concatenate([i, f, j, o], 1)[: args.dim].T))
            lstm.weight_hh_l0.copy_(torch.from_numpy(np.concatenate([i, f, j, o], 1)[args.dim :].T))
            lstm.bias_ih_l0.copy_(torch.from_numpy(np.concatenate([bi, bf, bj, bo])))
            lstm.bias_hh_l0.zero_()
            linear.weight.copy_(torch.from_numpy(head_w.T))
            linear.bias.copy_(torch.from_numpy(head_b))

        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed, self.lstm, self.linear = embed, lstm, linear

            def forward(self, tokens):
                _, (h, _) = self.lstm(self.embed(tokens))
                return torch.sigmoid(self.linear(h[-1]))

        classifier = Classifier().eval()
        tokens = torch.from_numpy(ids)
        with torch.inference_mode():
            out = classifier(tokens).numpy()
            assert np.abs(out - want).max() < 1e-5, np.abs(out - want).max()

            def torch_run():
                with torch.inference_mode():
                    classifier(tokens)

            threads = torch.get_num_threads()
            for count in sorted({1, threads}):  # on a busy machine one thread can beat two
                torch.set_num_threads(count)
                results[f"PyTorch {torch.__version__} ({count} thread{'s' * (count > 1)})"] = median_seconds(
                    torch_run, args.repeats
                )
            torch.set_num_threads(threads)
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            buffer = io.BytesIO()
            with torch.no_grad():
                torch.onnx.export(classifier, (tokens,), buffer, input_names=["ids"], dynamo=False)
            session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
            out = session.run(None, {"ids": ids})[0]
            assert np.abs(out - want).max() < 1e-5, np.abs(out - want).max()
            results[f"ONNX Runtime {ort.__version__}"] = median_seconds(
                lambda: session.run(None, {"ids": ids}), args.repeats
            )
    results.update(keras_seconds(table, kernel, bias, head_w, head_b, ids, want, args.repeats))
    for name, seconds in results.items():
        print(f"{name:48s} {args.batch / seconds:10.0f} sequences/s  ({seconds * 1e3:.1f} ms per call)")


def keras_seconds(table, kernel, bias, head_w, head_b, ids, want, repeats: int) -> dict[str, float]:
    """Keras 3 running the whole classifier (empty if Keras is not installed)."""
    try:
        import keras
    except ImportError:
        return {}
    units = bias.shape[0] // 4
    # TF's gate order i, j, f, o to Keras' i, f, c, o; forget_bias 0.
    i, j, f, o = np.split(kernel, 4, axis=1)
    bi, bj, bf, bo = np.split(bias, 4)
    reordered = np.concatenate([i, f, j, o], 1)
    seconds = {}
    for jit in (False, True):
        layers = keras.layers
        model = keras.Sequential(
            [
                keras.Input((ids.shape[1],), dtype="int32"),
                layers.Embedding(*table.shape),
                layers.LSTM(units),
                layers.Dense(1, activation="sigmoid"),
            ]
        )
        lstm_weights = [
            reordered[: table.shape[1]],
            reordered[table.shape[1] :],
            np.concatenate([bi, bf, bj, bo]),
        ]
        model.set_weights([table, *lstm_weights, head_w, head_b])
        model.compile(jit_compile=jit)
        tokens = ids.astype(np.int32)
        error = np.abs(np.asarray(model.predict_on_batch(tokens)) - want).max()
        assert error < 1e-5, error
        label = "XLA" if jit else "tf.function"
        seconds[f"Keras {keras.__version__} ({keras.backend.backend()}, {label})"] = median_seconds(
            functools.partial(model.predict_on_batch, tokens), repeats
        )
    return seconds


if __name__ == "__main__":
    main()
