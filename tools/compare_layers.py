"""Compare this tree with a baseline tree: bitwise outputs, and the per-call overhead.

    python tools/compare_layers.py /work/wt/base/src [--cases 300]
    python tools/compare_layers.py /work/wt/base/src --overhead [--calls 2000] [--rounds 5]

Bitwise mode runs the same random cases (``dynamic_rnn``, ``bidirectional_dynamic_rnn``
and ``LSTMModel``, with BasicLSTMCell / LSTMCell with peepholes, clipping and
projection / MultiRNNCell, initial states, ``time_major``, float32 and float64)
once with each tree on ``PYTHONPATH`` (each in a subprocess of its own), and
checks every output and final-state array with ``np.array_equal``. The cases
use only the API both trees have.

Overhead mode times a tiny call (``BasicLSTMCell(8)``, float32 inputs
``[2, 3, 4]``): the median of ``--calls`` calls after warm-up, in ``--rounds``
alternating subprocesses per tree; it prints each round's median and the
median of those.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE_SRC = str(pathlib.Path(__file__).resolve().parents[1] / "src")


# -- the cases (run inside each subprocess) ---------------------------------------------------------
def _leaf(fastlstm, rng, depth, dtype):
    units = int(rng.integers(1, 7))
    kind = int(rng.integers(0, 3))
    activation = ("tanh", "relu")[int(rng.integers(0, 2))]
    if kind == 0:
        cell = fastlstm.BasicLSTMCell(
            units, forget_bias=float(rng.uniform(0, 1)), activation=activation, dtype=dtype
        )
    else:
        cell = fastlstm.LSTMCell(
            units,
            use_peepholes=bool(rng.integers(0, 2)),
            cell_clip=float(rng.uniform(0.5, 2)) if rng.integers(0, 2) else None,
            num_proj=int(rng.integers(1, 5)) if kind == 2 else None,
            activation=activation,
            dtype=dtype,
        )
    cell.build(depth, seed=int(rng.integers(0, 2**31)))
    # Larger weights than glorot's, so that clipping and saturation happen.
    cell.set_weights([w * rng.uniform(1, 3) for w in cell.get_weights()])
    return cell


def _cell(fastlstm, rng, depth, dtype):
    if rng.integers(0, 4) == 0:
        cells, d = [], depth
        for _ in range(int(rng.integers(1, 4))):
            cells.append(_leaf(fastlstm, rng, d, dtype))
            d = cells[-1].output_size
        return fastlstm.MultiRNNCell(cells)
    return _leaf(fastlstm, rng, depth, dtype)


def _random_state(rng, cell, batch, dtype):
    if rng.integers(0, 2) == 0:
        return None
    zero = cell.zero_state(batch, dtype)

    def fill(part):
        if isinstance(part, tuple):
            return (
                type(part)(*[fill(p) for p in part]) if hasattr(part, "_fields") else tuple(map(fill, part))
            )
        return rng.uniform(-1, 1, part.shape).astype(dtype)

    return fill(zero)


def _leaves(tree, out):
    if isinstance(tree, (tuple, list)):
        for part in tree:
            _leaves(part, out)
    else:
        out.append(np.asarray(tree))
    return out


def _one_case(fastlstm, rng):
    dtype = (np.float32, np.float64)[int(rng.integers(0, 2))]
    batch, max_time, depth = int(rng.integers(0, 40)), int(rng.integers(0, 9)), int(rng.integers(1, 6))
    time_major = bool(rng.integers(0, 2))
    shape = (max_time, batch, depth) if time_major else (batch, max_time, depth)
    x = rng.uniform(-2, 2, shape).astype((np.float32, np.float64)[int(rng.integers(0, 2))])
    lengths = rng.integers(0, max_time + 1, batch) if rng.integers(0, 4) else None
    kind = int(rng.integers(0, 3))
    if kind == 0:
        cell = _cell(fastlstm, rng, depth, dtype)
        state = _random_state(rng, cell, batch, dtype)
        result = fastlstm.dynamic_rnn(
            cell, x, lengths, initial_state=state, dtype=dtype, time_major=time_major
        )
    elif kind == 1:
        fw, bw = _cell(fastlstm, rng, depth, dtype), _cell(fastlstm, rng, depth, dtype)
        result = fastlstm.bidirectional_dynamic_rnn(
            fw,
            bw,
            x,
            lengths,
            initial_state_fw=_random_state(rng, fw, batch, dtype),
            initial_state_bw=_random_state(rng, bw, batch, dtype),
            dtype=dtype,
            time_major=time_major,
        )
    else:
        layers, states, d = [], [], depth
        for _ in range(int(rng.integers(1, 4))):
            if rng.integers(0, 2):
                pair = (_cell(fastlstm, rng, d, dtype), _cell(fastlstm, rng, d, dtype))
                layers.append(pair)
                states.append(tuple(_random_state(rng, c, batch, dtype) for c in pair))
                d = pair[0].output_size + pair[1].output_size
            else:
                layers.append(_cell(fastlstm, rng, d, dtype))
                states.append(_random_state(rng, layers[-1], batch, dtype))
                d = layers[-1].output_size
        model = fastlstm.LSTMModel(layers)
        result = model(x, lengths, states if rng.integers(0, 2) else None, time_major=time_major)
    return _leaves(result, [])


def run_cases(n_cases: int, out_path: str) -> None:
    import fastlstm

    rng = np.random.default_rng(20240611)
    arrays = {}
    for case in range(n_cases):
        for k, value in enumerate(_one_case(fastlstm, rng)):
            arrays[f"{case}.{k}"] = value
    np.savez(out_path, **arrays)


def time_calls(n_calls: int) -> None:
    import time

    import fastlstm

    cell = fastlstm.BasicLSTMCell(8)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for _ in range(200):
        fastlstm.dynamic_rnn(cell, x)
    times = []
    for _ in range(n_calls):
        start = time.perf_counter()
        fastlstm.dynamic_rnn(cell, x)
        times.append(time.perf_counter() - start)
    print(statistics.median(times) * 1e6)


# -- the driver -------------------------------------------------------------------------------------
def _in_tree(src: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def compare(baseline_src: str, n_cases: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for label, src in (("baseline", baseline_src), ("this tree", HERE_SRC)):
            paths[label] = os.path.join(folder, f"{label.replace(' ', '_')}.npz")
            _in_tree(src, "cases", str(n_cases), paths[label])
        with np.load(paths["baseline"]) as base, np.load(paths["this tree"]) as here:
            if sorted(base.files) != sorted(here.files):
                print("the two trees give different numbers of result arrays")
                return 1
            bad = [
                key
                for key in base.files
                if base[key].dtype != here[key].dtype or not np.array_equal(base[key], here[key])
            ]
            n_arrays, elements = len(base.files), sum(base[key].size for key in base.files)
    print(f"{n_cases} cases, {n_arrays} arrays, {elements} elements: ", end="")
    print("all bitwise equal" if not bad else f"{len(bad)} arrays differ, e.g. {bad[:5]}")
    return 1 if bad else 0


def overhead(baseline_src: str, n_calls: int, rounds: int) -> None:
    medians: dict[str, list[float]] = {"baseline": [], "this tree": []}
    for _ in range(rounds):
        for label, src in (("baseline", baseline_src), ("this tree", HERE_SRC)):
            medians[label].append(float(_in_tree(src, "time", str(n_calls))))
    for label, values in medians.items():
        rounds_text = ", ".join(f"{v:.1f}" for v in values)
        print(f"{label}: median {statistics.median(values):.1f} us per call (rounds: {rounds_text})")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "cases":
            run_cases(int(sys.argv[3]), sys.argv[4])
        else:
            time_calls(int(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline_src", help="the baseline's src directory, e.g. /work/wt/base/src")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--overhead", action="store_true", help="time the per-call overhead instead")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.overhead:
        overhead(args.baseline_src, args.calls, args.rounds)
        return 0
    return compare(args.baseline_src, args.cases)


if __name__ == "__main__":
    sys.exit(main())
