"""fastlstm.io.read_tf_checkpoint: TensorFlow tensor bundles read without TensorFlow.

The golden checkpoints in tests/golden/ckpt were written by TensorFlow 2.21. Damaged
and crafted checkpoints are made here by a small independent bundle writer (pure
Python, its own CRC-32C), which is first shown to reproduce TensorFlow's files byte
for byte, so that each crafted file differs from a real one only where intended.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import GOLDEN
from fastlstm.io import CheckpointError, read_tf_checkpoint
from fastlstm.io._crc32c import crc32c
from mutations import apply_mutations, byte_mutations

CKPT_DIRS = sorted(p for p in (GOLDEN / "ckpt").iterdir() if p.is_dir())
CORPUS = Path(__file__).parent / "fuzz_corpus" / "ckpt"
DATA_SUFFIX = ".data-00000-of-00001"

# ------------------------------------------------------------ an independent bundle writer


def crc32c_reference(data: bytes, crc: int = 0) -> int:
    """Bit-at-a-time CRC-32C: slow and obviously right."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes, crc: int | None = None) -> int:
    crc = crc32c_reference(data) if crc is None else crc
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as protobuf encodes them: 10 bytes
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def f_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def f_bytes(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def f_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + value.to_bytes(4, "little")


def shape_proto(shape, unknown_rank=False) -> bytes:
    dims = b"".join(f_bytes(2, f_varint(1, d) if d else b"") for d in shape)
    return dims + (f_varint(3, 1) if unknown_rank else b"")


def entry_proto(dtype, shape, offset, size, crc, shard_id=0, slices=0, shape_bytes=None, extra=b"") -> bytes:
    """A BundleEntryProto, proto3-style (zero scalars omitted), as TensorFlow writes it."""
    return (
        (f_varint(1, dtype) if dtype else b"")
        + f_bytes(2, shape_proto(shape) if shape_bytes is None else shape_bytes)
        + (f_varint(3, shard_id) if shard_id else b"")
        + (f_varint(4, offset) if offset else b"")
        + (f_varint(5, size) if size else b"")
        + f_fixed32(6, crc)
        + b"".join(f_bytes(7, b"") for _ in range(slices))
        + extra
    )


def header_proto(
    num_shards=1, endianness=0, producer=1, min_consumer=0, bad_consumers=(), packed=False
) -> bytes:
    version = f_varint(1, producer) + (f_varint(2, min_consumer) if min_consumer else b"")
    if packed and bad_consumers:
        version += f_bytes(3, b"".join(varint(v) for v in bad_consumers))
    else:
        version += b"".join(f_varint(3, v) for v in bad_consumers)
    return (
        (f_varint(1, num_shards) if num_shards else b"")
        + (f_varint(2, endianness) if endianness else b"")
        + f_bytes(3, version)
    )


def common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by binary search over C-speed slice comparisons."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


class BlockBuilder:
    """LevelDB's BlockBuilder: prefix-compressed records, then the restart array."""

    def __init__(self, restart_interval: int):
        self.interval, self.out, self.restarts, self.previous, self.count = (
            restart_interval,
            bytearray(),
            [],
            b"",
            0,
        )

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count % self.interval == 0:
            self.restarts.append(len(self.out))
        else:
            shared = common_prefix(key, self.previous)
        self.out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        self.previous, self.count = key, self.count + 1

    def size(self) -> int:
        return len(self.out) + 4 * max(len(self.restarts), 1) + 4

    def finish(self) -> bytes:
        restarts = self.restarts or [0]
        return (
            bytes(self.out)
            + b"".join(r.to_bytes(4, "little") for r in restarts)
            + len(restarts).to_bytes(4, "little")
        )


def block_contents(records, restart_interval) -> bytes:
    builder = BlockBuilder(restart_interval)
    for key, value in records:
        builder.add(key, value)
    return builder.finish()


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    n = 0
    while n < min(len(start), len(limit)) and start[n] == limit[n]:
        n += 1
    if n < min(len(start), len(limit)) and start[n] < 0xFF and start[n] + 1 < limit[n]:
        return start[:n] + bytes([start[n] + 1])
    return start


def short_successor(key: bytes) -> bytes:
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def table_bytes(records, block_size=262144, compression=0, index_hook=None, restart_interval=16) -> bytes:
    """A LevelDB table as TensorFlow's TableBuilder writes it (TF's default block size).

    ``index_hook`` may rewrite the index, a list of (key, (offset, size)), before it is written.
    """
    out = bytearray()
    index = []

    def write_block(contents: bytes) -> tuple[int, int]:
        handle = (len(out), len(contents))
        trailer = bytes([compression])
        out.extend(contents + trailer + masked_crc(contents + trailer).to_bytes(4, "little"))
        return handle

    block, last_key = BlockBuilder(restart_interval), None
    for key, value in records:
        if block.count and block.size() >= block_size:
            index.append((shortest_separator(last_key, key), write_block(block.finish())))
            block = BlockBuilder(restart_interval)
        block.add(key, value)
        last_key = key
    if block.count:
        index.append((short_successor(last_key), write_block(block.finish())))
    meta = write_block(block_contents([], 16))
    index = index_hook(index) if index_hook else index
    index_handle = write_block(block_contents([(k, varint(o) + varint(s)) for k, (o, s) in index], 1))
    footer = varint(meta[0]) + varint(meta[1]) + varint(index_handle[0]) + varint(index_handle[1])
    return bytes(out) + footer.ljust(40, b"\0") + (0xDB4775248B80FB57).to_bytes(8, "little")


DTYPE_ENUMS = {
    "float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6, "complex64": 8,
    "int64": 9, "bool": 10, "uint16": 17, "complex128": 18, "float16": 19, "uint32": 22, "uint64": 23,
}  # fmt: skip


def string_tensor_bytes(strings, big_endian=False) -> tuple[bytes, int]:
    """TensorFlow's DT_STRING layout and its entry checksum."""
    order = "big" if big_endian else "little"
    lengths = b"".join(varint(len(s)) for s in strings)
    crc = crc32c_reference(b"".join(len(s).to_bytes(4, order) for s in strings))
    length_checksum = masked_crc(b"", crc).to_bytes(4, order)
    crc = crc32c_reference(length_checksum, crc)
    payload = b"".join(strings)
    return lengths + length_checksum + payload, masked_crc(b"", crc32c_reference(payload, crc))


def write_checkpoint(prefix: Path, records, shards, num_shards=None) -> Path:
    """Write ``prefix.index`` from (key, value) records and the given data shards."""
    num_shards = len(shards) if num_shards is None else num_shards
    prefix.with_name(prefix.name + ".index").write_bytes(table_bytes(records))
    for shard, data in enumerate(shards):
        prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}").write_bytes(data)
    return prefix


def bundle(prefix: Path, tensors: dict, big_endian=False, num_shards=1, header=None, **table_kw) -> Path:
    """A checkpoint of ``tensors`` (numpy arrays or lists of bytes), round-robin over shards."""
    shards = [bytearray() for _ in range(num_shards)]
    records = [(b"", header_proto(num_shards, int(big_endian)) if header is None else header)]
    for i, (name, value) in enumerate(sorted(tensors.items())):
        shard = shards[i % num_shards]
        if isinstance(value, list):
            data, crc = string_tensor_bytes(value, big_endian)
            dtype, shape = 7, (len(value),)
        else:
            array = np.asarray(value)
            stored = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
            data, dtype, shape = stored.tobytes(), DTYPE_ENUMS[array.dtype.name], array.shape
            crc = masked_crc(data)
        records.append(
            (name.encode(), entry_proto(dtype, shape, len(shard), len(data), crc, shard_id=i % num_shards))
        )
        shard.extend(data)
    prefix.with_name(prefix.name + ".index").write_bytes(table_bytes(records, **table_kw))
    for shard_id, data in enumerate(shards):
        prefix.with_name(f"{prefix.name}.data-{shard_id:05d}-of-{num_shards:05d}").write_bytes(bytes(data))
    return prefix


def one_tensor(tmp_path, entry: bytes, data: bytes, header=None, key=b"w", num_shards=1) -> Path:
    """A single-entry checkpoint with a hand-made entry and data file."""
    header = header_proto(num_shards) if header is None else header
    return write_checkpoint(tmp_path / "ckpt", [(b"", header), (key, entry)], [data], num_shards)


def float_entry(shape=(2, 3), offset=0, data=None, **kw):
    data = np.arange(6, dtype="<f4").tobytes() if data is None else data
    kw.setdefault("crc", masked_crc(data))
    kw.setdefault("size", len(data))
    return entry_proto(1, shape, offset, **kw), data


# ----------------------------------------------------------------------- the golden files


@pytest.mark.parametrize("folder", CKPT_DIRS, ids=lambda p: p.name)
def test_golden_checkpoints_bit_exact(folder):
    expected = np.load(folder / "expected.npz", allow_pickle=False)
    tensors = read_tf_checkpoint(folder / "model.ckpt")
    names = [str(n) for n in expected["variable_names"]]
    assert list(tensors) == names  # all of them, in bundle (sorted) order
    for i, name in enumerate(names):
        want, got = expected[f"variable_{i}"], tensors[name]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        assert got.flags.c_contiguous and got.flags.writeable


def test_golden_float64_checkpoint_is_double():
    tensors = read_tf_checkpoint(GOLDEN / "ckpt" / "basic_f64" / "model.ckpt")
    assert {a.dtype for a in tensors.values()} == {np.dtype(np.float64)}


@pytest.mark.parametrize("folder", CKPT_DIRS, ids=lambda p: p.name)
def test_test_writer_reproduces_tensorflow_files(folder, tmp_path):
    """The crafted files below come from a writer that rebuilds TF's files exactly."""
    tensors = read_tf_checkpoint(folder / "model.ckpt")
    bundle(tmp_path / "model.ckpt", tensors)
    assert (tmp_path / "model.ckpt.index").read_bytes() == (folder / "model.ckpt.index").read_bytes()
    assert (tmp_path / f"model.ckpt{DATA_SUFFIX}").read_bytes() == (
        folder / f"model.ckpt{DATA_SUFFIX}"
    ).read_bytes()


def test_index_path_is_accepted_as_prefix():
    folder = GOLDEN / "ckpt" / "basic"
    by_prefix = read_tf_checkpoint(str(folder / "model.ckpt"))
    by_index = read_tf_checkpoint(folder / "model.ckpt.index")
    assert by_prefix.keys() == by_index.keys()


@given(st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_crc32c_matches_bitwise_reference(data, start):
    assert crc32c(data, start) == crc32c_reference(data, start)


# ----------------------------------------------------------------- what the reader supports


@pytest.mark.parametrize("dtype", sorted(DTYPE_ENUMS))
@pytest.mark.parametrize("big_endian", [False, True], ids=["little", "big"])
def test_every_supported_dtype_round_trips(tmp_path, dtype, big_endian):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, (3, 4)) + (1j * rng.uniform(-1, 1, (3, 4)) if "complex" in dtype else 0)
    array = (values > 0) if dtype == "bool" else values.astype(dtype)
    tensors = read_tf_checkpoint(bundle(tmp_path / "ckpt", {"x": array}, big_endian=big_endian))
    got = tensors["x"]
    assert got.dtype == array.dtype and got.dtype.isnative and got.flags.writeable
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("big_endian", [False, True], ids=["little", "big"])
def test_string_tensors(tmp_path, big_endian):
    strings = [b"", b"a", b"hello" * 50, bytes(range(256))]
    got = read_tf_checkpoint(bundle(tmp_path / "ckpt", {"s": strings, "t": []}, big_endian=big_endian))
    assert got["s"].dtype == object and list(got["s"]) == strings
    assert got["t"].shape == (0,)


def test_scalars_empty_tensors_and_many_shards_and_blocks(tmp_path):
    tensors = {f"layer_{i:03d}/w": np.full((i % 4, 3), i, np.float32) for i in range(60)}
    tensors["global_step"] = np.array(7, np.int64)
    prefix = bundle(tmp_path / "ckpt", tensors, num_shards=3, block_size=64)
    got = read_tf_checkpoint(prefix)
    assert list(got) == sorted(tensors)
    for name, value in tensors.items():
        assert got[name].shape == value.shape
        np.testing.assert_array_equal(got[name], value)


def test_unknown_protobuf_fields_and_packed_bad_consumers_are_understood(tmp_path):
    entry, data = float_entry(extra=f_varint(15, 3) + f_bytes(16, b"future") + varint(17 << 3 | 1) + bytes(8))
    header = header_proto(bad_consumers=(0, 7), packed=True) + f_fixed32(9, 1)
    got = read_tf_checkpoint(one_tensor(tmp_path, entry, data, header=header))
    np.testing.assert_array_equal(got["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


# --------------------------------------------------------------------------- bad files


@pytest.fixture
def golden_copy(tmp_path):
    """A writable copy of the golden 'basic' checkpoint."""
    for path in (GOLDEN / "ckpt" / "basic").glob("model.ckpt.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / "model.ckpt"


def test_missing_index(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint index .*nothing\.index does not exist"):
        read_tf_checkpoint(tmp_path / "nothing")


def test_directory_instead_of_prefix(golden_copy):
    with pytest.raises(
        FileNotFoundError, match=r"is a directory; pass a checkpoint prefix.*holds model\.ckpt"
    ):
        read_tf_checkpoint(golden_copy.parent)


def test_missing_data_file(golden_copy):
    Path(f"{golden_copy}{DATA_SUFFIX}").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"data file .*model\.ckpt\.data-00000-of-00001 does not exist"
    ):
        read_tf_checkpoint(golden_copy)


def mutate(path: Path, function) -> None:
    path.write_bytes(bytes(function(bytearray(path.read_bytes()))))


def flip(pos):
    def apply(data):
        data[pos] ^= 0x40
        return data

    return apply


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d[:-1] + b"\x00", r"bad table magic number 0x00"),
        (lambda d: d[:30], r"file is 30 bytes, too short for a table footer"),
        (lambda d: d[:-60] + d[-48:], r"extends past the end of the table data"),
        (flip(20), r"data block 0: block checksum mismatch"),
        (lambda d: d[:-20], r"bad table magic"),
        (lambda d: b"", r"file is 0 bytes"),
    ],
    ids=["magic", "too-short", "truncated-middle", "block-crc", "truncated-end", "empty"],
)
def test_damaged_index(golden_copy, change, message):
    mutate(Path(f"{golden_copy}.index"), change)
    with pytest.raises(CheckpointError, match=message) as info:
        read_tf_checkpoint(golden_copy)
    assert "model.ckpt.index" in str(info.value)


def test_truncated_data_file(golden_copy):
    mutate(Path(f"{golden_copy}{DATA_SUFFIX}"), lambda d: d[:700])
    with pytest.raises(
        CheckpointError,
        match=r"data-00000-of-00001: tensor 'rnn/basic_lstm_cell/kernel' at offset 80 of 640 bytes "
        r"lies beyond the end of the file \(700 bytes\)",
    ):
        read_tf_checkpoint(golden_copy)


def test_corrupted_data_fails_its_checksum(golden_copy):
    mutate(Path(f"{golden_copy}{DATA_SUFFIX}"), flip(100))
    with pytest.raises(CheckpointError, match=r"tensor 'rnn/basic_lstm_cell/kernel': checksum mismatch"):
        read_tf_checkpoint(golden_copy)


def crafted(tmp_path, entry=None, data=None, **header_kw):
    if entry is None:
        entry, data = float_entry()
    return one_tensor(tmp_path, entry, data, header=header_proto(**header_kw) if header_kw else None)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            float_entry(offset=10**6)[0],
            r"at offset 1000000 of 24 bytes lies beyond the end of the file \(24 bytes\)",
        ),
        (float_entry(offset=2**62)[0], r"lies beyond the end of the file"),
        (
            float_entry(shape=(2**20, 2**20))[0],
            r"DT_FLOAT tensor of shape \[1048576, 1048576\] takes 4398046511104 bytes, but the entry says 24",
        ),
        (entry_proto(1, (2**20, 2**20), 0, 2**42, 0), r"lies beyond the end of the file"),
        (
            entry_proto(1, (0, 2**62), 0, 0, 0),
            r"shape \[0, 4611686018427387904\] is too large for a numpy array",
        ),
        (entry_proto(1, (2, -3), 0, 24, 0), r"shape dimension -3 is negative"),
        (
            entry_proto(1, (2, 3), 0, 24, 0, shape_bytes=shape_proto((2, 3), unknown_rank=True)),
            r"unknown rank",
        ),
        (entry_proto(1, (1,) * 40, 0, 4, 0), r"rank 40 exceeds the 32 dimensions supported"),
        (entry_proto(14, (2, 3), 0, 12, 0), r"entry 'w': dtype DT_BFLOAT16 \(14\) is not supported"),
        (entry_proto(21, (2, 3), 0, 24, 0), r"dtype DT_VARIANT \(21\) is not supported"),
        (entry_proto(99, (2, 3), 0, 24, 0), r"dtype an unknown DataType \(99\) is not supported"),
        (entry_proto(0, (2, 3), 0, 24, 0), r"dtype DT_INVALID \(0\)"),
        (entry_proto(1, (2, 3), 0, 24, 0, shard_id=3), r"shard_id = 3 is not in \[0, 1\)"),
        (entry_proto(1, (2, 3), 0, 24, 0, shard_id=-1), r"shard_id = -1 is not in \[0, 1\)"),
        (entry_proto(1, (2, 3), -8, 24, 0), r"negative offset \(-8\)"),
        (entry_proto(1, (2, 3), 0, 24, 0, slices=2), r"saved as 2 slices \(a partitioned variable\)"),
        (float_entry(crc=123)[0], r"tensor 'w': checksum mismatch \(stored 0x0000007b"),
        (entry_proto(1, (2, 3), 0, 20, 0), r"takes 24 bytes, but the entry says 20"),
        (entry_proto(7, (30,), 0, 24, 0), r"24 bytes cannot hold a DT_STRING tensor of shape \[30\]"),
        (entry_proto(1, (2, 3), 0, 24, 0) + varint(9 << 3 | 3), r"unsupported protobuf wire type 3"),
        (entry_proto(1, (2, 3), 0, 24, 0) + varint(9 << 3 | 2) + varint(50), r"runs past the message end"),
        (entry_proto(1, (2, 3), 0, 24, 0) + b"\x80", r"truncated varint"),
        (entry_proto(1, (2, 3), 0, 24, 0) + b"\x28" + b"\xff" * 11, r"varint longer than 10 bytes"),
        (f_bytes(1, b"x"), r"field 1 has wire type 2, expected 0"),
        (b"\x00\x01", r"protobuf field number 0 is invalid"),
    ],
    ids=[
        "offset-beyond",
        "offset-2**62",
        "absurd-shape",
        "absurd-shape-and-size",
        "numpy-too-big",
        "negative-dim",
        "unknown-rank",
        "rank-40",
        "bfloat16",
        "variant",
        "unknown-dtype",
        "invalid-dtype",
        "shard-3",
        "shard-negative",
        "negative-offset",
        "slices",
        "bad-crc",
        "size-mismatch",
        "string-too-small",
        "wire-type-3",
        "length-past-end",
        "truncated-varint",
        "long-varint",
        "wrong-wire-type",
        "field-0",
    ],
)
def test_crafted_entries(tmp_path, entry, message):
    prefix = one_tensor(tmp_path, entry, np.arange(6, dtype="<f4").tobytes())
    with pytest.raises(CheckpointError, match=message) as info:
        read_tf_checkpoint(prefix)
    assert "ckpt." in str(info.value)  # names the file


@pytest.mark.parametrize(
    "header, message",
    [
        (header_proto(num_shards=0), r"num_shards = 0 is not in \[1, 100000\]"),
        (header_proto(num_shards=-1), r"num_shards = -1"),
        (header_proto(num_shards=2**31), r"num_shards = 2147483648 does not fit in int32"),
        (header_proto(endianness=2), r"endianness = 2 is neither LITTLE \(0\) nor BIG \(1\)"),
        (header_proto(min_consumer=2), r"needs a newer reader \(min_consumer = 2"),
        (header_proto(bad_consumers=(1,)), r"bad_consumers = \[1\]"),
    ],
    ids=["no-shards", "negative-shards", "int32-overflow", "endianness", "min-consumer", "bad-consumer"],
)
def test_crafted_headers(tmp_path, header, message):
    entry, data = float_entry()
    with pytest.raises(CheckpointError, match=message):
        read_tf_checkpoint(one_tensor(tmp_path, entry, data, header=header))


def test_missing_header_entry(tmp_path):
    entry, data = float_entry()
    prefix = write_checkpoint(tmp_path / "ckpt", [(b"w", entry)], [data])
    with pytest.raises(CheckpointError, match=r"the header entry \(empty key\) is missing"):
        read_tf_checkpoint(prefix)


def test_data_shard_outside_file_name_range(tmp_path):
    entry, data = float_entry(shard_id=1)
    prefix = one_tensor(tmp_path, entry, data, num_shards=2)
    with pytest.raises(FileNotFoundError, match=r"ckpt\.data-00001-of-00002 does not exist"):
        read_tf_checkpoint(prefix)


def test_unsorted_and_duplicate_keys(tmp_path):
    entry, data = float_entry()
    records = [(b"", header_proto()), (b"b", entry), (b"a", entry)]
    with pytest.raises(CheckpointError, match=r"key b'a' is not after b'b'; keys must be sorted"):
        read_tf_checkpoint(write_checkpoint(tmp_path / "ckpt", records, [data]))


def test_overlapping_tensors(tmp_path):
    data = np.arange(6, dtype="<f4").tobytes()
    first = entry_proto(1, (2, 3), 0, 24, masked_crc(data))
    second = entry_proto(1, (2,), 16, 8, masked_crc(data[16:]))
    prefix = write_checkpoint(
        tmp_path / "ckpt", [(b"", header_proto()), (b"a", first), (b"b", second)], [data]
    )
    with pytest.raises(CheckpointError, match=r"tensors 'a' and 'b' overlap \(bytes 16\.\.24\)"):
        read_tf_checkpoint(prefix)


def test_partitioned_slice_key_and_bad_utf8_names(tmp_path):
    entry, data = float_entry()
    with pytest.raises(CheckpointError, match=r"holds a slice of a partitioned variable"):
        read_tf_checkpoint(one_tensor(tmp_path, entry, data, key=b"\x00\x01w"))
    with pytest.raises(CheckpointError, match=r"tensor name b'\\xff' is not valid UTF-8"):
        read_tf_checkpoint(one_tensor(tmp_path, entry, data, key=b"\xff"))


def test_bool_bytes_other_than_0_1(tmp_path):
    data = bytes([0, 1, 2])
    with pytest.raises(CheckpointError, match=r"DT_BOOL tensor holds byte value 2"):
        read_tf_checkpoint(one_tensor(tmp_path, entry_proto(10, (3,), 0, 3, masked_crc(data)), data))


def test_string_tensor_damage(tmp_path):
    payload, crc = string_tensor_bytes([b"abc", b"de"])
    bad_lengths = bytearray(payload)
    bad_lengths[0] = 4  # length 4 instead of 3: the length checksum no longer matches
    for data, message in [
        (bytes(bad_lengths), r"string length checksum mismatch"),
        (payload + b"!", r"the string lengths add up to 5 bytes, but 6 bytes follow them"),
        (payload[:-1] + b"X", r"checksum mismatch"),
    ]:
        entry = entry_proto(7, (2,), 0, len(data), crc)
        with pytest.raises(CheckpointError, match=message):
            read_tf_checkpoint(one_tensor(tmp_path, entry, data))


@pytest.mark.parametrize(
    "compression, message",
    [(1, r"index block: block is Snappy-compressed, which this reader does not support"),
     (7, r"unknown block compression type 7")],
)  # fmt: skip
def test_compressed_tables_are_refused(tmp_path, compression, message):
    entry, data = float_entry()
    records = [(b"", header_proto()), (b"w", entry)]
    (tmp_path / "ckpt.index").write_bytes(table_bytes(records, compression=compression))
    (tmp_path / f"ckpt{DATA_SUFFIX}").write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        read_tf_checkpoint(tmp_path / "ckpt")


def rebuild_index_block(table: bytes, change) -> bytes:
    """Apply ``change`` to the index block's contents and fix up its checksum."""
    footer = table[-48:]
    pos = 0
    values = []
    for _ in range(4):
        value, shift = 0, 0
        while True:
            byte = footer[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        values.append(value)
    offset, size = values[2], values[3]
    contents = change(table[offset : offset + size])
    block = contents + b"\x00" + masked_crc(contents + b"\x00").to_bytes(4, "little")
    new_footer = varint(values[0]) + varint(values[1]) + varint(offset) + varint(len(contents))
    return table[:offset] + block + new_footer.ljust(40, b"\0") + table[-8:]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c[:-4] + (10**6).to_bytes(4, "little"), r"index block: restart count 1000000 does not fit"),
        (lambda c: c[:-4] + (0).to_bytes(4, "little"), r"restart count 0 does not fit"),
        (lambda c: b"\x01", r"block of 1 bytes is too short"),
        (lambda c: c[:-8] + (3).to_bytes(4, "little") + c[-4:], r"restart point 3 is not the start of a full-key"),
        (lambda c: b"\x05" + c[1:], r"record at 0 shares 5 bytes with a 0-byte key"),
        (lambda c: c[:2] + b"\x7f" + c[3:], r"record at 0 runs past the end of the block data"),
        (lambda c: b"\x00\x01\x05s\x00\x5a\x00\x00\x00" + c[-8:], r"data block 0: 3 stray bytes after the block handle"),
        (lambda c: b"\x00\x01\x01s\x00" + c[-8:], r"data block 0: truncated varint"),
    ],
    ids=["restarts-huge", "restarts-zero", "tiny-block", "bad-restart", "bad-shared", "value-overrun",
         "stray-handle-bytes", "short-handle"],
)  # fmt: skip
def test_malformed_index_blocks(golden_copy, change, message):
    index = Path(f"{golden_copy}.index")
    index.write_bytes(rebuild_index_block(index.read_bytes(), change))
    with pytest.raises(CheckpointError, match=message):
        read_tf_checkpoint(golden_copy)


def test_prefix_compression_cannot_blow_up(tmp_path):
    """A ~100 kB index whose shared-prefix keys would decode to 70 MB is refused."""
    prefix = b"k" * 100_000
    records = [(b"", header_proto())] + [(prefix + i.to_bytes(2, "big"), b"") for i in range(700)]
    (tmp_path / "ckpt.index").write_bytes(table_bytes(records, restart_interval=10**9))
    with pytest.raises(
        CheckpointError, match=r"data block 0: the keys decode to far more bytes than the file"
    ):
        read_tf_checkpoint(tmp_path / "ckpt")


def test_overlapping_data_blocks(tmp_path):
    entry, data = float_entry()
    records = [(b"", header_proto()), (b"w", entry)]

    def point_second_block_at_first(index):
        (first_key, first), (second_key, _) = index
        return [(first_key, first), (second_key, first)]

    (tmp_path / "ckpt.index").write_bytes(
        table_bytes(records, block_size=1, index_hook=point_second_block_at_first)
    )
    (tmp_path / f"ckpt{DATA_SUFFIX}").write_bytes(data)
    with pytest.raises(CheckpointError, match=r"data block 1: block at offset 0 overlaps the previous block"):
        read_tf_checkpoint(tmp_path / "ckpt")


# ----------------------------------------------------------------------------- fuzzing


def check_result(tensors) -> None:
    """A checkpoint that reads without error gives well-formed arrays."""
    assert isinstance(tensors, dict)
    for name, array in tensors.items():
        assert isinstance(name, str) and isinstance(array, np.ndarray)
        assert array.dtype.isnative or array.dtype.itemsize == 1 or array.dtype == object
        assert array.flags.c_contiguous


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    folder=st.sampled_from(CKPT_DIRS),
    target=st.sampled_from([".index", DATA_SUFFIX]),
    mutations=byte_mutations(max_position=2000, max_delete=16),
)
def test_fuzz_byte_mutations(tmp_path, folder, target, mutations):
    """Flip, insert, delete, truncate: the only possible failure is a CheckpointError."""
    for path in folder.glob("model.ckpt.*"):
        data = path.read_bytes()
        if path.name.endswith(target):
            data = apply_mutations(data, mutations)
        (tmp_path / path.name).write_bytes(data)
    try:
        check_result(read_tf_checkpoint(tmp_path / "model.ckpt"))
    except CheckpointError as error:
        assert "model.ckpt" in str(error)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.integers(-2, 30),
    shape=st.lists(st.one_of(st.integers(-2, 8), st.integers(2**30, 2**63 - 1)), max_size=5),
    shard_id=st.integers(-1, 2),
    offset=st.one_of(st.integers(0, 40), st.integers(-(2**63), 2**63 - 1)),
    size=st.one_of(st.integers(0, 64), st.integers(-(2**63), 2**63 - 1)),
    num_shards=st.integers(0, 3),
    good_crc=st.booleans(),
)
def test_fuzz_entry_fields(tmp_path, dtype, shape, shard_id, offset, size, num_shards, good_crc):
    """Valid checksums around arbitrary entry fields: only CheckpointError or consistent arrays."""
    data = bytes(range(64))
    span = data[max(offset, 0) : max(offset, 0) + max(size, 0)]
    crc = masked_crc(span) if good_crc else 0
    entry = entry_proto(dtype, shape, offset, size, crc, shard_id=shard_id)
    records = [(b"", header_proto(num_shards)), (b"w", entry)]
    write_checkpoint(tmp_path / "ckpt", records, [data] * max(num_shards, 1), num_shards=max(num_shards, 1))
    try:
        tensors = read_tf_checkpoint(tmp_path / "ckpt")
    except CheckpointError:
        return
    check_result(tensors)
    assert tensors["w"].shape == tuple(shape)


# ------------------------------------------------------------------- regression corpus


def corpus_cases():
    return json.loads((CORPUS / "manifest.json").read_text())["cases"]


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda c: c["name"])
def test_fuzz_corpus_replays(tmp_path, case):
    """Mutated files kept from fuzzing: each still gives its documented outcome."""
    for path in CORPUS.glob(case["name"] + ".*"):
        shutil.copy(path, tmp_path / path.name.replace(case["name"], "model.ckpt", 1))
    with pytest.raises(CheckpointError, match=case["error"]):
        read_tf_checkpoint(tmp_path / "model.ckpt")
