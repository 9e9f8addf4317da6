"""Checked, read-only access to untrusted HDF5 files through h5py.

libhdf5 itself (2.0.0 in h5py 3.16) crashes or hangs on some damaged files while
decoding variable-length strings, and a crafted file can point at other files or
claim more data than it holds. So, before h5py sees a file,
:func:`check_global_heaps` walks its global heaps (where variable-length strings
live) as libhdf5 will and refuses damaged ones; then :class:`HDF5Reader` reads it
following hard links only, checks every string attribute's stored type and size
before decoding it, and reads only plain, uncompressed datasets stored inside the
file, after checking that the file holds the bytes their shape needs.

Nothing here parses a file format built on HDF5 (the Keras layouts are
:mod:`fastlstm.io.keras_h5`'s job): every problem is raised as the
caller's error class (a ``ValueError`` subclass) with a message that starts with
the caller's ``where`` (the file's name).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

__all__ = ["HDF5_SIGNATURE", "HDF5Reader", "check_global_heaps", "translated_errors"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
"""The first 8 bytes of an HDF5 file (superblock at offset 0)."""
_GLOBAL_HEAP_SIGNATURE = b"GCOL\x01"  # signature and version of an HDF5 global heap collection


@contextmanager
def translated_errors(where: str, error: type[ValueError]) -> Iterator[None]:
    """Turn the errors h5py raises on damaged files into ``error`` (``error`` itself passes)."""
    try:
        yield
    except error:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError, OverflowError) as exc:
        raise error(f"{where}: cannot read the HDF5 data, the file is damaged ({exc})") from exc


def check_global_heaps(stream: BinaryIO, size: int, where: str, error: type[ValueError]) -> None:
    """Walk every HDF5 global heap collection as libhdf5 will, refusing damaged ones.

    Global heaps hold variable-length strings, and libhdf5 2.0 loops forever or
    crashes on some damaged ones, so they are checked before h5py opens the file.
    Collections are found by their signature (``GCOL``, version 1); one found
    inside an already checked collection is part of its data.
    """
    stream.seek(0)
    superblock = stream.read(16)
    if len(superblock) < 16 or not superblock.startswith(HDF5_SIGNATURE):
        raise error(f"{where}: not an HDF5 file (no superblock signature at byte 0)")
    version = superblock[8]
    if version > 3:
        raise error(f"{where}: HDF5 superblock version {version} is not supported")
    length_size = superblock[14] if version < 2 else superblock[10]
    if length_size not in (2, 4, 8, 16):
        raise error(f"{where}: HDF5 'size of lengths' = {length_size} is invalid")
    header_size = object_header_size = 8 + length_size
    checked_until = 0
    for offset in _find_all(stream, size, _GLOBAL_HEAP_SIGNATURE):
        if offset < checked_until:
            continue
        stream.seek(offset + 8)
        collection_size = int.from_bytes(stream.read(length_size), "little")
        if collection_size < header_size or offset + collection_size > size:
            raise error(
                f"{where}: HDF5 global heap at byte {offset} claims {collection_size} bytes "
                f"(file: {size} bytes); the file is damaged"
            )
        stream.seek(offset)
        collection = stream.read(collection_size)
        pos = header_size
        while pos + object_header_size <= collection_size:
            index = int.from_bytes(collection[pos : pos + 2], "little")
            object_size = int.from_bytes(collection[pos + 8 : pos + object_header_size], "little")
            step = object_size if index == 0 else object_header_size + -(-object_size // 8) * 8
            if step < object_header_size or pos + step > collection_size:
                raise error(
                    f"{where}: HDF5 global heap at byte {offset}: object {index} at +{pos} "
                    f"({object_size} bytes) does not fit; the file is damaged"
                )
            pos += step
        checked_until = offset + collection_size


def _find_all(stream: BinaryIO, size: int, needle: bytes, chunk: int = 2**20) -> Iterator[int]:
    """Offsets of every occurrence of ``needle`` in the stream, read in chunks."""
    start = 0
    while start < size:
        stream.seek(start)
        data = stream.read(chunk + len(needle) - 1)
        found = data.find(needle)
        while found >= 0:
            if found < chunk:
                yield start + found
            found = data.find(needle, found + 1)
        start += chunk


@dataclass(frozen=True)
class HDF5Reader:
    """Checked access to one open HDF5 file.

    Attributes
    ----------
    h5py : module
        The imported ``h5py``.
    file_size : int
        Size of the file in bytes: nothing larger is decoded or allocated.
    error : type
        The ``ValueError`` subclass raised for every problem found.
    """

    h5py: Any
    file_size: int
    error: type[ValueError]

    def child(self, group: Any, name: str, where: str) -> Any:
        """``group[name]`` (a ``/``-separated path) following hard links only."""
        node = group
        for part in name.split("/"):
            if part in ("", ".", ".."):
                raise self.error(f"{where}: {name!r} is not a valid HDF5 path")
            if not isinstance(node, self.h5py.Group):
                raise self.error(f"{where}: {name!r}: {node.name} is not a group")
            link = node.get(part, getlink=True)
            if link is None:
                raise self.error(f"{where}: {node.name.rstrip('/')}/{part} is missing")
            if not isinstance(link, self.h5py.HardLink):
                raise self.error(
                    f"{where}: {node.name.rstrip('/')}/{part} is a {type(link).__name__}; "
                    "only plain groups and datasets are read"
                )
            node = node[part]
        return node

    def holds_datasets(self, group: Any) -> bool:
        """Whether any dataset lies below ``group`` (each object visited once, so cycles are safe)."""
        dataset = self.h5py.Dataset
        return group.visititems(lambda _, node: True if isinstance(node, dataset) else None) is not None

    def string_attribute(self, node: Any, name: str, where: str) -> list[str] | None:
        """A string or list-of-strings attribute (None if absent), checked before HDF5 decodes it.

        libhdf5 can crash when it converts a damaged variable-length value, so the
        stored type must be a string and the element count must fit in the file
        before reading. An empty attribute of any type (tf.keras writes empty float
        arrays) is ``[]``.
        """
        if name not in node.attrs:
            return None
        attribute = self.h5py.h5a.open(node.id, name.encode())
        shape = attribute.shape
        count = math.prod(shape)
        label = f"{where}: attribute {name!r} of {node.name}"
        if count == 0:
            return []
        if len(shape) > 1 or count > self.file_size or self.h5py.check_string_dtype(attribute.dtype) is None:
            raise self.error(f"{label} is not a string or a list of strings")
        texts = []
        for value in np.asarray(node.attrs[name], dtype=object).reshape(-1):
            if isinstance(value, (bytes, np.bytes_)):
                try:
                    value = bytes(value).decode("utf-8")
                except UnicodeDecodeError:
                    raise self.error(f"{label} is not UTF-8 text") from None
            if not isinstance(value, str):
                raise self.error(f"{label} holds {type(value).__name__}, not text")
            texts.append(value)
        return texts

    def one_text(self, node: Any, name: str, where: str) -> str:
        """A required single-string attribute."""
        texts = self.string_attribute(node, name, where)
        if texts is None or len(texts) != 1:
            raise self.error(f"{where}: attribute {name!r} of {node.name} is missing or not a single string")
        return texts[0]

    def read_array(self, dataset: Any, where: str) -> np.ndarray:
        """A 1-D or 2-D float dataset as a native-order array, checked before anything is allocated."""
        if not isinstance(dataset, self.h5py.Dataset):
            raise self.error(f"{where}: not a dataset")
        dtype = dataset.dtype
        if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            raise self.error(f"{where}: dtype {dtype} is not float16, float32 or float64")
        shape = dataset.shape
        if shape is None or len(shape) not in (1, 2):
            raise self.error(f"{where}: shape {shape} is not 1-D or 2-D")
        plist = dataset.id.get_create_plist()
        if plist.get_external_count() or dataset.is_virtual or plist.get_nfilters():
            raise self.error(
                f"{where}: the dataset is compressed, virtual or stored outside the file; "
                "Keras writes plain datasets"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        stored = dataset.id.get_storage_size()
        if not nbytes <= stored <= self.file_size:
            raise self.error(
                f"{where}: shape {shape} needs {nbytes} bytes but {stored} are stored "
                f"(file: {self.file_size} bytes)"
            )
        return np.ascontiguousarray(dataset[()], dtype=dtype.newbyteorder("="))
