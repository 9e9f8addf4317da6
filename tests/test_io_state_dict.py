"""Hostile .safetensors files: fastlstm.from_torch / fastlstm.io.read_state_dict on damaged and crafted files.

The only possible failure is a ``ValueError`` (``StateDictFileError``) whose message names the
file; no allocation beyond what the file holds; no hang. Seeds are small files written here with
``safetensors.numpy`` (deterministic bytes); the regression corpus in tests/fuzz_corpus/safetensors
is written by ``python tests/test_io_state_dict.py --write-corpus`` from :func:`corpus_cases`.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlstm
from fastlstm.io import StateDictFileError, read_state_dict
from mutations import (
    EXAMPLE_TIME_LIMIT,
    apply_mutations,
    byte_mutations,
    outcomes_under_memory_limit,
    time_limit,
)

safetensors_numpy = pytest.importorskip("safetensors.numpy")

CORPUS = Path(__file__).parent / "fuzz_corpus" / "safetensors"
HIDDEN, INPUT = 4, 3
EXAMPLES = max(300, settings.default.max_examples)


def _cell_entries(seed, prefix="lstm_cell."):
    gen = np.random.default_rng(seed)
    return {
        f"{prefix}weight_ih": gen.uniform(-0.5, 0.5, (4 * HIDDEN, INPUT)).astype(np.float32),
        f"{prefix}weight_hh": gen.uniform(-0.5, 0.5, (4 * HIDDEN, HIDDEN)).astype(np.float32),
        f"{prefix}bias_ih": gen.uniform(-0.5, 0.5, 4 * HIDDEN).astype(np.float32),
        f"{prefix}bias_hh": gen.uniform(-0.5, 0.5, 4 * HIDDEN).astype(np.float32),
    }


def _safetensors(header: dict, data: bytes) -> bytes:
    """A safetensors file from its header and data (for crafted files)."""
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def seed_whole_model() -> bytes:
    """An nn.LSTMCell among other modules' tensors (float32, an int64 counter), like silero-vad's."""
    tensors = {
        "conv.weight": np.ones((2, 3, 1), np.float32),
        "norm.num_batches_tracked": np.array(7, np.int64),
    }
    tensors.update(_cell_entries(0))
    return safetensors_numpy.save(tensors, metadata={"format": "pt"})


def seed_bfloat16_lstm() -> bytes:
    """An nn.LSTM's entries in bfloat16 (numpy has no bfloat16: written by hand)."""
    gen = np.random.default_rng(1)
    shapes = {
        "weight_ih_l0": (4 * HIDDEN, INPUT),
        "weight_hh_l0": (4 * HIDDEN, HIDDEN),
        "bias_ih_l0": (4 * HIDDEN,),
        "bias_hh_l0": (4 * HIDDEN,),
    }
    header, data = {}, b""
    for name, shape in shapes.items():
        bits = (gen.uniform(-0.5, 0.5, shape).astype(np.float32).view(np.uint32) >> 16).astype("<u2")
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [len(data), len(data) + bits.nbytes],
        }
        data += bits.tobytes()
    return _safetensors(header, data)


SEEDS = {"whole.safetensors": seed_whole_model(), "bf16.safetensors": seed_bfloat16_lstm()}
PREFIX = {"whole.safetensors": "lstm_cell.", "bf16.safetensors": None}


def check_model(model):
    (cell,) = model.layers
    assert cell.kernel.shape == (cell.input_size + cell.num_units, 4 * cell.num_units)
    assert cell.kernel.dtype == np.float32


def outcome(path, prefix):
    """'loaded', or the ValueError; anything else propagates (and fails the test)."""
    try:
        with time_limit(EXAMPLE_TIME_LIMIT):
            check_model(fastlstm.from_torch(path, prefix=prefix))
    except ValueError as error:
        assert str(path) in str(error), error
        return error
    return "loaded"


def test_seeds_load(tmp_path):
    torch = pytest.importorskip("torch")
    for name, data in SEEDS.items():
        (tmp_path / name).write_bytes(data)
        assert outcome(tmp_path / name, PREFIX[name]) == "loaded"
    # The hand-written bfloat16 file is what safetensors' own torch writer reads back.
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "bf16.safetensors")
    arrays = read_state_dict(tmp_path / "bf16.safetensors")
    for name, tensor in tensors.items():
        assert tensor.dtype == torch.bfloat16 and np.array_equal(arrays[name], tensor.float().numpy())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SEEDS)), mutations=byte_mutations(max_position=2048, max_delete=64))
def test_fuzz_byte_mutations(tmp_path, name, mutations):
    """Flip, insert, delete, truncate, overwrite: a model or a ValueError naming the file."""
    path = tmp_path / name
    path.write_bytes(apply_mutations(SEEDS[name], mutations))
    outcome(path, PREFIX[name])


HEADER_VALUES = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**31, 2**40, 2**63, -1, 0, 1.5, None, "F32", "BF16", "I64", "F8_E4M3", "BOOL", "??"]),
    st.lists(st.integers(-3, 2**40), max_size=4),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(SEEDS)),
    tensor=st.integers(0, 10),
    field=st.sampled_from(["dtype", "shape", "data_offsets"]),
    value=HEADER_VALUES,
)
def test_fuzz_header_fields(tmp_path, name, tensor, field, value):
    """Any value in one header field, the header rewritten with a valid length: a model or a ValueError."""
    data = SEEDS[name]
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    names = sorted(k for k in header if k != "__metadata__")
    header[names[tensor % len(names)]][field] = value
    path = tmp_path / name
    path.write_bytes(_safetensors(header, data[8 + length :]))
    outcome(path, PREFIX[name])


# ------------------------------------------------------------------------- allocation


def test_huge_claims_are_refused_under_a_memory_limit(tmp_path):
    """Claims of terabytes in a small file are errors, not allocations (4 GiB address-space limit)."""
    for name, (data, _) in corpus_cases().items():
        if "huge" in name or "2_40" in name:
            (tmp_path / f"{name}.safetensors").write_bytes(data)
    lines = outcomes_under_memory_limit(sorted(tmp_path.glob("*.safetensors")), "from_torch")
    assert len(lines) >= 3 and all(line.endswith(" ValueError") for line in lines), lines


# ---------------------------------------------------------------------- regression corpus


def _cell_file(**changes) -> bytes:
    """The LSTMCell entries alone, with header entries replaced by ``changes`` (name -> entry)."""
    tensors = _cell_entries(2, prefix="")
    header, data = {}, b""
    for name, array in tensors.items():
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [len(data), len(data) + array.nbytes],
        }
        data += array.astype("<f4").tobytes()
    for name, entry in changes.items():
        header[name] = {**header.get(name, {}), **entry}
    return _safetensors(header, data)


def corpus_cases() -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, regex the ValueError must match, or None when the file loads)."""
    return {
        "header_length_claims_2_40": (
            struct.pack("<Q", 2**40) + b"{}",
            r"not a valid safetensors file",
        ),
        "header_length_past_end_huge": (
            struct.pack("<Q", 2**20) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + b"\0" * 4,
            r"not a valid safetensors file",
        ),
        "shape_claims_2_40_elements": (
            _cell_file(weight_ih={"shape": [2**40, 3]}),
            r"not a valid safetensors file",
        ),
        "shape_product_overflows_huge": (
            _cell_file(weight_hh={"shape": [2**62, 2**62]}),
            r"not a valid safetensors file",
        ),
        "offsets_past_end_of_file": (
            _cell_file(bias_ih={"data_offsets": [0, 10**6]}),
            r"not a valid safetensors file",
        ),
        "offsets_overlap": (_cell_file(bias_hh={"data_offsets": [0, 64]}), r"not a valid safetensors file"),
        "unknown_dtype": (_cell_file(bias_hh={"dtype": "F128"}), r"not a valid safetensors file"),
        "float8_weight": (
            _cell_file(bias_hh={"dtype": "F8_E4M3", "shape": [64]}),
            r"tensor 'bias_hh' has dtype F8_E4M3, which numpy cannot hold",
        ),
        "integer_weight": (
            _cell_file(bias_hh={"dtype": "I32"}),
            r"bias_hh has dtype int32; LSTM weights must be floating point",
        ),
        "header_not_json": (struct.pack("<Q", 9) + b"{not json", r"not a valid safetensors file"),
        "gru_cell_weights": (
            _safetensors(
                {
                    "weight_ih": {"dtype": "F32", "shape": [12, 3], "data_offsets": [0, 144]},
                    "weight_hh": {"dtype": "F32", "shape": [12, 4], "data_offsets": [144, 336]},
                },
                b"\0" * 336,
            ),
            r"weight_hh has shape \(12, 4\): 3 gate blocks, a GRU's",
        ),
        "nan_weights_load": (
            _safetensors(
                {
                    "weight_ih": {"dtype": "F32", "shape": [16, 3], "data_offsets": [0, 192]},
                    "weight_hh": {"dtype": "F32", "shape": [16, 4], "data_offsets": [192, 448]},
                },
                np.full(112, np.nan, "<f4").tobytes(),
            ),
            None,
        ),
    }


def write_corpus():
    CORPUS.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (payload, message) in sorted(corpus_cases().items()):
        (CORPUS / f"{name}.safetensors").write_bytes(payload)
        manifest[name] = {"file": f"{name}.safetensors", "message": message}
    (CORPUS / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _manifest():
    path = CORPUS / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_corpus_replays(tmp_path, name):
    case = _manifest()[name]
    path = tmp_path / case["file"]
    path.write_bytes((CORPUS / case["file"]).read_bytes())
    result = outcome(path, None)
    if case["message"] is None:
        assert result == "loaded"
    else:
        assert isinstance(result, StateDictFileError) and re.search(case["message"], str(result)), result


def test_corpus_is_what_the_generator_makes():
    cases = corpus_cases()
    assert sorted(_manifest()) == sorted(cases)
    for name, case in _manifest().items():
        assert (CORPUS / case["file"]).read_bytes() == cases[name][0], name
        assert case["message"] == cases[name][1], name


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-corpus"]:
        write_corpus()
        print(f"wrote {len(_manifest())} files to {CORPUS}")
