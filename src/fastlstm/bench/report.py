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

__all__ = ["PEAK_OVER_SGEMM", "format_markdown", "format_table", "summarize"]

PEAK_OVER_SGEMM = {"float32": 1.0, "bfloat16": 2.0}
"""A precision's peak as a multiple of numpy's float32 sgemm figure measured in the same run.

bfloat16 products do two multiply-adds per float32 lane where float32 ones do
one (``VDPBF16PS`` against ``VFMADD``), so the bfloat16 peak is taken as twice
the float32 ceiling.
"""


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
    contender's figure is its fastest correct recipe, with that recipe's
    ``max_abs_err``, its share of the sgemm ceiling (``sgemm_frac``) and of
    its precision's peak (``peak_frac``: ``sgemm_gflops`` times
    :data:`PEAK_OVER_SGEMM`); ``speedups[ours][precision]`` is the median of
    the fastest peer of that precision over ours (``> 1``: ours is faster).
    """
    by_key = {row["key"]: row for row in checks or []}
    rows = []
    for e in entries:
        med = e.median_s
        gflops = p.flops / med / 1e9 if med else None
        check = by_key.get((p.label, e.contender, e.recipe), {})
        peak = sgemm_gflops * PEAK_OVER_SGEMM[kinds[e.contender][0]] if sgemm_gflops else None
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
                "peak_frac": gflops / peak if gflops and peak else None,
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
            "peak_frac": row["peak_frac"],
            "max_abs_err": row["max_abs_err"],
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
        for ours, fig in s["contenders"].items():
            parts = _ours_summary(s, ours) if fig["role"] == "ours" else []
            if parts:
                lines.append(f"{'':<{w}} {ours}: " + "; ".join(parts))
        if machine_was_busy(s.get("other_processes_cpu")):
            busy = s["other_processes_cpu"]
            lines.append(
                f"{'':<{w}} WARNING: other processes used {100 * busy['frac']:.0f}% of the cores "
                "during this workload"
            )
    lines.append("")
    peaks = sorted(
        {
            f["precision"]
            for s in summaries
            for f in s["contenders"].values()
            if f["role"] == "ours" and f["precision"] != "float32"
        }
    )
    lines.append(
        "* the contender's figure (its fastest correct recipe); x alone = side-by-side median / "
        "median of the same recipe timed alone in a fresh process"
        + (
            f"; %sgemm = share of numpy's {sgemm['n']}^3 sgemm ({sgemm['gflops']:.1f} GFLOP/s)"
            + "".join(
                f"; {prec} peak = {PEAK_OVER_SGEMM[prec]:g} x sgemm "
                f"({PEAK_OVER_SGEMM[prec] * sgemm['gflops']:.1f} GFLOP/s)"
                for prec in peaks
            )
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


def _ours_summary(s: dict, ours: str) -> list[str]:
    """The text report's line for one of ours: peak share (other precisions), speedups, errors."""
    fig = s["contenders"][ours]
    prec = fig["precision"]
    parts = []
    if prec != "float32" and fig["peak_frac"]:
        parts.append(f"{100 * fig['peak_frac']:.0f}% of the {prec} peak")
    by_precision = s["speedups"].get(ours, {})
    parts += [
        f"vs fastest {p} peer ({v['peer']}/{v['recipe']}) {v['ratio']:.2f}x" for p, v in by_precision.items()
    ]
    if prec != "float32" and fig["max_abs_err"] is not None:
        err = f"max|err| {_sci(fig['max_abs_err'])}"
        peer = by_precision.get(prec)
        if peer:
            peer_err = s["contenders"][peer["peer"]]["max_abs_err"]
            err += f" ({peer['peer']}/{peer['recipe']}: {_sci(peer_err)})"
        parts.append(err)
    return parts


def _sci(x: float | None) -> str:
    """``2.9e-3``: two significant digits, the exponent without padding."""
    if x is None:
        return "-"
    if not np.isfinite(x):
        return str(x)
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


_COLUMN_TITLES = {
    "fastlstm": "fastlstm",
    "fastlstm-bf16": "fastlstm bf16",
    "torch": "PyTorch",
    "torch-bf16": "PyTorch bf16",
    "onnxruntime": "ONNX Runtime",
    "tensorflow": "TensorFlow 1",
    "numpy-ref": "numpy (GEMM per step)",
}


def _is_ours_reduced(f: dict) -> bool:
    """One of ours at a precision below float32: reported in a table of its own."""
    return f["role"] == "ours" and f["precision"] != "float32"


def _workload_cell(s: dict) -> str:
    return f"{s['workload']} ({s['batch']}, {s['max_time']}, {s['input_size']}, {s['num_units']})"


def _gflops_cell(f: dict | None, frac_key: str, with_recipe: bool) -> str:
    if not f:
        return "-"
    text = f"{f['gflops']:.0f}"
    if f[frac_key]:
        text += f" ({100 * f[frac_key]:.0f}%)"
    if with_recipe:
        text += f" {f['recipe']}"
    return text + (" †" if f["suspect"] else "")


def format_markdown(summaries: list[dict], sgemm: dict | None) -> str:
    """The README tables: GFLOP/s of each contender's best recipe, the speedups, the bfloat16 mode.

    The first table has every contender but our reduced-precision modes, with
    each figure's share of the sgemm ceiling and our float32 speedup over the
    fastest peer of each precision.  Each of our other precisions (bfloat16)
    then gets a table of its own: its GFLOP/s and that of the peers of its
    precision as shares of that precision's peak (:data:`PEAK_OVER_SGEMM`),
    its speedup over the fastest of those peers, and the max abs error of each
    against the float64 reference.  ``sgemm`` is unused (the shares are in the
    summaries); it is taken for symmetry with :func:`format_table`.
    """
    names: list[str] = []
    for s in summaries:
        names += [n for n, f in s["contenders"].items() if n not in names and not _is_ours_reduced(f)]
    several_recipes = {
        n
        for s in summaries
        for n in {r["contender"] for r in s["entries"]}
        if len({r["recipe"] for r in s["entries"] if r["contender"] == n}) > 1
    }
    ratio_cols = sorted(
        {
            (o, prec)
            for s in summaries
            for o, v in s["speedups"].items()
            for prec in v
            if not _is_ours_reduced(s["contenders"][o])
        },
        key=lambda op: (op[0], _precision_order(op[1])),
    )
    head = ["workload (B, T, D, H)", "lengths"] + [_COLUMN_TITLES.get(n, n) for n in names]
    head += [f"{o} vs fastest {prec} peer" for o, prec in ratio_cols]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for s in summaries:
        cells = [_workload_cell(s), s["lengths"]]
        cells += [_gflops_cell(s["contenders"].get(n), "sgemm_frac", n in several_recipes) for n in names]
        for o, prec in ratio_cols:
            v = s["speedups"].get(o, {}).get(prec)
            cells.append(f"{v['ratio']:.2f}x" if v else "-")
        lines.append("| " + " | ".join(cells) + " |")
    reduced = []
    for s in summaries:
        reduced += [
            (o, f["precision"])
            for o, f in s["contenders"].items()
            if _is_ours_reduced(f) and (o, f["precision"]) not in reduced
        ]
    for ours, prec in reduced:
        lines += ["", *_reduced_table(summaries, ours, prec, several_recipes)]
    return "\n".join(lines)


def _reduced_table(summaries: list[dict], ours: str, prec: str, several_recipes: set[str]) -> list[str]:
    """Lines of the Markdown table of our ``prec`` mode ``ours`` against the peers of ``prec``."""
    peers: list[str] = []
    for s in summaries:
        peers += [
            n
            for n, f in s["contenders"].items()
            if f["role"] == "peer" and f["precision"] == prec and n not in peers
        ]
    title = _COLUMN_TITLES.get(ours, ours)
    head = ["workload (B, T, D, H)", "lengths", title] + [_COLUMN_TITLES.get(n, n) for n in peers]
    head += [f"{title} vs fastest {prec} peer", f"{title} max abs error"]
    head += [f"{_COLUMN_TITLES.get(n, n)} max abs error" for n in peers]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for s in summaries:  # "-" where a contender has no correct recipe
        figures = [s["contenders"].get(n) for n in [ours, *peers]]
        cells = [_workload_cell(s), s["lengths"]]
        cells += [_gflops_cell(f, "peak_frac", n in several_recipes) for n, f in zip([ours, *peers], figures)]
        v = s["speedups"].get(ours, {}).get(prec)
        cells.append(f"{v['ratio']:.2f}x" if v else "-")
        cells += [_sci(f["max_abs_err"]) if f else "-" for f in figures]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
