"""fastlstm ``precision="bfloat16"`` against PyTorch bfloat16, and the accuracy of both.

    python tools/bf16_speed.py [--rounds 3] [--threads 2] [--workloads small,large] [--json out.json]
                               [--baseline OTHER/src]

PyTorch: ``nn.LSTM(batch_first=True).to(torch.bfloat16)`` (oneDNN; AVX512-BF16 where the CPU
has it) under ``inference_mode``, inputs in bfloat16, outputs back in float32; with varying
lengths the faster of two correct recipes (``pack_padded_sequence``; or the padded batch, the
outputs masked past each length and the final ``h`` gathered at each row's last step). The same
weights, inputs and lengths for both; ``forget_bias`` folded into torch's f-gate bias.

Every contender runs in its own fresh process for each round, and the rounds interleave
(fastlstm, torch, fastlstm, torch, ...): numba's OpenMP threads and torch's never share a
process and a busy spell of the machine hits both. A contender's figure is the median over
rounds of its per-round median call time. Each round also times numpy's float32 sgemm
(2048^3, in a process of its own): the bfloat16 peak is taken as twice its median. The error is
the max abs difference of outputs and final h from a float64 evaluation of the float32 model
(``fastlstm.reference``), measured once per workload over its first 100 steps.

``--baseline`` adds another fastlstm source tree as a contender (``PYTHONPATH`` set to it), in
the same interleaved rounds: its figures and the speed-up of the fastlstm importable here over it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# name -> (batch, max_time, input_size, num_units)
WORKLOADS = {
    "small": (32, 50, 32, 64),
    "scoring": (256, 100, 64, 128),
    "large": (64, 100, 256, 512),
    "single": (1, 200, 64, 256),
    "longseq": (16, 1000, 40, 128),
    "wide_batch": (2048, 30, 16, 32),
}
MODES = ("full", "uniform")
FORGET_BIAS = 1.0


def make_problem(name: str, mode: str) -> dict:
    """Inputs, Glorot-uniform kernel, small bias and lengths (uniform: in ``[T // 10, T]``, row 0 full)."""
    batch, max_time, depth, units = WORKLOADS[name]
    rng = np.random.default_rng(1234)
    limit = math.sqrt(6.0 / (depth + 5 * units))
    kernel = rng.uniform(-limit, limit, (depth + units, 4 * units)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, 4 * units).astype(np.float32)
    inputs = rng.standard_normal((batch, max_time, depth)).astype(np.float32)
    if mode == "full":
        lengths = np.full(batch, max_time)
    else:
        lengths = np.random.default_rng(1235).integers(max(1, max_time // 10), max_time + 1, batch)
        lengths[0] = max_time
    lengths = lengths.astype(np.int64)
    flops = 2.0 * (depth + units) * 4 * units * float(lengths.sum())
    return {"inputs": inputs, "kernel": kernel, "bias": bias, "lengths": lengths, "flops": flops}


def fastlstm_runner(p: dict):
    import fastlstm

    cell = fastlstm.BasicLSTMCell(p["bias"].shape[0] // 4, forget_bias=FORGET_BIAS)
    cell.build(p["inputs"].shape[2])
    cell.set_weights([p["kernel"], p["bias"]])

    def run():
        out, state = fastlstm.dynamic_rnn(cell, p["inputs"], p["lengths"], precision="bfloat16")
        return out, state.h

    return run


def torch_runners(p: dict) -> dict:
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    depth, units = p["inputs"].shape[2], p["bias"].shape[0] // 4
    i, j, f, o = np.split(p["kernel"], 4, axis=1)
    bi, bj, bf, bo = np.split(p["bias"], 4)
    kernel = np.concatenate([i, f, j, o], axis=1)  # torch's gate order: i, f, g, o
    lstm = torch.nn.LSTM(depth, units, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel[:depth].T)))
        lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(kernel[depth:].T)))
        lstm.bias_ih_l0.copy_(torch.from_numpy(np.concatenate([bi, bf + FORGET_BIAS, bj, bo])))
        lstm.bias_hh_l0.zero_()
    lstm = lstm.eval().to(torch.bfloat16)
    x = torch.from_numpy(p["inputs"]).to(torch.bfloat16)
    lengths = torch.from_numpy(p["lengths"])
    batch, max_time = p["inputs"].shape[:2]
    rows = torch.arange(batch)

    def padded():
        with torch.inference_mode():
            y, _ = lstm(x)
            y = y.float()
            if int(lengths.min()) < max_time:
                mask = torch.arange(max_time)[None, :] < lengths[:, None]
                h = y[rows, lengths - 1]
                y = y * mask[:, :, None]
            else:
                h = y[:, -1]
            return y.numpy(), h.numpy()

    def packed():
        with torch.inference_mode():
            sequence = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, (h_n, _) = lstm(sequence)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=max_time)
            return y.float().numpy(), h_n[0].float().numpy()

    if int(lengths.min()) == max_time:
        return {"plain": padded}
    return {"padded": padded, "packed": packed}


def median_call(fn, min_seconds: float = 1.0, min_calls: int = 5) -> float:
    fn()
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sgemm_gflops(n: int = 2048) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2.0 * n**3 / median_call(lambda: a @ b, min_seconds=0.5) / 1e9


def max_error(fn, p: dict) -> float:
    from fastlstm.reference import dynamic_rnn_reference

    steps = min(100, p["inputs"].shape[1])
    lengths = np.minimum(p["lengths"], steps)
    ref_out, (_, ref_h) = dynamic_rnn_reference(
        p["kernel"].astype(np.float64),
        p["bias"].astype(np.float64),
        p["inputs"][:, :steps].astype(np.float64),
        lengths,
        forget_bias=FORGET_BIAS,
    )
    out, _ = fn()
    error = np.abs(out[:, :steps] - ref_out)
    valid = np.arange(steps)[None, :] < lengths[:, None]
    return float(error[valid].max()) if ref_h.size else 0.0


def child(contender: str, names: list[str], threads: int, with_errors: bool) -> dict:
    """Time (and check) one contender on every workload and mode in this process."""
    results = {}
    if contender == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    elif contender == "sgemm":
        return {"sgemm": sgemm_gflops()}
    else:
        import numba

        numba.set_num_threads(threads)
    for name in names:
        for mode in MODES:
            p = make_problem(name, mode)
            runners = {"fastlstm": fastlstm_runner(p)} if contender == "fastlstm" else torch_runners(p)
            seconds = {recipe: median_call(fn) for recipe, fn in runners.items()}
            best = min(seconds, key=seconds.get)
            entry = {"seconds": seconds[best], "recipe": best, "flops": p["flops"]}
            if with_errors:
                entry["error"] = max(max_error(fn, p) for fn in runners.values())
            results[f"{name}/{mode}"] = entry
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--baseline", help="another fastlstm source tree (its src directory) to compare with")
    parser.add_argument("--child", choices=["fastlstm", "torch", "sgemm"], help=argparse.SUPPRESS)
    parser.add_argument("--errors", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.workloads.split(",")
    if args.child:
        print(json.dumps(child(args.child, names, args.threads, args.errors)))
        return
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"fastlstm": [], "torch": [], "sgemm": []}
    if args.baseline:
        runs["baseline"] = []
    for k in range(args.rounds):
        for contender, results in runs.items():
            child_kind = "fastlstm" if contender == "baseline" else contender
            command = [sys.executable, __file__, "--child", child_kind, "--threads", str(args.threads)]
            command += ["--workloads", args.workloads] + (
                ["--errors"] if k == 0 and contender != "sgemm" else []
            )
            env = dict(os.environ)
            if contender == "baseline":
                env["PYTHONPATH"] = os.path.abspath(args.baseline)
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results.append(json.loads(done.stdout.splitlines()[-1]))
    sgemm = statistics.median(r["sgemm"] for r in runs["sgemm"])
    peak = 2 * sgemm
    print(f"load averages before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}")
    print(f"numpy sgemm 2048^3: {sgemm:.1f} GFLOP/s")
    print(f"bfloat16 peak (2 x sgemm): {peak:.1f} GFLOP/s; {args.threads} threads, median of {args.rounds}")
    header = "| workload | lengths | fastlstm bf16 GFLOP/s | % of bf16 peak | torch bf16 GFLOP/s (recipe) "
    header += "| fastlstm / torch | max abs error fastlstm | torch |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    if args.baseline:
        header += " baseline GFLOP/s | baseline / torch | speed-up | max abs error baseline |"
        rule += "---:|---:|---:|---:|"
    print(header)
    print(rule)
    table = {}
    for key in runs["fastlstm"][0]:
        name, mode = key.split("/")
        ours = statistics.median(r[key]["seconds"] for r in runs["fastlstm"])
        theirs = statistics.median(r[key]["seconds"] for r in runs["torch"])
        flops = runs["fastlstm"][0][key]["flops"]
        recipe = runs["torch"][0][key]["recipe"]
        ours_gf, theirs_gf = flops / ours / 1e9, flops / theirs / 1e9
        err_ours, err_theirs = runs["fastlstm"][0][key]["error"], runs["torch"][0][key]["error"]
        table[key] = {"fastlstm": ours_gf, "torch": theirs_gf, "recipe": recipe}
        line = (
            f"| {name} | {mode} | {ours_gf:.0f} | {100 * ours_gf / peak:.0f}% | {theirs_gf:.0f} ({recipe}) "
            f"| {ours_gf / theirs_gf:.2f}x | {err_ours:.1e} | {err_theirs:.1e} |"
        )
        if args.baseline:
            base_gf = flops / statistics.median(r[key]["seconds"] for r in runs["baseline"]) / 1e9
            err_base = runs["baseline"][0][key]["error"]
            table[key]["baseline"] = base_gf
            line += (
                f" {base_gf:.0f} | {base_gf / theirs_gf:.2f}x | {ours_gf / base_gf:.2f}x | {err_base:.1e} |"
            )
        print(line)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"sgemm": sgemm, "runs": runs, "table": table}, stream, indent=1)


if __name__ == "__main__":
    main()
