"""Check that two fastlstm source trees give bitwise identical outputs on random cases.

    python tools/compare_outputs.py --baseline /work/wt/base/src --candidate src [--cases 300]

Each tree runs the same deterministic set of random cases (shapes, lengths,
dtypes, built-in and user activations, LSTMCell options, initial states,
time-major, stacked and bidirectional runs) in its own interpreter
(``PYTHONPATH=<tree>``) and writes every output array to an ``.npz``; the two
files are then compared with ``np.array_equal`` (NaN equal to NaN, dtypes must
match). Exit status 1 if any array differs.

    python tools/compare_outputs.py run OUT.npz [--cases 300]

runs the cases with whichever fastlstm is importable and only writes ``OUT.npz``.
Only public API is used, so any two versions of the package can be compared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

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


def run_cases(n_cases: int) -> dict[str, np.ndarray]:
    """Every output array of ``n_cases`` random runs, by ``"<case>/<name>"``."""
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
            results[f"{case}/{name}"] = np.asarray(value)
    return results


def compare(baseline: str, candidate: str, n_cases: int) -> int:
    """Run the cases under both trees and compare; prints a summary, returns the exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for label, tree in (("baseline", baseline), ("candidate", candidate)):
            target = os.path.join(tmp, f"{label}.npz")
            env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
            subprocess.run(
                [sys.executable, __file__, "run", target, "--cases", str(n_cases)], env=env, check=True
            )
            files.append(target)
        with np.load(files[0]) as old, np.load(files[1]) as new:
            if sorted(old.files) != sorted(new.files):
                print(f"different arrays: {sorted(set(old.files) ^ set(new.files))}")
                return 1
            differing = [
                key
                for key in old.files
                if old[key].dtype != new[key].dtype or not np.array_equal(old[key], new[key], equal_nan=True)
            ]
            print(f"{n_cases} cases, {len(old.files)} arrays compared, {len(differing)} differ")
            for key in differing[:20]:
                print(f"  {key}")
    return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["run"], help="'run' only writes OUT.npz")
    parser.add_argument("out", nargs="?", help="with 'run': the .npz to write")
    parser.add_argument("--baseline", default="/work/wt/base/src")
    parser.add_argument("--candidate", default="src")
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    if args.mode == "run":
        np.savez(args.out, **run_cases(args.cases))
        return
    sys.exit(compare(args.baseline, args.candidate, args.cases))


if __name__ == "__main__":
    main()
