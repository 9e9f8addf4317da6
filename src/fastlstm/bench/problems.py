"""The benchmark problems: workloads, sequence lengths, data and the FLOP count.

Shared by the side-by-side comparison and the asv suites in ``benchmarks/``
(which load this file by path when the installed fastlstm predates it), so it
imports nothing but numpy.

>>> p = make_problem(4, 10, 3, 5, "uniform")
>>> p.inputs.shape, p.kernel.shape, p.bias.shape, p.lengths.tolist()[0]
((4, 10, 3), (8, 20), (20,), 10)
>>> lstm_flops(3, 5, 10)
3200.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_SEED",
    "FORGET_BIAS",
    "LENGTH_MODES",
    "WORKLOADS",
    "Problem",
    "lstm_flops",
    "make_lengths",
    "make_problem",
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
        """``(batch, max_time, input_size, num_units)``."""
        return (self.batch, self.max_time, self.input_size, self.num_units)

    @property
    def label(self) -> str:
        """``name/lengths_mode``: unique within a comparison."""
        return f"{self.name}/{self.lengths_mode}"

    @property
    def sum_lengths(self) -> int:
        """Valid steps over the batch."""
        return int(self.lengths.sum())

    @property
    def all_full(self) -> bool:
        """Whether every row runs ``max_time`` steps."""
        return bool(np.all(self.lengths == self.max_time))

    @property
    def flops(self) -> float:
        """Matrix-product FLOPs of the valid steps (see :func:`lstm_flops`)."""
        return lstm_flops(self.input_size, self.num_units, self.sum_lengths)


def lstm_flops(input_size: int, num_units: int, sum_lengths: int) -> float:
    """Matrix-product FLOPs of an LSTM layer over ``sum_lengths`` valid steps.

    Each step multiplies ``[x, h]`` (``D + H`` values) by the ``[D + H, 4H]``
    kernel: ``2 * (D + H) * 4H`` FLOPs (a multiply and an add per weight).
    The gate math is not counted.
    """
    return 2.0 * (input_size + num_units) * 4 * num_units * float(sum_lengths)


def make_lengths(
    batch: int, max_time: int, mode: str = "uniform", seed: int = DEFAULT_SEED, low: int | None = None
) -> np.ndarray:
    """Sequence lengths, int32 ``[batch]``; row 0 is always ``max_time``.

    ``uniform``: integers uniform in ``[low, max_time]``, ``low`` defaulting to
    ``max(1, max_time // 10)``; ``full``: every row ``max_time``; ``skewed``:
    mostly short rows (``low + (max_time - low) * u**3``).
    """
    if mode not in LENGTH_MODES:
        raise ValueError(f"unknown lengths mode {mode!r}; use one of {LENGTH_MODES}")
    rng = np.random.default_rng(seed + 1)
    lo = max(1, max_time // 10) if low is None else low
    if mode == "full":
        lengths = np.full(batch, max_time, dtype=np.int64)
    elif mode == "uniform":
        lengths = rng.integers(lo, max_time + 1, size=batch)
    else:
        lengths = np.rint(lo + (max_time - lo) * rng.random(batch) ** 3).astype(np.int64)
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
    low: int | None = None,
) -> Problem:
    """Deterministic float32 inputs, a Glorot-uniform kernel (as TF's default) and a small bias.

    ``low`` is the shortest length of the ``uniform`` and ``skewed`` modes
    (see :func:`make_lengths`).
    """
    rng = np.random.default_rng(seed)
    rows, cols = input_size + num_units, 4 * num_units
    limit = math.sqrt(6.0 / (rows + cols))
    kernel = rng.uniform(-limit, limit, size=(rows, cols)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, size=cols).astype(np.float32)
    inputs = rng.standard_normal((batch, max_time, input_size)).astype(np.float32)
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
        lengths=make_lengths(batch, max_time, lengths_mode, seed, low),
    )
