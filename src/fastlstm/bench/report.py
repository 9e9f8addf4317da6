"""Figures from timed entries, and the text and Markdown tables of a comparison.

>>> from fastlstm.bench.timing import Entry
>>> from fastlstm.bench.problems import make_problem
>>> p = make_problem(2, 4, 3, 5, "full", name="tiny")
>>> entries = [Entry("fastlstm", "dynamic_rnn", times_s=[1e-3]),
...            Entry("torch", "packed", times_s=[4e-3]), Entry("torch", "padded", times_s=[2e-3])]
>>> s = summarize(p, entries, {"fastlstm": ("float32", "ours"), "torch": ("float32", "peer")})
>>> s["contenders"]["torch"]["recipe"], s["speedups"]["fastlstm"]["float32"]["ratio"]
('padded', 2.0)
"""

from __future__ import annotations

import numpy as np

from .machine import machine_was_busy
from .problems import Problem

__all__ = ["format_markdown", "format_table", "summarize"]


def summarize(
    p: Problem,
    entries: list,
    kinds: dict[str, tuple[str, str]],
    sgemm_gflops: float | None = None,
    checks: list[dict] | None = None,
) -> dict:
    """The figures of one problem.

    ``entries`` are :class:`~fastlstm.bench.timing.Entry` objects; ``kinds``
    maps a contender to ``(precision, role)``, the role one of ``"ours"``
    (fastlstm), ``"peer"`` (ranked against ours) or ``"baseline"``;
    ``checks`` are :func:`~fastlstm.bench.timing.cross_check` rows.  A
    contender's figure is its fastest correct recipe;
    ``speedups[ours][precision]`` is the median of the fastest peer of that
    precision over ours (``> 1``: ours is faster).
    """
    by_key = {row["key"]: row for row in checks or []}
    rows = []
    for e in entries:
        med = e.median_s
        gflops = p.flops / med / 1e9 if med else None
        check = by_key.get((p.label, e.contender, e.recipe), {})
        rows.append(
            {
                "contender": e.contender,
                "recipe": e.recipe,
                "status": e.status,
                "note": e.note,
                "max_abs_err": e.max_abs_err,
                "calls_per_sample": e.calls_per_sample,
                "times_s": e.times_s,
                "median_s": med,
                "spread": float(np.subtract(*np.percentile(e.times_s, [75, 25])) / med) if med else None,
                "gflops": gflops,
                "sgemm_frac": gflops / sgemm_gflops if gflops and sgemm_gflops else None,
                "seq_per_s": p.batch / med if med else None,
                "alone_s": check.get("alone_s"),
                "side_over_alone": check.get("ratio"),
                "suspect": check.get("suspect"),
            }
        )
    best: dict[str, dict] = {}
    for row in rows:
        if row["median_s"] and (
            row["contender"] not in best or row["median_s"] < best[row["contender"]]["median_s"]
        ):
            best[row["contender"]] = row
    figures = {
        name: {
            "recipe": row["recipe"],
            "median_s": row["median_s"],
            "gflops": row["gflops"],
            "sgemm_frac": row["sgemm_frac"],
            "precision": kinds[name][0],
            "role": kinds[name][1],
            "suspect": row["suspect"],
        }
        for name, row in best.items()
    }
    speedups: dict[str, dict[str, dict]] = {}
    peer_precisions = sorted(
        {f["precision"] for f in figures.values() if f["role"] == "peer"}, key=_precision_order
    )
    for ours, fig in figures.items():
        if fig["role"] != "ours":
            continue
        for precision in peer_precisions:
            peers = [
                (n, f) for n, f in figures.items() if f["role"] == "peer" and f["precision"] == precision
            ]
            name, peer = min(peers, key=lambda nf: nf[1]["median_s"])
            speedups.setdefault(ours, {})[precision] = {
                "peer": name,
                "recipe": peer["recipe"],
                "ratio": peer["median_s"] / fig["median_s"],
            }
    return {
        "workload": p.name,
        "lengths": p.lengths_mode,
        "label": p.label,
        "batch": p.batch,
        "max_time": p.max_time,
        "input_size": p.input_size,
        "num_units": p.num_units,
        "sum_lengths": p.sum_lengths,
        "flops": p.flops,
        "entries": rows,
        "contenders": figures,
        "speedups": speedups,
    }


def _precision_order(precision: str) -> tuple[int, str]:
    return (0 if precision == "float32" else 1, precision)


def _shape(s: dict) -> str:
    return f"({s['batch']},{s['max_time']},{s['input_size']},{s['num_units']})"


def format_table(summaries: list[dict], sgemm: dict | None) -> str:
    """The full text report: every recipe's figures, the cross-check, the speedups."""
    w = max([24] + [len(f"{s['label']} {_shape(s)}") for s in summaries])
    head = (
        f"{'workload':<{w}} {'contender/recipe':<24} {'median ms':>10} {'IQR':>4} {'GFLOP/s':>8} "
        f"{'%sgemm':>6} {'alone ms':>9} {'x alone':>7} {'max|err|':>8}  note"
    )
    lines = [head, "-" * len(head)]
    for s in summaries:
        label = f"{s['label']} {_shape(s)}"
        for i, r in enumerate(s["entries"]):
            best = s["contenders"].get(r["contender"], {}).get("recipe") == r["recipe"]
            name = f"{r['contender']}/{r['recipe']}" + ("*" if best else "")
            if r["median_s"]:
                frac = f"{100 * r['sgemm_frac']:5.0f}%" if r["sgemm_frac"] else f"{'-':>6}"
                figs = f"{r['median_s'] * 1e3:10.3f} {100 * r['spread']:3.0f}% {r['gflops']:8.2f} {frac}"
                note = "SUSPECT: differs from alone by more than 20%" if r["suspect"] else ""
            else:
                figs = f"{'-':>10} {'':>4} {'-':>8} {'-':>6}"
                note = f"{r['status'].upper()}: {r['note']}"
            alone = f"{r['alone_s'] * 1e3:9.3f}" if r["alone_s"] else f"{'-':>9}"
            ratio = f"{r['side_over_alone']:6.2f}x" if r["side_over_alone"] else f"{'-':>7}"
            err = "-" if r["max_abs_err"] is None else f"{r['max_abs_err']:.0e}"
            lines.append(
                f"{label if i == 0 else '':<{w}} {name:<24} {figs} {alone} {ratio} {err:>8}  {note}".rstrip()
            )
        for ours, by_precision in s["speedups"].items():
            parts = [
                f"vs fastest {prec} peer ({v['peer']}/{v['recipe']}) {v['ratio']:.2f}x"
                for prec, v in by_precision.items()
            ]
            lines.append(f"{'':<{w}} {ours}: " + "; ".join(parts))
        if machine_was_busy(s.get("other_processes_cpu")):
            busy = s["other_processes_cpu"]
            lines.append(
                f"{'':<{w}} WARNING: other processes used {100 * busy['frac']:.0f}% of the cores "
                "during this workload"
            )
    lines.append("")
    lines.append(
        "* the contender's figure (its fastest correct recipe); x alone = side-by-side median / "
        "median of the same recipe timed alone in a fresh process"
        + (
            f"; %sgemm = share of numpy's {sgemm['n']}^3 sgemm ({sgemm['gflops']:.1f} GFLOP/s)"
            if sgemm
            else ""
        )
    )
    suspects = [
        f"{s['label']} {r['contender']}/{r['recipe']} ({r['side_over_alone']:.2f}x)"
        for s in summaries
        for r in s["entries"]
        if r["suspect"]
    ]
    if suspects:
        lines.append(
            "SUSPECT figures (side by side differs from alone by more than 20%): " + ", ".join(suspects)
        )
    return "\n".join(lines)


_COLUMN_TITLES = {
    "fastlstm": "fastlstm",
    "torch": "PyTorch",
    "torch-bf16": "PyTorch bf16",
    "onnxruntime": "ONNX Runtime",
    "tensorflow": "TensorFlow 1",
    "numpy-ref": "numpy (GEMM per step)",
}


def format_markdown(summaries: list[dict], sgemm: dict | None) -> str:
    """The README table: GFLOP/s of each contender's best recipe (share of sgemm), and the speedups."""
    names: list[str] = []
    for s in summaries:
        names += [n for n in s["contenders"] if n not in names]
    several_recipes = {
        n
        for s in summaries
        for n in names
        if len({r["recipe"] for r in s["entries"] if r["contender"] == n}) > 1
    }
    ratio_cols = sorted(
        {(o, prec) for s in summaries for o, v in s["speedups"].items() for prec in v},
        key=lambda op: (op[0], _precision_order(op[1])),
    )
    head = ["workload (B, T, D, H)", "lengths"] + [_COLUMN_TITLES.get(n, n) for n in names]
    head += [f"{o} vs fastest {prec} peer" for o, prec in ratio_cols]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for s in summaries:
        cells = [f"{s['workload']} ({s['batch']}, {s['max_time']}, {s['input_size']}, {s['num_units']})"]
        cells.append(s["lengths"])
        for n in names:
            f = s["contenders"].get(n)
            if not f:
                cells.append("-")
                continue
            text = f"{f['gflops']:.0f}"
            if f["sgemm_frac"]:
                text += f" ({100 * f['sgemm_frac']:.0f}%)"
            if n in several_recipes:
                text += f" {f['recipe']}"
            cells.append(text + (" †" if f["suspect"] else ""))
        for o, prec in ratio_cols:
            v = s["speedups"].get(o, {}).get(prec)
            cells.append(f"{v['ratio']:.2f}x" if v else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
