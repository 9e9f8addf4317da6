"""Issue 6, loading untrusted files with ``fastlstm.load``: nothing is ever unpickled, and a
corrupted, truncated or crafted file gives a ``ValueError`` naming the file -- never another
exception, a crash or a hang.

test_model_native.py checks one message per kind of broken archive; here hypothesis mutates a
real saved model at three levels (raw bytes of the file; bytes of one ``.npy`` member, re-zipped
with a valid CRC so the mutation reaches numpy's header parser and fastlstm's checks; values of
the JSON config), and a corpus of crafted files (tests/fuzz_corpus/native/, made by
``python tests/test_reliability_load.py --write-corpus``) is replayed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastlstm
from cell_helpers import randomise

CORPUS = Path(__file__).parent / "fuzz_corpus" / "native"
NPY_MAGIC_LENGTH = 6  # b"\x93NUMPY"


def small_model():
    """A built model with every kind of weight: peepholes, projection, a pair, a stack."""
    return randomise(
        fastlstm.LSTMModel(
            [
                (fastlstm.LSTMCell(2, use_peepholes=True, cell_clip=2.0), fastlstm.BasicLSTMCell(1)),
                fastlstm.MultiRNNCell([fastlstm.LSTMCell(2, num_proj=1, proj_clip=1.0)]),
            ]
        ),
        2,
        seed=0,
    )


def saved_bytes():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        fastlstm.save(path, small_model())
        return Path(path).read_bytes()


BASE = saved_bytes()


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(parts: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, payload in parts.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def assert_loads_or_value_error(path):
    """The only acceptable outcomes: a working model/cell, or a ValueError naming the file."""
    try:
        loaded = fastlstm.load(path)
    except ValueError as exc:
        assert str(exc).startswith(f"{path} is not a"), exc
        return "refused"
    x = np.zeros((2, 3, 2), np.float32)
    if isinstance(loaded, fastlstm.LSTMModel):
        outputs, _ = loaded(x)
    else:
        outputs, _ = fastlstm.dynamic_rnn(loaded, np.zeros((2, 3, loaded.input_size)))
    assert outputs.shape[:2] == (2, 3)
    return "loaded"


# -- nothing is ever unpickled ---------------------------------------------------------------
class Payload:
    """Unpickling this creates a directory: the evidence that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize(
    "member", ["fastlstm_config.npy", "fastlstm_format_version.npy", "layers.0.fw.kernel.npy", "extra.npy"]
)
def test_object_arrays_in_an_npz_are_refused_not_unpickled(tmp_path, member):
    marker = tmp_path / "pickle_ran"
    parts = members(BASE)
    parts[member] = npy(np.array([Payload(str(marker))], dtype=object), allow_pickle=True)
    path = tmp_path / "evil.npz"
    path.write_bytes(rezip(parts))
    with pytest.raises(
        ValueError,
        match=rf"{path} is not a valid fastlstm file: cannot read its arrays: .*allow_pickle=False",
    ):
        fastlstm.load(path)
    assert not marker.exists()


def test_pickles_outside_an_npz_are_refused_not_unpickled(tmp_path):
    marker = tmp_path / "pickle_ran"
    cases = {
        "raw.pkl": pickle.dumps(Payload(str(marker))),
        "object.npy": npy(np.array([Payload(str(marker))], dtype=object), allow_pickle=True),
        "structured_object.npy": npy(np.zeros(2, dtype=[("a", "O"), ("b", "f4")]), allow_pickle=True),
    }
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ValueError, match=rf"{path} is not a fastlstm file"):
            fastlstm.load(path)
    assert not marker.exists()


# -- hypothesis mutation fuzzing -------------------------------------------------------------
def apply(data: bytes, edits) -> bytes:
    """Apply (operation, position in [0, 1], payload) edits to ``data``."""
    out = bytearray(data)
    for op, where, payload in edits:
        pos = min(int(where * len(out)), max(len(out) - 1, 0))
        if op == "flip" and out:
            out[pos] ^= 1 << (payload[0] % 8) if payload else 1
        elif op == "set" and out:
            out[pos] = payload[0] if payload else 0
        elif op == "truncate":
            del out[pos:]
        elif op == "insert":
            out[pos:pos] = payload
        elif op == "delete":
            del out[pos : pos + 1 + len(payload)]
        elif op == "duplicate":
            out[pos:pos] = out[pos : pos + 1 + 4 * len(payload)]
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "truncate", "insert", "delete", "duplicate"]),
        st.floats(0, 1),
        st.binary(min_size=0, max_size=8)
        | st.sampled_from(
            [b"0", b"9" * 12, b"(", b")", b"'", b",", b"-1", b"{", b"}", b"O", b"<U9", b"\xff" * 4]
        ),
    ),
    min_size=1,
    max_size=4,
)
FUZZ = settings(max_examples=max(150, settings.default.max_examples), suppress_health_check=list(HealthCheck))


@FUZZ
@given(edits=EDITS)
def test_mutated_file_bytes(tmp_path_factory, edits):
    path = tmp_path_factory.mktemp("raw") / "model.npz"
    path.write_bytes(apply(BASE, edits))
    assert_loads_or_value_error(path)


MEMBER_NAMES = sorted(members(BASE))


@FUZZ
@given(
    name=st.sampled_from(MEMBER_NAMES + ["fastlstm_config.npy"] * 3 + ["fastlstm_format_version.npy"]),
    header_only=st.booleans(),
    edits=EDITS,
)
def test_mutated_npy_members_rezipped_with_valid_crc(tmp_path_factory, name, header_only, edits):
    parts = members(BASE)
    payload = parts[name]
    # Mutations start after the .npy magic string (a member without it is a separate report).
    header_end = payload.index(b"\n") + 1
    body = payload[NPY_MAGIC_LENGTH:header_end] if header_only else payload[NPY_MAGIC_LENGTH:]
    mutated = apply(body, edits)
    rest = payload[header_end:] if header_only else b""
    parts[name] = payload[:NPY_MAGIC_LENGTH] + mutated + rest
    path = tmp_path_factory.mktemp("member") / "model.npz"
    path.write_bytes(rezip(parts))
    assert_loads_or_value_error(path)


def _config():
    with np.load(io.BytesIO(BASE), allow_pickle=False) as data:
        return json.loads(str(data["fastlstm_config"]))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        [
            "",
            "tanh",
            "float64",
            "float16",
            ">f8",
            "O",
            "V8",
            "LSTMCell",
            "MultiRNNCell",
            "LSTMModel",
            "BasicLSTMCell",
            "\ud800",
            "x" * 5000,
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["class", "cells", "layers", "num_units"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, path + (index,))


def _string_classes(node):
    """Make every "class" value a string (a list or object there is a separate report)."""
    if isinstance(node, dict):
        if isinstance(node.get("class"), (list, dict)):
            node["class"] = str(node["class"])
        for value in node.values():
            _string_classes(value)
    elif isinstance(node, list):
        for value in node:
            _string_classes(value)


@FUZZ
@given(data=st.data())
def test_mutated_config_values(tmp_path_factory, data):
    config = _config()
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(config))
        path = data.draw(st.sampled_from(paths))
        value = data.draw(JSON_VALUES)
        if path and path[-1] == "class":
            value = str(value)
        if not path:
            config = value
            continue
        parent = config
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) or not isinstance(parent, (dict, list)):
            parent[path[-1]] = value
        else:
            del parent[path[-1]]
    _string_classes(config)
    with np.load(io.BytesIO(BASE), allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["fastlstm_config"] = np.array(json.dumps(config))
    path = tmp_path_factory.mktemp("config") / "model.npz"
    np.savez(path, **arrays)
    assert_loads_or_value_error(path)


# -- crafted files and the regression corpus --------------------------------------------------
def _header(descr, shape, fortran=False):
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape})
    text += " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _with_member(name, payload, base=BASE, compression=zipfile.ZIP_STORED):
    parts = members(base)
    parts[name] = payload
    return rezip(parts, compression)


def _config_file(text, compression=zipfile.ZIP_STORED):
    return _with_member("fastlstm_config.npy", npy(np.array(text)), compression=compression)


def _deep_config(depth):
    """A MultiRNNCell nested ``depth`` times, written out as text (json.dumps would recurse)."""
    return (
        '{"class": "MultiRNNCell", "cells": [' * depth
        + '{"class": "MultiRNNCell", "cells": []}'
        + "]}" * depth
    )


def _invalid_code_point():
    text = npy(np.array(json.dumps(_config())))
    header_end = text.index(b"\n") + 1
    data = bytearray(text)
    data[header_end + 4 : header_end + 8] = (0x110000).to_bytes(4, "little")  # beyond Unicode
    return _with_member("fastlstm_config.npy", bytes(data))


def corpus_cases():
    """name -> (file bytes, regex the ValueError must match, or None: it must load)."""
    kernel = members(BASE)["layers.0.fw.kernel.npy"]
    kernel_header_end = kernel.index(b"\n") + 1
    raw = bytearray(BASE)
    data_offset = BASE.index(b"\x93NUMPY", BASE.index(b"layers.0.fw.kernel")) + kernel_header_end + 3
    raw[data_offset] ^= 0x10
    flipped_data = bytes(raw)
    central = BASE.rindex(b"PK\x01\x02")
    return {
        "flipped_data_byte_bad_crc": (flipped_data, r"cannot read its arrays: Bad CRC-32"),
        "truncated_in_central_directory": (BASE[: central + 20], r"not a readable .npz archive"),
        "truncated_mid_member": (BASE[: len(BASE) // 2], r"not a readable .npz archive"),
        "end_record_only": (BASE[BASE.rindex(b"PK\x05\x06") :], r"not a readable .npz archive"),
        "header_unparsable": (
            _with_member(
                "layers.0.fw.kernel.npy", kernel[:10] + b"{'descr': '<f4', 'shape': (4," + kernel[40:]
            ),
            r"cannot read its arrays",
        ),
        "header_claims_2_40_elements": (
            _with_member("layers.0.fw.kernel.npy", _header("<f4", (2**40,)) + kernel[kernel_header_end:]),
            r"cannot read its arrays",
        ),
        "header_claims_overflowing_shape": (
            _with_member(
                "layers.0.fw.kernel.npy", _header("<f4", (2**62, 2**62)) + kernel[kernel_header_end:]
            ),
            r"cannot read its arrays",
        ),
        "header_negative_shape": (
            _with_member("layers.0.fw.kernel.npy", _header("<f4", (-1, 8)) + kernel[kernel_header_end:]),
            r"cannot read its arrays",
        ),
        "header_huge_unicode_itemsize": (
            _with_member("fastlstm_config.npy", _header("<U1000000", ()) + b"{}"),
            r"cannot read its arrays",
        ),
        "header_shape_larger_than_data": (
            _with_member("layers.0.fw.kernel.npy", _header("<f4", (4, 9)) + kernel[kernel_header_end:]),
            r"cannot read its arrays: EOF",
        ),
        "kernel_as_float16": (
            _with_member("layers.0.fw.kernel.npy", npy(np.zeros((4, 8), np.float16))),
            r"array 'layers.0.fw.kernel' has dtype float16, but config.layers\[0\]\[0\] has dtype float32",
        ),
        "pickled_object_member": (
            _with_member(
                "layers.0.fw.bias.npy",
                npy(np.array([Payload("/nonexistent/pickle_ran")], dtype=object), True),
            ),
            r"allow_pickle=False",
        ),
        "config_invalid_json": (_config_file('{"class": "LSTMModel", "layers": [}'), r"is not valid JSON"),
        "config_invalid_code_point": (_invalid_code_point(), r"is not a valid fastlstm file"),
        "config_nested_500_deep": (
            _config_file(_deep_config(500), zipfile.ZIP_DEFLATED),
            r"nested too deeply",
        ),
        "config_nested_100000_deep": (
            _config_file(_deep_config(100_000), zipfile.ZIP_DEFLATED),
            r"nested too deeply",
        ),
        "config_nan_clip": (
            _config_file(json.dumps(_config()).replace('"cell_clip": 2.0', '"cell_clip": NaN')),
            r"cell_clip must be a positive finite number or None, got nan",
        ),
        "config_huge_num_units": (
            _config_file(json.dumps(_config()).replace('"num_units": 1,', f'"num_units": {2**62},')),
            r"bad weights: kernel must have shape \[input_size \+ 4611686018427387904, 1844674407370955",
        ),
        "version_huge": (
            _with_member("fastlstm_format_version.npy", npy(np.array(2**63 - 1))),
            r"format version 9223372036854775807 is not supported",
        ),
        "version_float": (
            _with_member("fastlstm_format_version.npy", npy(np.array(1.0))),
            r"'fastlstm_format_version' must be a 0-d integer array, got float64",
        ),
        "member_path_traversal": (
            _with_member("../../evil.npy", npy(np.zeros(2))),
            r"arrays not used by the config: \['../../evil'\]",
        ),
        "deflate_compressed_is_still_valid": (rezip(members(BASE), zipfile.ZIP_DEFLATED), None),
    }


def write_corpus():
    CORPUS.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (payload, message) in sorted(corpus_cases().items()):
        (CORPUS / f"{name}.npz").write_bytes(payload)
        manifest[name] = {
            "file": f"{name}.npz",
            "expect": "loads" if message is None else "ValueError",
            "message": message,
        }
    (CORPUS / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _manifest():
    """The corpus's manifest ({} when missing, which test_corpus_is_what_the_generator_makes reports)."""
    path = CORPUS / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_corpus_replays(tmp_path, name):
    case = _manifest()[name]
    path = tmp_path / case["file"]
    path.write_bytes((CORPUS / case["file"]).read_bytes())
    if case["expect"] == "loads":
        assert assert_loads_or_value_error(path) == "loaded"
        return
    with pytest.raises(ValueError, match=case["message"]) as info:
        fastlstm.load(path)
    assert str(info.value).startswith(f"{path} is not a")


def test_corpus_is_what_the_generator_makes():
    """Every generated case is in the corpus (the bytes differ only in zip timestamps)."""
    assert sorted(_manifest()) == sorted(corpus_cases())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-corpus"]:
        write_corpus()
        print(f"wrote {len(_manifest())} files to {CORPUS}")
