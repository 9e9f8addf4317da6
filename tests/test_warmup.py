"""``fastlstm.warmup`` / ``fastlstm warmup``: dtypes and precisions, the errors, and (in a fresh
process) that a bfloat16 warmup leaves nothing for a bfloat16 run to compile, while the default
warmup does not touch the bfloat16 kernels."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastlstm
from fastlstm.cli import main


def test_one_entry_per_dtype_and_the_bfloat16_products():
    spent = fastlstm.warmup(["float32"], precisions=["float32", "bfloat16"])
    assert list(spent) == ["float32", "bfloat16"]
    assert all(seconds >= 0 for seconds in spent.values())
    assert list(fastlstm.warmup("float32", precisions="bfloat16")) == ["bfloat16"]  # single names
    # repeats count once; float64 runs the float32 precision only
    assert list(fastlstm.warmup(["float32", np.float64, "float32"], ["bfloat16", "float32"])) == [
        "float32",
        "float64",
        "bfloat16",
    ]


@pytest.mark.parametrize(
    ("dtypes", "precisions", "message"),
    [
        (["float32"], ["float16"], r"precisions must hold 'float32' and/or 'bfloat16', got 'float16'"),
        (["float32"], [None], r"got None"),
        (["float32"], [], r"precisions is empty"),
        (["float64"], ["bfloat16"], r"'bfloat16' computes in float32, but dtypes are \['float64'\]: add"),
        (["float32", "float64"], ["bfloat16"], r"dtype float64 has nothing to prepare: .* add 'float32'"),
    ],
)
def test_bad_precisions(dtypes, precisions, message):
    with pytest.raises(ValueError, match=message):
        fastlstm.warmup(dtypes, precisions)


def test_bad_dtype():
    with pytest.raises(TypeError, match="dtype int32 is not supported"):
        fastlstm.warmup(["int32"], ["bfloat16"])


def test_command_line(capsys):
    assert main(["warmup", "--dtype", "float32", "--precision", "float32", "--precision", "bfloat16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["float32", "bfloat16"]
    assert all("kernels ready in" in line for line in lines)
    assert main(["warmup", "--precision", "bfloat16"]) == 0  # the dtypes default to float32 alone
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["bfloat16"]
    assert main(["warmup", "--dtype", "float64", "--precision", "bfloat16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastlstm warmup: error: precision 'bfloat16' computes in float32"), err
    with pytest.raises(SystemExit):
        main(["warmup", "--precision", "float16"])


# A fresh process (nothing compiled or loaded yet): after the default warmup the bfloat16 module is
# not even imported; after a bfloat16 one, bfloat16 runs of every kind add no specialisation to
# any kernel.
_FRESH = """
import sys
import numpy as np
import fastlstm
from numba.core.dispatcher import Dispatcher

fastlstm.warmup(["float32"])
assert "fastlstm._kernels_bf16" not in sys.modules, "imported by the default warmup"
spent = fastlstm.warmup(["float32"], precisions=["bfloat16"])
assert list(spent) == ["bfloat16"], spent

from fastlstm import _kernels, _kernels_bf16


def counts():
    found = {}
    for module in (_kernels, _kernels_bf16):
        for name, value in vars(module).items():
            kernels = value.items() if isinstance(value, dict) else [("", value)]
            for key, kernel in kernels:
                if isinstance(kernel, Dispatcher):
                    found[f"{module.__name__}.{name}[{key}]"] = len(kernel.signatures)
    return found


before = counts()
assert before["fastlstm._kernels_bf16.matmul_accumulate_bf16[]"] == 1, before
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (9, 7, 24)).astype(np.float32)
lengths = [7, 5, 7, 1, 0, 7, 3, 7, 2]
cells = [
    fastlstm.BasicLSTMCell(40, activation="relu"),
    fastlstm.LSTMCell(40, use_peepholes=True, cell_clip=1.0, num_proj=24, gate_clip=3.0),
    fastlstm.BasicLSTMCell(40, recurrent_activation="hard_sigmoid"),
    fastlstm.MultiRNNCell([fastlstm.BasicLSTMCell(24), fastlstm.BasicLSTMCell(8, activation="softsign")]),
]
for cell in cells:
    fastlstm.dynamic_rnn(cell, x, lengths, precision="bfloat16")
    fastlstm.dynamic_rnn(cell, x[:1], precision="bfloat16")  # one row: the units split across threads
    fastlstm.dynamic_rnn(cell, x.transpose(1, 0, 2), lengths, time_major=True, precision="bfloat16")
fastlstm.bidirectional_dynamic_rnn(cells[0], cells[1], x, lengths, precision="bfloat16")
table = rng.uniform(-1, 1, (50, 24)).astype(np.float32)
model = fastlstm.LSTMModel([fastlstm.Embedding(table, mask_zero=True), fastlstm.BasicLSTMCell(16)])
model(rng.integers(0, 50, (4, 6)), precision="bfloat16")
after = counts()
added = {name: (before.get(name), n) for name, n in after.items() if before.get(name) != n}
assert not added, f"compiled after the bfloat16 warmup: {added}"
"""


def test_bfloat16_warmup_leaves_nothing_to_compile_in_a_fresh_process():
    done = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
