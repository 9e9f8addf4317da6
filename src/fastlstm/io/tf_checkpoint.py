"""Read TensorFlow checkpoints (the V2 "tensor bundle" format) without TensorFlow.

A checkpoint ``prefix`` is a set of files:

* ``prefix.index``: a LevelDB-style sorted table (SSTable). The entry with the empty
  key is a ``BundleHeaderProto`` (number of data shards, byte order, format
  version); every other entry maps a tensor name to a ``BundleEntryProto`` (dtype,
  shape, shard id, byte offset and size in that shard, masked CRC-32C of the bytes).
* ``prefix.data-00000-of-0000N``: the shards, holding the tensors' raw bytes (C order).

Everything read from the files is checked before it is used: the table footer,
every block's bounds and checksum, the protobuf wire format, the key order, and
each tensor's dtype, shape, shard id, offset and size against the real file sizes.
Tensors may not overlap, so the arrays returned never add up to more bytes than
the data files hold, and each tensor's checksum is verified. A damaged or
hand-crafted checkpoint raises :class:`CheckpointError` (a ``ValueError``) naming
the file and the problem; a missing index or data file raises ``FileNotFoundError``.

Refused with a clear message: compressed tables (TensorFlow writes them
uncompressed), partitioned variables (tensors saved as slices), and the dtypes
``DT_BFLOAT16``, quantized, resource and variant.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from ._crc32c import crc32c, mask

__all__ = ["CheckpointError", "read_tf_checkpoint"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked CRC-32C
_MAX_RANK = 32  # numpy 1.x's limit (TensorFlow allows 254)
_MAX_SHARDS = 100_000  # data file names count shards with five digits
_BUNDLE_VERSION = 1  # kTensorBundleVersion, the format this reader understands
# Prefix-compressed keys may decode to at most this many bytes in total: far more than
# real tensor names need (each record costs >= ~13 bytes on disk), far less than a crafted
# index could otherwise produce (quadratic in its size).
_KEY_BUDGET_FACTOR = 64
_MIN_KEY_BUDGET = 64 * 2**20

# TensorFlow DataType enum -> numpy dtype as stored by a little-endian writer.
_NUMPY_DTYPES = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("u1"),  # DT_BOOL: one byte, 0 or 1, returned as numpy bool
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
_DT_STRING = 7
_DT_BOOL = 10
_DTYPE_NAMES = {
    0: "DT_INVALID", 1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8",
    5: "DT_INT16", 6: "DT_INT8", 7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64",
    10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16",
    15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF",
    20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32", 23: "DT_UINT64",
    24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN",
}  # fmt: skip

# Protobuf wire types.
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5

_FieldValue = int | bytes


class CheckpointError(ValueError):
    """A TensorFlow checkpoint is damaged, malformed or uses an unsupported feature.

    The message names the file and what is wrong with it.
    """


class _Header(NamedTuple):
    num_shards: int
    big_endian: bool


class _Entry(NamedTuple):
    """The fields of a ``BundleEntryProto`` that this reader uses."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int
    num_slices: int


# ------------------------------------------------------------------- public entry point


def read_tf_checkpoint(prefix: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every tensor of a TensorFlow V2 checkpoint into numpy arrays.

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix, as given to ``tf.compat.v1.train.Saver.save`` or
        ``tf.train.load_checkpoint``: ``"dir/model.ckpt"`` for the files
        ``dir/model.ckpt.index`` and ``dir/model.ckpt.data-00000-of-00001``.
        The path of the ``.index`` file itself is accepted too.

    Returns
    -------
    dict of str to numpy.ndarray
        Tensor name (e.g. ``"rnn/basic_lstm_cell/kernel"``, no ``:0``) to a new,
        writable, C-contiguous array in native byte order, in the checkpoint's
        (sorted) name order. TensorFlow dtypes map to the numpy dtype of the same
        name (``DT_HALF`` to float16, ``DT_BOOL`` to bool); ``DT_STRING`` tensors
        become object arrays of ``bytes``.

    Raises
    ------
    FileNotFoundError
        If the index file or a data shard it refers to does not exist.
    CheckpointError
        If a file is truncated, corrupted (checksum mismatch), malformed, or uses a
        feature this reader does not support; the message names the file.

    Examples
    --------
    >>> from fastlstm.io import read_tf_checkpoint
    >>> tensors = read_tf_checkpoint("tests/golden/ckpt/basic/model.ckpt")  # doctest: +SKIP
    >>> {name: a.shape for name, a in tensors.items()}  # doctest: +SKIP
    {'rnn/basic_lstm_cell/bias': (20,), 'rnn/basic_lstm_cell/kernel': (8, 20)}
    """
    prefix_str, index_path = _resolve_prefix(prefix)
    with open(index_path, "rb") as file:
        table = file.read()
    records = _table_records(table, index_path)
    if not records or records[0][0] != b"":
        raise CheckpointError(f"{index_path}: the header entry (empty key) is missing")
    header = _parse_header(records[0][1], f"{index_path}: header")
    entries = [_parse_entry(key, value, header, index_path) for key, value in records[1:]]

    shard_paths = {
        shard: f"{prefix_str}.data-{shard:05d}-of-{header.num_shards:05d}"
        for shard in sorted({entry.shard_id for _, entry in entries})
    }
    _check_layout(entries, {shard: _file_size(path) for shard, path in shard_paths.items()}, shard_paths)

    tensors: dict[str, np.ndarray] = {}
    with ExitStack() as stack:
        files = {shard: stack.enter_context(open(path, "rb")) for shard, path in shard_paths.items()}
        for name, entry in entries:
            where = f"{shard_paths[entry.shard_id]}: tensor {name!r}"
            raw = _read_exact(files[entry.shard_id], entry.offset, entry.size, where)
            tensors[name] = _decode_tensor(raw, entry, header.big_endian, where)
    return tensors


def _resolve_prefix(prefix: str | os.PathLike[str]) -> tuple[str, str]:
    """The checkpoint prefix and its index file path; accepts the ``.index`` path too."""
    text = os.fspath(prefix)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if os.path.isdir(text):
        candidates = sorted(p.name[: -len(".index")] for p in Path(text).glob("*.index"))
        hint = f"; it holds {', '.join(candidates[:5])}" if candidates else ""
        raise FileNotFoundError(
            f"{text} is a directory; pass a checkpoint prefix such as "
            f"{os.path.join(text, 'model.ckpt')} (the file name before '.index'){hint}"
        )
    if not os.path.exists(text + ".index") and text.endswith(".index") and os.path.isfile(text):
        text = text[: -len(".index")]
    index_path = text + ".index"
    if not os.path.isfile(index_path):
        raise FileNotFoundError(f"checkpoint index {index_path} does not exist")
    return text, index_path


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint data file {path} does not exist") from None


# ------------------------------------------------------------------------------ table


def _table_records(table: bytes, path: str) -> list[tuple[bytes, bytes]]:
    """All (key, value) records of an SSTable, checked to be strictly increasing."""
    if len(table) < _FOOTER_SIZE:
        raise CheckpointError(
            f"{path}: file is {len(table)} bytes, too short for a table footer ({_FOOTER_SIZE} bytes); "
            "it is truncated or not a TensorFlow checkpoint index"
        )
    footer_start = len(table) - _FOOTER_SIZE
    magic = int.from_bytes(table[-8:], "little")
    if magic != _TABLE_MAGIC:
        raise CheckpointError(
            f"{path}: bad table magic number {magic:#018x} (expected {_TABLE_MAGIC:#018x}); "
            "the file is truncated or not a TensorFlow checkpoint index"
        )
    where = f"{path}: table footer"
    _, pos = _block_handle(table, footer_start, footer_start + 40, where)  # metaindex: unused
    index_handle, _ = _block_handle(table, pos, footer_start + 40, where)
    index_block = _read_block(table, index_handle, footer_start, f"{path}: index block")

    records: list[tuple[bytes, bytes]] = []
    next_free = 0
    key_budget = [max(_MIN_KEY_BUDGET, _KEY_BUDGET_FACTOR * len(table))]
    for number, (_, value) in enumerate(_block_records(index_block, f"{path}: index block", key_budget)):
        where = f"{path}: data block {number}"
        handle, end = _block_handle(value, 0, len(value), where)
        if end != len(value):
            raise CheckpointError(f"{where}: {len(value) - end} stray bytes after the block handle")
        if handle[0] < next_free:
            raise CheckpointError(f"{where}: block at offset {handle[0]} overlaps the previous block")
        next_free = handle[0] + handle[1] + _BLOCK_TRAILER_SIZE
        for key, record in _block_records(_read_block(table, handle, footer_start, where), where, key_budget):
            if records and key <= records[-1][0]:
                raise CheckpointError(
                    f"{where}: key {key!r} is not after {records[-1][0]!r}; keys must be sorted"
                )
            records.append((key, record))
    return records


def _block_handle(buf: bytes, pos: int, end: int, where: str) -> tuple[tuple[int, int], int]:
    """Decode a BlockHandle (varint64 offset, varint64 size); return it and the new position."""
    offset, pos = _varint(buf, pos, end, 64, where)
    size, pos = _varint(buf, pos, end, 64, where)
    return (offset, size), pos


def _read_block(table: bytes, handle: tuple[int, int], limit: int, where: str) -> bytes:
    """Contents of one block, after checking its bounds, checksum and compression type."""
    offset, size = handle
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > limit:
        raise CheckpointError(
            f"{where}: block at offset {offset} of {size} bytes (+{_BLOCK_TRAILER_SIZE}-byte trailer) "
            f"extends past the end of the table data ({limit} bytes); the file is truncated or corrupted"
        )
    stored = int.from_bytes(table[end + 1 : end + _BLOCK_TRAILER_SIZE], "little")
    actual = mask(crc32c(memoryview(table)[offset : end + 1]))
    if stored != actual:
        raise CheckpointError(
            f"{where}: block checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )
    compression = table[end]
    if compression == 1:
        raise CheckpointError(
            f"{where}: block is Snappy-compressed, which this reader does not support; "
            "TensorFlow writes checkpoint indexes uncompressed"
        )
    if compression != 0:
        raise CheckpointError(f"{where}: unknown block compression type {compression}")
    return table[offset:end]


def _block_records(block: bytes, where: str, key_budget: list[int]) -> Iterator[tuple[bytes, bytes]]:
    """Decode a block's prefix-compressed records, then check its restart points.

    ``key_budget[0]`` is the number of key bytes the caller still accepts: prefix
    compression lets a small crafted block decode to huge keys, so every decoded
    key is charged to it.
    """
    n = len(block)
    if n < 4:
        raise CheckpointError(f"{where}: block of {n} bytes is too short for its restart count")
    num_restarts = int.from_bytes(block[n - 4 :], "little")
    if num_restarts == 0 or num_restarts > (n - 4) // 4:
        raise CheckpointError(f"{where}: restart count {num_restarts} does not fit a block of {n} bytes")
    data_end = n - 4 - 4 * num_restarts
    restarts = struct.unpack_from(f"<{num_restarts}I", block, data_end)

    full_key_starts = set()
    key = b""
    pos = 0
    while pos < data_end:
        start = pos
        shared, pos = _varint(block, pos, data_end, 32, where)
        unshared, pos = _varint(block, pos, data_end, 32, where)
        value_size, pos = _varint(block, pos, data_end, 32, where)
        if shared > len(key):
            raise CheckpointError(
                f"{where}: record at {start} shares {shared} bytes with a {len(key)}-byte key"
            )
        if pos + unshared + value_size > data_end:
            raise CheckpointError(f"{where}: record at {start} runs past the end of the block data")
        key_budget[0] -= shared + unshared
        if key_budget[0] < 0:
            raise CheckpointError(
                f"{where}: the keys decode to far more bytes than the file holds; the index is corrupted"
            )
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_size]
        pos += value_size
        if shared == 0:
            full_key_starts.add(start)
    if not full_key_starts:
        full_key_starts.add(0)  # an empty block: its one restart point is 0
    bad = [r for r in restarts if r not in full_key_starts]
    if bad:
        raise CheckpointError(f"{where}: restart point {bad[0]} is not the start of a full-key record")


# ---------------------------------------------------------------------------- protobuf


def _varint(buf: bytes, pos: int, end: int, bits: int, where: str) -> tuple[int, int]:
    """Decode an unsigned LEB128 varint of at most ``bits`` bits from ``buf[pos:end]``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise CheckpointError(f"{where}: truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if shift >= bits:
            raise CheckpointError(f"{where}: varint longer than {(bits + 6) // 7} bytes")
    if result >> bits:
        raise CheckpointError(f"{where}: varint {result} does not fit in {bits} bits")
    return result, pos


def _fields(buf: bytes, where: str) -> Iterator[tuple[int, int, _FieldValue]]:
    """Yield (field number, wire type, value) for each field of a protobuf message."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos, end, 32, where)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise CheckpointError(f"{where}: protobuf field number 0 is invalid")
        value: _FieldValue
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end, 64, where)
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            if pos + width > end:
                raise CheckpointError(f"{where}: truncated fixed-width field {number}")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire == _BYTES:
            length, pos = _varint(buf, pos, end, 64, where)
            if pos + length > end:
                raise CheckpointError(f"{where}: field {number} of {length} bytes runs past the message end")
            value = buf[pos : pos + length]
            pos += length
        else:
            raise CheckpointError(f"{where}: unsupported protobuf wire type {wire} (field {number})")
        yield number, wire, value


def _message(
    buf: bytes, schema: dict[int, int], where: str, packed: frozenset[int] = frozenset()
) -> dict[int, list[_FieldValue]]:
    """Fields of a message by number, checked against ``schema`` (number -> wire type).

    Unknown fields are skipped, as protobuf does. The repeated varint fields in
    ``packed`` may also come packed (one length-delimited run of varints).
    """
    fields: dict[int, list[_FieldValue]] = {}
    for number, wire, value in _fields(buf, where):
        expected = schema.get(number)
        if expected is None:
            continue
        if number in packed and wire == _BYTES:
            assert isinstance(value, bytes)
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos, len(value), 64, where)
                fields.setdefault(number, []).append(item)
            continue
        if wire != expected:
            raise CheckpointError(f"{where}: field {number} has wire type {wire}, expected {expected}")
        fields.setdefault(number, []).append(value)
    return fields


def _int(fields: dict[int, list[_FieldValue]], number: int, bits: int, where: str, what: str) -> int:
    """The last value of a signed integer (int32/int64/enum) field; 0 when absent."""
    values = fields.get(number)
    if not values:
        return 0
    raw = values[-1]
    assert isinstance(raw, int)
    value = raw - (1 << 64) if raw >> 63 else raw
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise CheckpointError(f"{where}: {what} = {value} does not fit in int{bits}")
    return value


def _submessage(fields: dict[int, list[_FieldValue]], number: int) -> bytes:
    """An embedded message field; repeated occurrences merge, as in protobuf."""
    return b"".join(v for v in fields.get(number, []) if isinstance(v, bytes))


# ----------------------------------------------------------------------- bundle entries


def _parse_header(value: bytes, where: str) -> _Header:
    """Decode and check a ``BundleHeaderProto``."""
    fields = _message(value, {1: _VARINT, 2: _VARINT, 3: _BYTES}, where)
    num_shards = _int(fields, 1, 32, where, "num_shards")
    endianness = _int(fields, 2, 32, where, "endianness")
    version = _message(
        _submessage(fields, 3),
        {1: _VARINT, 2: _VARINT, 3: _VARINT},
        f"{where} version",
        packed=frozenset({3}),
    )
    min_consumer = _int(version, 2, 32, where, "version.min_consumer")
    bad_consumers = version.get(3, [])

    if not 1 <= num_shards <= _MAX_SHARDS:
        raise CheckpointError(f"{where}: num_shards = {num_shards} is not in [1, {_MAX_SHARDS}]")
    if endianness not in (0, 1):
        raise CheckpointError(f"{where}: endianness = {endianness} is neither LITTLE (0) nor BIG (1)")
    if min_consumer > _BUNDLE_VERSION or _BUNDLE_VERSION in bad_consumers:
        raise CheckpointError(
            f"{where}: the checkpoint needs a newer reader (min_consumer = {min_consumer}, "
            f"bad_consumers = {list(bad_consumers)}; this reader implements version {_BUNDLE_VERSION})"
        )
    return _Header(num_shards, endianness == 1)


def _parse_entry(key: bytes, value: bytes, header: _Header, path: str) -> tuple[str, _Entry]:
    """Decode a tensor's ``BundleEntryProto`` and check it on its own."""
    if key.startswith(b"\x00"):
        raise CheckpointError(
            f"{path}: holds a slice of a partitioned variable (key {key!r}); partitioned "
            "variables are not supported, save the variable unpartitioned"
        )
    try:
        name = key.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: tensor name {key!r} is not valid UTF-8") from None
    where = f"{path}: entry {name!r}"
    fields = _message(
        value, {1: _VARINT, 2: _BYTES, 3: _VARINT, 4: _VARINT, 5: _VARINT, 6: _FIXED32, 7: _BYTES}, where
    )
    crc_values = fields.get(6, [0])
    assert isinstance(crc_values[-1], int)
    entry = _Entry(
        dtype=_int(fields, 1, 32, where, "dtype"),
        shape=_parse_shape(_submessage(fields, 2), where),
        shard_id=_int(fields, 3, 32, where, "shard_id"),
        offset=_int(fields, 4, 64, where, "offset"),
        size=_int(fields, 5, 64, where, "size"),
        crc32c=crc_values[-1],
        num_slices=len(fields.get(7, [])),
    )
    if entry.num_slices:
        raise CheckpointError(
            f"{where}: the tensor is saved as {entry.num_slices} slices (a partitioned variable), "
            "which is not supported; save the variable unpartitioned"
        )
    if entry.dtype != _DT_STRING and entry.dtype not in _NUMPY_DTYPES:
        dtype_name = _DTYPE_NAMES.get(entry.dtype, "an unknown DataType")
        raise CheckpointError(f"{where}: dtype {dtype_name} ({entry.dtype}) is not supported")
    if not 0 <= entry.shard_id < header.num_shards:
        raise CheckpointError(f"{where}: shard_id = {entry.shard_id} is not in [0, {header.num_shards})")
    if entry.offset < 0 or entry.size < 0:
        raise CheckpointError(f"{where}: negative offset ({entry.offset}) or size ({entry.size})")

    itemsize = 8 if entry.dtype == _DT_STRING else _NUMPY_DTYPES[entry.dtype].itemsize
    nonzero = 1
    for dim in entry.shape:
        nonzero *= max(dim, 1)
    if nonzero * itemsize > np.iinfo(np.intp).max:
        raise CheckpointError(f"{where}: shape {list(entry.shape)} is too large for a numpy array")
    count = math.prod(entry.shape)
    if entry.dtype == _DT_STRING:
        # Each string needs at least a one-byte length; then a 4-byte length checksum.
        if entry.size < count + 4:
            raise CheckpointError(
                f"{where}: {entry.size} bytes cannot hold a DT_STRING tensor of shape {list(entry.shape)}"
            )
    elif entry.size != count * itemsize:
        raise CheckpointError(
            f"{where}: a {_DTYPE_NAMES[entry.dtype]} tensor of shape {list(entry.shape)} takes "
            f"{count * itemsize} bytes, but the entry says {entry.size}"
        )
    return name, entry


def _parse_shape(value: bytes, where: str) -> tuple[int, ...]:
    """Decode a ``TensorShapeProto`` into a fully known shape."""
    fields = _message(value, {2: _BYTES, 3: _VARINT}, where)
    if _int(fields, 3, 64, where, "shape.unknown_rank"):
        raise CheckpointError(f"{where}: the stored shape has unknown rank")
    dims = fields.get(2, [])
    if len(dims) > _MAX_RANK:
        raise CheckpointError(f"{where}: rank {len(dims)} exceeds the {_MAX_RANK} dimensions supported")
    shape = []
    for dim in dims:
        assert isinstance(dim, bytes)
        size = _int(_message(dim, {1: _VARINT}, where), 1, 64, where, "shape dimension")
        if size < 0:
            raise CheckpointError(f"{where}: shape dimension {size} is negative")
        shape.append(size)
    return tuple(shape)


def _check_layout(
    entries: list[tuple[str, _Entry]], file_sizes: dict[int, int], shard_paths: dict[int, str]
) -> None:
    """Every tensor lies inside its data file, and no two tensors share bytes."""
    by_shard: dict[int, list[tuple[int, int, str]]] = {}
    for name, entry in entries:
        if entry.offset + entry.size > file_sizes[entry.shard_id]:
            raise CheckpointError(
                f"{shard_paths[entry.shard_id]}: tensor {name!r} at offset {entry.offset} of "
                f"{entry.size} bytes lies beyond the end of the file ({file_sizes[entry.shard_id]} bytes); "
                "the data file is truncated or the index is corrupted"
            )
        if entry.size:
            by_shard.setdefault(entry.shard_id, []).append((entry.offset, entry.size, name))
    for shard, spans in by_shard.items():
        spans.sort()
        for (offset, size, name), (next_offset, _, next_name) in itertools.pairwise(spans):
            if offset + size > next_offset:
                raise CheckpointError(
                    f"{shard_paths[shard]}: tensors {name!r} and {next_name!r} overlap "
                    f"(bytes {next_offset}..{offset + size})"
                )


# ------------------------------------------------------------------------------ tensors


def _read_exact(file: BinaryIO, offset: int, size: int, where: str) -> bytearray:
    """Read exactly ``size`` bytes at ``offset`` (already checked against the file size)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    file.seek(offset)
    filled = 0
    while filled < size:
        count = file.readinto(view[filled:])
        if not count:
            raise CheckpointError(
                f"{where}: the file ended after {filled} of {size} bytes (was it truncated?)"
            )
        filled += count
    return buffer


def _decode_tensor(raw: bytearray, entry: _Entry, big_endian: bool, where: str) -> np.ndarray:
    """Check a tensor's checksum and turn its bytes into a native-order numpy array."""
    if entry.dtype == _DT_STRING:
        return _decode_strings(raw, entry, big_endian, where)
    actual = mask(crc32c(raw))
    if actual != entry.crc32c:
        raise CheckpointError(
            f"{where}: checksum mismatch (stored {entry.crc32c:#010x}, computed {actual:#010x}); the data is corrupted"
        )
    dtype = _NUMPY_DTYPES[entry.dtype]
    if big_endian:
        dtype = dtype.newbyteorder(">")
    array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
    if entry.dtype == _DT_BOOL:
        if array.size and array.max() > 1:
            raise CheckpointError(f"{where}: DT_BOOL tensor holds byte value {int(array.max())}, not 0 or 1")
        return array.view(np.bool_)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _decode_strings(raw: bytearray, entry: _Entry, big_endian: bool, where: str) -> np.ndarray:
    """Decode a DT_STRING tensor: varint lengths, a length checksum, then the bytes."""
    order = "big" if big_endian else "little"
    count = math.prod(entry.shape)
    lengths = []
    checked = bytearray()  # the lengths as TensorFlow checksums them: uint32, or uint64 if large
    pos = 0
    for _ in range(count):
        length, pos = _varint(raw, pos, len(raw), 64, where)
        lengths.append(length)
        checked += length.to_bytes(4 if length <= 0xFFFFFFFF else 8, order)
    if pos + 4 > len(raw):
        raise CheckpointError(f"{where}: the string lengths run past the tensor's {len(raw)} bytes")
    crc = crc32c(checked)
    if int.from_bytes(raw[pos : pos + 4], order) != mask(crc):
        raise CheckpointError(f"{where}: string length checksum mismatch; the data is corrupted")
    crc = crc32c(raw[pos : pos + 4], crc)
    pos += 4
    if pos + sum(lengths) != len(raw):
        raise CheckpointError(
            f"{where}: the string lengths add up to {sum(lengths)} bytes, but {len(raw) - pos} bytes follow them"
        )
    actual = mask(crc32c(memoryview(raw)[pos:], crc))
    if actual != entry.crc32c:
        raise CheckpointError(
            f"{where}: checksum mismatch (stored {entry.crc32c:#010x}, computed {actual:#010x}); the data is corrupted"
        )
    strings = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        strings[i] = bytes(raw[pos : pos + length])
        pos += length
    return strings.reshape(entry.shape)
