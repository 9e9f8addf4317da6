"""Shared fixtures. Shapes stay small: numba compiles one specialisation per
dtype, shared by every test, so the suite's time is mostly that compile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("FASTLSTM_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def make_cell(units, depth, dtype=np.float32, seed=0, **kwargs):
    """A built BasicLSTMCell with random non-zero kernel and bias."""
    import fastlstm

    cell = fastlstm.BasicLSTMCell(units, dtype=dtype, **kwargs)
    gen = np.random.default_rng(seed)
    cell.set_weights([gen.uniform(-0.6, 0.6, (depth + units, 4 * units)), gen.uniform(-0.5, 0.5, 4 * units)])
    return cell
