"""Compare two fastlstm source trees: bitwise outputs on random cases, and the per-call overhead.

    python tools/compare_trees.py BASELINE_SRC [--candidate src] [--cases 300]
    python tools/compare_trees.py [BASELINE_SRC] --overhead [--calls 2000] [--rounds 5]

Bitwise mode runs the same deterministic random cases once with each tree on
``PYTHONPATH`` (each in a subprocess of its own) and compares every output and
final-state array with ``np.array_equal`` (NaN equal to NaN, dtypes must match);
exit status 1 if any differs. Two families of cases per case number: cell options
(BasicLSTMCell / LSTMCell with peepholes, clipping, projection and projection
clipping; built-in and user activations; one row of 128 units, which splits the
units across the threads; MultiRNNCell and bidirectional runs) and layer drivers
(``dynamic_rnn``, ``bidirectional_dynamic_rnn`` and ``LSTMModel`` over stacks of
cells and pairs, with random initial states, larger-than-Glorot weights so that
clipping and saturation happen). Both use float32 and float64, time-major and
batch-major inputs, lengths or none, and only public API, so any two versions of
the package can be compared (e.g. a worktree of the last landing: ``git worktree
add --detach /work/wt/base <commit>``).

Overhead mode times a tiny call (``BasicLSTMCell(8)``, float32 inputs ``[2, 3, 4]``:
a few hundred multiply-adds, so the time is what the Python layers and the kernel
calls cost around it): the median of ``--calls`` calls after warm-up, in
``--rounds`` alternating subprocesses per tree (only the candidate without a
baseline); it prints each round's median and the median of those.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE_SRC = str(pathlib.Path(__file__).resolve().parents[1] / "src")


# -- the cases (run inside each subprocess) ---------------------------------------------------------
ACTIVATIONS = [None, "relu", "sigmoid", "linear", "softsign", "elu", "hard_sigmoid", "relu6", "selu", "swish"]


def leaky(x):
    """A user activation (one plain function object shared by every case that uses it)."""
    return x if x > 0 else 0.1 * x


def make_cell(fastlstm, rng, dtype, depth):
    """A random BasicLSTMCell or LSTMCell with random weights for inputs of ``depth``."""
    units = int(rng.choice([1, 3, 8, 17, 33]))
    activation = leaky if rng.random() < 0.08 else ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
    forget_bias = float(rng.choice([1.0, 0.0, 0.5]))
    if rng.random() < 0.4:
        cell = fastlstm.BasicLSTMCell(units, forget_bias=forget_bias, activation=activation, dtype=dtype)
    else:
        num_proj = int(rng.integers(1, 6)) if rng.random() < 0.4 else None
        cell = fastlstm.LSTMCell(
            units,
            use_peepholes=bool(rng.random() < 0.5),
            cell_clip=float(rng.choice([0.5, 2.0])) if rng.random() < 0.4 else None,
            num_proj=num_proj,
            proj_clip=0.3 if num_proj is not None and rng.random() < 0.5 else None,
            forget_bias=forget_bias,
            activation=activation,
            dtype=dtype,
        )
    cell.build(depth, seed=int(rng.integers(2**31)))
    cell.set_weights([w + rng.uniform(-0.3, 0.3, w.shape) for w in cell.get_weights()])
    return cell


def option_cases(n_cases: int) -> dict[str, np.ndarray]:
    """Cell options, activations, the unit split: every output array of ``n_cases`` runs, by ``"o<case>/<name>"``."""
    import fastlstm

    results = {}
    for case in range(n_cases):
        rng = np.random.default_rng(case)
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        wide = rng.random() < 0.05  # one row, 128 units: the units are split across the threads
        batch = 1 if wide else int(rng.integers(0, 10))
        max_time = int(rng.integers(0, 8))
        depth = int(rng.integers(1, 10))
        time_major = bool(rng.random() < 0.3)
        shape = (max_time, batch, depth) if time_major else (batch, max_time, depth)
        x = rng.uniform(-2, 2, shape).astype(dtype)
        lengths = rng.integers(0, max_time + 1, batch) if rng.random() < 0.6 else None
        kind = rng.random()
        if wide:
            cell = fastlstm.BasicLSTMCell(128, dtype=dtype)
            cell.build(depth, seed=case)
            outputs, state = fastlstm.dynamic_rnn(cell, x, lengths, dtype=dtype, time_major=time_major)
            arrays = {"outputs": outputs, "c": state.c, "h": state.h}
        elif kind < 0.6:
            cell = make_cell(fastlstm, rng, dtype, depth)
            initial = None
            if rng.random() < 0.3:
                c0 = rng.uniform(-1, 1, (batch, cell.num_units)).astype(dtype)
                h0 = rng.uniform(-1, 1, (batch, cell.output_size)).astype(dtype)
                initial = fastlstm.LSTMStateTuple(c0, h0)
            outputs, state = fastlstm.dynamic_rnn(
                cell, x, lengths, initial_state=initial, dtype=dtype, time_major=time_major
            )
            arrays = {"outputs": outputs, "c": state.c, "h": state.h}
        elif kind < 0.8:
            bottom = make_cell(fastlstm, rng, dtype, depth)
            top = make_cell(fastlstm, rng, dtype, bottom.output_size)
            stack = fastlstm.MultiRNNCell([bottom, top])
            outputs, (s0, s1) = fastlstm.dynamic_rnn(stack, x, lengths, dtype=dtype, time_major=time_major)
            arrays = {"outputs": outputs, "c0": s0.c, "h0": s0.h, "c1": s1.c, "h1": s1.h}
        else:
            fw, bw = make_cell(fastlstm, rng, dtype, depth), make_cell(fastlstm, rng, dtype, depth)
            (out_fw, out_bw), (s_fw, s_bw) = fastlstm.bidirectional_dynamic_rnn(
                fw, bw, x, lengths, dtype=dtype, time_major=time_major
            )
            arrays = {"out_fw": out_fw, "out_bw": out_bw, "c_fw": s_fw.c, "h_fw": s_fw.h}
            arrays.update({"c_bw": s_bw.c, "h_bw": s_bw.h})
        for name, value in arrays.items():
            results[f"o{case}/{name}"] = np.asarray(value)
    return results


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


def layer_cases(n_cases: int) -> dict[str, np.ndarray]:
    """Stacks, pairs, models and initial states: every result array, by ``"l<case>.<k>"``."""
    import fastlstm

    rng = np.random.default_rng(20240611)
    return {
        f"l{case}.{k}": value for case in range(n_cases) for k, value in enumerate(_one_case(fastlstm, rng))
    }


def time_calls(n_calls: int) -> float:
    """Median seconds of a tiny ``dynamic_rnn`` call, after 200 warm-up calls."""
    import fastlstm

    cell = fastlstm.BasicLSTMCell(8)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for _ in range(200):
        fastlstm.dynamic_rnn(cell, x, dtype=np.float32)
    times = []
    for _ in range(n_calls):
        start = time.perf_counter()
        fastlstm.dynamic_rnn(cell, x, dtype=np.float32)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- the driver -------------------------------------------------------------------------------------
def _in_tree(src: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def compare(baseline_src: str, candidate_src: str, n_cases: int) -> int:
    """Run the cases under both trees and compare; prints a summary, returns the exit status."""
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for label, src in (("baseline", baseline_src), ("candidate", candidate_src)):
            paths[label] = os.path.join(folder, f"{label}.npz")
            _in_tree(src, "cases", str(n_cases), paths[label])
        with np.load(paths["baseline"]) as base, np.load(paths["candidate"]) as here:
            if sorted(base.files) != sorted(here.files):
                print(f"different arrays: {sorted(set(base.files) ^ set(here.files))[:20]}")
                return 1
            bad = [
                key
                for key in base.files
                if base[key].dtype != here[key].dtype
                or not np.array_equal(base[key], here[key], equal_nan=True)
            ]
            n_arrays, elements = len(base.files), sum(base[key].size for key in base.files)
    print(f"{n_cases} cases x 2 families, {n_arrays} arrays, {elements} elements: ", end="")
    print("all bitwise equal" if not bad else f"{len(bad)} arrays differ, e.g. {bad[:10]}")
    return 1 if bad else 0


def overhead(trees: dict[str, str], n_calls: int, rounds: int) -> None:
    medians: dict[str, list[float]] = {label: [] for label in trees}
    for _ in range(rounds):
        for label, src in trees.items():
            medians[label].append(float(_in_tree(src, "time", str(n_calls))) * 1e6)
    for label, values in medians.items():
        rounds_text = ", ".join(f"{v:.1f}" for v in values)
        print(f"{label}: median {statistics.median(values):.1f} us per call (rounds: {rounds_text})")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "cases":
            n_cases = int(sys.argv[3])
            np.savez(sys.argv[4], **option_cases(n_cases), **layer_cases(n_cases))
        else:
            print(time_calls(int(sys.argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "baseline_src", nargs="?", help="the baseline's src directory, e.g. /work/wt/base/src"
    )
    parser.add_argument(
        "--candidate", default=HERE_SRC, help="the candidate's src directory (default: this tree)"
    )
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--overhead", action="store_true", help="time the per-call overhead instead")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.overhead:
        trees = {"baseline": args.baseline_src} if args.baseline_src else {}
        overhead({**trees, "candidate": args.candidate}, args.calls, args.rounds)
        return 0
    if not args.baseline_src:
        parser.error("bitwise mode needs BASELINE_SRC")
    return compare(args.baseline_src, args.candidate, args.cases)


if __name__ == "__main__":
    sys.exit(main())
