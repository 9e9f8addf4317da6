"""Checking and timing: every recipe checked against float64 first, interleaved rounds, timing alone.

:func:`run_side_by_side` times every recipe of every contender in one
process, in rounds: each round runs each contender's recipes once (the
contenders in rotating order, with an idle pause before each so that the
previous library's spinning thread pool goes to sleep); a recipe's figure is
its median over the rounds.  :func:`time_alone` times one contender's recipes
in a fresh subprocess with nothing else loaded, and :func:`cross_check`
compares the two: a library that slows another down (or is slowed down) in a
shared process shows up as a side-by-side figure far from its figure alone.

>>> key = ("small/uniform", "torch", "packed")
>>> rows = cross_check({key: 1.0}, {key: 0.5})
>>> rows[0]["suspect"], rows[0]["ratio"]
(True, 2.0)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .contenders import CONTENDERS, Contender, RunFn
from .problems import Problem, make_problem

__all__ = [
    "CROSS_CHECK_LIMIT",
    "Entry",
    "cross_check",
    "max_abs_error",
    "reference_outputs",
    "run_side_by_side",
    "solo_main",
    "time_alone",
]

# A side-by-side figure more than this fraction away from the figure alone is suspect.
CROSS_CHECK_LIMIT = 0.2

Key = tuple[str, str, str]  # (problem label, contender, recipe)


@dataclass
class Entry:
    """One recipe of one contender on one problem: its check and its timed samples."""

    contender: str
    recipe: str
    status: str = "ok"  # ok | wrong | error
    note: str = ""
    max_abs_err: float | None = None
    calls_per_sample: int = 0
    times_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        """Median seconds per call over the rounds (None when not timed)."""
        return float(np.median(self.times_s)) if self.times_s else None


def reference_outputs(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """float64 evaluation of the float32 problem: ``(padded outputs, final h)``."""
    from ..reference import dynamic_rnn_reference

    out, (_, h) = dynamic_rnn_reference(
        p.kernel.astype(np.float64),
        p.bias.astype(np.float64),
        p.inputs.astype(np.float64),
        p.lengths,
        forget_bias=p.forget_bias,
    )
    return out, h


def max_abs_error(out: np.ndarray, h: np.ndarray, ref_out: np.ndarray, ref_h: np.ndarray) -> float:
    """Largest absolute difference of outputs and final h from the reference (inf if not finite).

    Raises ``ValueError`` when a shape differs from the reference's.
    """
    out, h = np.asarray(out), np.asarray(h)
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


def _check_and_calibrate(
    entry: Entry, fn: RunFn, ref: tuple[np.ndarray, np.ndarray], tol: float, min_time: float
) -> bool:
    """Check ``fn`` against the reference (its first call also compiles/warms); calls per sample."""
    try:
        entry.max_abs_err = max_abs_error(*fn(), *ref)
    except Exception as e:  # noqa: BLE001 - a failing recipe is reported, not fatal
        entry.status, entry.note = "error", f"{type(e).__name__}: {e}"
        return False
    if not entry.max_abs_err <= tol:
        entry.status, entry.note = "wrong", f"max |err| {entry.max_abs_err:.3g} > tol {tol:g}"
        return False
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < min_time:
        fn()
        n += 1
    per_call = (time.perf_counter() - t0) / n
    entry.calls_per_sample = max(1, math.ceil(min_time / max(per_call, 1e-9)))
    return True


def run_side_by_side(
    p: Problem,
    contenders: list[Contender],
    tolerances: dict[str, float],
    rounds: int,
    min_time: float,
    sleep: float,
    log: Callable[..., None] = print,
) -> list[Entry]:
    """Check then time every recipe of every contender on ``p``, in interleaved rounds.

    ``tolerances`` maps a precision to the largest absolute error accepted.
    Each round runs every contender once, in rotating order, each after
    ``sleep`` idle seconds, and within a contender each of its recipes for
    about ``min_time`` seconds (the call repeated).
    """
    ref = reference_outputs(p)
    entries: list[Entry] = []
    groups: list[list[tuple[Entry, RunFn]]] = []
    for c in contenders:
        try:
            recipes = c.recipes(p)
        except Exception as e:  # noqa: BLE001 - a failing contender is reported, not fatal
            entries.append(Entry(c.name, "-", "error", f"{type(e).__name__}: {e}"))
            log(f"  {c.name}: setup failed: {entries[-1].note}")
            continue
        group = []
        for recipe, fn in recipes.items():
            entry = Entry(c.name, recipe)
            entries.append(entry)
            if _check_and_calibrate(entry, fn, ref, tolerances[c.precision], min_time):
                group.append((entry, fn))
            else:
                log(f"  {c.name}/{recipe}: {entry.status.upper()} ({entry.note}); not timed")
        if group:
            groups.append(group)
    for r in range(rounds):
        k = r % len(groups) if groups else 0
        for group in groups[k:] + groups[:k]:
            if sleep > 0:
                time.sleep(sleep)
            for entry, fn in group:
                entry.times_s.append(_time_calls(fn, entry.calls_per_sample))
    return entries


def cross_check(
    side: dict[Key, float | None], alone: dict[Key, float | None], limit: float = CROSS_CHECK_LIMIT
) -> list[dict]:
    """Compare side-by-side seconds with seconds alone, per ``(problem, contender, recipe)``.

    Returns one row per key of ``side`` with a figure: ``ratio`` (side /
    alone, None when not timed alone) and ``suspect`` (True when the ratio is
    outside ``[1 / (1 + limit), 1 + limit]``, None when it cannot be told).
    """
    rows = []
    for key, s in side.items():
        if s is None:
            continue
        a = alone.get(key)
        ratio = s / a if a else None
        suspect = None if ratio is None else not (1 / (1 + limit) <= ratio <= 1 + limit)
        rows.append({"key": key, "side_s": s, "alone_s": a, "ratio": ratio, "suspect": suspect})
    return rows


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def time_alone(
    contender: str,
    problems: list[Problem],
    threads: int,
    tolerances: dict[str, float],
    rounds: int,
    min_time: float,
    seed: int,
    timeout: float = 1800.0,
) -> dict[Key, float | None]:
    """Time ``contender``'s recipes on ``problems`` in a fresh Python process, nothing else loaded.

    The subprocess rebuilds the problems from their shapes, lengths mode and
    ``seed`` (the same data) and returns the median seconds per call of each
    recipe that passed its check.  Raises ``RuntimeError`` if it fails.
    """
    request = {
        "contender": contender,
        "problems": [[q.name, *q.shape, q.lengths_mode] for q in problems],
        "threads": threads,
        "tolerances": tolerances,
        "rounds": rounds,
        "min_time": min_time,
        "seed": seed,
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
    code = "from fastlstm.bench.timing import solo_main; raise SystemExit(solo_main())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise RuntimeError(f"timing {contender} alone failed (exit {done.returncode}): {' | '.join(tail)}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {(label, contender, recipe): seconds for label, recipe, seconds in result["medians"]}


def solo_main() -> int:
    """Entry point of the :func:`time_alone` subprocess: a JSON request on stdin, medians on stdout."""
    from .machine import BlasLimit

    request = json.loads(sys.stdin.read())
    contender = CONTENDERS[request["contender"]]()
    contender.available()
    BlasLimit().apply(request["threads"])
    contender.set_threads(request["threads"])
    medians = []
    for name, b, t, d, h, mode in request["problems"]:
        p = make_problem(b, t, d, h, mode, request["seed"], name=name)
        entries = run_side_by_side(
            p,
            [contender],
            request["tolerances"],
            request["rounds"],
            request["min_time"],
            0.0,
            log=lambda *a: print(*a, file=sys.stderr),
        )
        medians += [[p.label, e.recipe, e.median_s] for e in entries]
    contender.close()
    print(json.dumps({"medians": medians}))
    return 0
