"""Input files of ``fastlstm score``, read in batches with memory bounded by the batch size.

Three formats, told apart by their first bytes (not by the file name):

padded ``.npy``
    ``[N, max_time, depth]``, any real dtype, plus optional lengths (a 1-D
    integer ``.npy`` of ``N`` entries; all ``max_time`` when absent). Rows are
    read with positioned reads, not a memory map: pages of a map stay in the
    process's resident set, so scanning a large file through one would make
    the peak RSS the size of the file. A Fortran-order file (which has no
    contiguous rows) is read through ``np.load(mmap_mode="r")``.
ragged ``.npz``
    ``values`` ``[total_steps, depth]`` (the valid steps of every sequence,
    one after the other, no padding) and ``lengths`` ``[N]`` with
    ``sum(lengths) == total_steps``. The ``values`` member is streamed from the
    archive (stored or deflated alike); only ``lengths`` is loaded whole.
    Other members are ignored, so an output of ``fastlstm score`` is a valid input.
Parquet (needs ``pyarrow``)
    One row per sequence; a list-of-lists column (``list<list<number>>``,
    outer list over time, inner list of length ``depth``), read by record
    batches. A first pass reads the lengths and checks every row.

Token ids, for a model that starts with an :class:`~fastlstm.Embedding`, come
in the same three formats with one axis less: a 2-D integer ``.npy`` ``[N,
max_time]`` (and ``--lengths``), a ragged ``.npz`` whose ``values`` are 1-D
integers ``[total_steps]``, or a Parquet ``list<integer>`` column. The model
checks every id against its vocabulary.

Every source yields ``(inputs, lengths)``: inputs ``[b, t, depth]`` C-contiguous
in the computation dtype (token ids: ``[b, t]`` in the file's integer dtype, 0
past each length), cut to the longest row of the batch (``t``), and int64
lengths.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .errors import ScoreError

__all__ = ["Source", "open_source"]

if TYPE_CHECKING:
    from typing_extensions import Self

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_PARQUET_MAGIC = b"PAR1"
# What reading a damaged .npy or zip member can raise.
_READ_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
)


class Source:
    """Base of the readers: the sequences' count, lengths and depth, and their batches.

    Attributes
    ----------
    path : str
        The input file.
    lengths : ndarray of int64, shape ``[N]``
        Valid steps of every sequence.
    max_time : int
        Time extent of padded outputs: the file's ``max_time`` for a padded
        ``.npy``, else the longest sequence.
    depth : int or None
        Input depth; None for token ids, and for a Parquet file of vectors in
        which no sequence has a step (set it to the model's depth before asking
        for batches).
    tokens : bool
        Whether the file holds token ids rather than vectors.
    """

    path: str
    lengths: np.ndarray
    max_time: int
    depth: int | None
    tokens: bool = False

    def batches(self, batch_size: int, dtype: np.dtype) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Consecutive batches of up to ``batch_size`` sequences, in file order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the open file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str, lengths_path: str | None = None, column: str | None = None) -> Source:
    """Open an input file, checking its structure (not yet its values) before anything runs.

    Parameters
    ----------
    path : str
        A padded ``.npy``, a ragged ``.npz`` or a Parquet file.
    lengths_path : str, optional
        Lengths of a padded ``.npy`` input (refused for the other formats,
        which hold their own).
    column : str, optional
        Parquet column to read; by default the only list-of-lists column.

    Raises
    ------
    ScoreError
        Naming the file at fault and the problem.
    """
    head = _read_head(path)
    if head.startswith(_NPY_MAGIC):
        return PaddedNpySource(path, lengths_path)
    if head.startswith(_ZIP_MAGICS) or head.startswith(_PARQUET_MAGIC):
        is_npz = head.startswith(_ZIP_MAGICS)
        if lengths_path is not None:
            what = "a ragged .npz" if is_npz else "a Parquet file"
            raise ScoreError(
                lengths_path, f"--lengths is only for a padded .npy input; {what} holds the lengths itself"
            )
        return RaggedNpzSource(path) if is_npz else ParquetSource(path, column)
    raise ScoreError(path, "not a .npy, .npz or Parquet file (unrecognised first bytes)")


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(8)
    except OSError as exc:
        raise ScoreError(path, exc.strerror or str(exc)) from exc


# -- shared checks --------------------------------------------------------------------------
def _npy_header(stream: IO[bytes], path: str, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an ``.npy`` header; ``stream`` is left at the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except _READ_ERRORS as exc:
        raise ScoreError(path, f"{what} is not a readable .npy array: {exc}") from exc
    if dtype.hasobject or dtype.kind not in "iuf":
        raise ScoreError(path, f"{what} has dtype {dtype}; expected floats or integers (e.g. float32)")
    return shape, fortran_order, dtype


def _check_lengths(raw: np.ndarray, count: int | None, max_time: int | None, path: str) -> np.ndarray:
    """Lengths as int64 after the library's rules (1-D, integral, within ``[0, max_time]``)."""
    if raw.dtype.kind not in "iuf":
        raise ScoreError(path, f"lengths have dtype {raw.dtype}; expected integers")
    if raw.ndim != 1:
        raise ScoreError(path, f"lengths must be 1-D, got shape {raw.shape}")
    if count is not None and raw.shape[0] != count:
        raise ScoreError(path, f"holds {raw.shape[0]} lengths but the input has {count} sequences")
    if raw.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw)))
        if bad.size:
            raise ScoreError(path, f"lengths[{bad[0]}] = {raw[bad[0]]} is not an integer")
    if raw.size:
        low = int(np.argmin(raw))
        if raw[low] < 0:
            raise ScoreError(path, f"lengths[{low}] = {raw[low]} is negative")
        high = int(np.argmax(raw))
        if max_time is not None and raw[high] > max_time:
            raise ScoreError(path, f"lengths[{high}] = {raw[high]} exceeds max_time = {max_time}")
    return raw.astype(np.int64)


def _pad(values: np.ndarray, lengths: np.ndarray, depth: int | None, dtype: np.dtype) -> np.ndarray:
    """Packed rows ``[sum(lengths), depth]`` to a zero-padded ``[b, max(lengths), depth]``
    (token ids, ``depth`` None: ``[sum(lengths)]`` to ``[b, max(lengths)]``)."""
    batch = lengths.shape[0]
    shape = (batch, int(lengths.max(initial=0))) + (() if depth is None else (depth,))
    padded = np.zeros(shape, dtype)
    rows = np.repeat(np.arange(batch), lengths)
    starts = np.cumsum(lengths) - lengths
    steps = np.arange(values.shape[0]) - np.repeat(starts, lengths)
    padded[rows, steps] = values
    return padded


def _read_exact(stream: IO[bytes], nbytes: int, path: str) -> bytearray:
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    done = 0
    while done < nbytes:
        got = stream.readinto(view[done:])
        if not got:
            raise ScoreError(path, f"truncated: expected {nbytes - done} more bytes of data")
        done += got
    return buffer


# -- padded .npy ----------------------------------------------------------------------------
class PaddedNpySource(Source):
    """A 3-D ``[N, max_time, depth]`` ``.npy`` and optional lengths."""

    def __init__(self, path: str, lengths_path: str | None) -> None:
        self.path = path
        self._stream = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            shape, fortran_order, self._file_dtype = _npy_header(self._stream, path, "the input")
            self.tokens = len(shape) == 2 and self._file_dtype.kind in "iu"
            if self.tokens:
                (count, self.max_time), self.depth = shape, None
            elif len(shape) == 3:
                count, self.max_time, self.depth = shape
            else:
                raise ScoreError(
                    path,
                    f"expected a 3-D [batch, max_time, depth] array (or 2-D integer token ids "
                    f"[batch, max_time]), got shape {shape} of {self._file_dtype}",
                )
            self._row_bytes = self.max_time * (self.depth or 1) * self._file_dtype.itemsize
            data_start = self._stream.tell()
            available = os.fstat(self._stream.fileno()).st_size - data_start
            if available < count * self._row_bytes:
                raise ScoreError(
                    path,
                    f"truncated: the header announces shape {shape} ({count * self._row_bytes} bytes "
                    f"of data) but the file holds {available}",
                )
            self._mapped = np.load(path, mmap_mode="r", allow_pickle=False) if fortran_order else None
            self.lengths = self._load_lengths(lengths_path, count)
        except BaseException:
            self._stream.close()
            raise

    def _load_lengths(self, lengths_path: str | None, count: int) -> np.ndarray:
        if lengths_path is None:
            return np.full(count, self.max_time, dtype=np.int64)
        try:
            raw = np.load(lengths_path, allow_pickle=False)
        except OSError as exc:
            raise ScoreError(lengths_path, exc.strerror or str(exc)) from exc
        except _READ_ERRORS as exc:
            raise ScoreError(lengths_path, f"not a readable .npy array: {exc}") from exc
        if not isinstance(raw, np.ndarray):
            raise ScoreError(lengths_path, "is an .npz archive; pass the lengths as a 1-D .npy")
        return _check_lengths(raw, count, self.max_time, lengths_path)

    def batches(self, batch_size: int, dtype: np.dtype) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        shape = (self.max_time,) if self.tokens else (self.max_time, self.depth)
        for start in range(0, self.lengths.shape[0], batch_size):
            lengths = self.lengths[start : start + batch_size]
            if self._mapped is None:
                buffer = _read_exact(self._stream, lengths.shape[0] * self._row_bytes, self.path)
                rows = np.frombuffer(buffer, self._file_dtype).reshape((lengths.shape[0], *shape))
            else:
                rows = self._mapped[start : start + batch_size]
            steps = int(lengths.max(initial=0))
            if self.tokens:  # the ids past each length are padding: zeros, whatever the file holds
                ids = np.array(rows[:, :steps], dtype=self._file_dtype.newbyteorder("="), order="C")
                ids[np.arange(steps) >= lengths[:, None]] = 0
                yield ids, lengths
            else:
                yield np.ascontiguousarray(rows[:, :steps], dtype=dtype), lengths

    def close(self) -> None:
        self._stream.close()


# -- ragged .npz ----------------------------------------------------------------------------
class RaggedNpzSource(Source):
    """An ``.npz`` with packed ``values`` ``[total_steps, depth]`` and ``lengths`` ``[N]``."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._archive = zipfile.ZipFile(path)
        except _READ_ERRORS as exc:
            raise ScoreError(path, f"not a readable .npz archive: {exc}") from exc
        try:
            self._open_members()
        except BaseException:
            self._archive.close()
            raise

    def _member(self, name: str) -> zipfile.ZipInfo:
        try:
            return self._archive.getinfo(f"{name}.npy")
        except KeyError:
            raise ScoreError(
                self.path,
                f"no {name!r} array; a ragged .npz holds values [total_steps, depth] and lengths [N]",
            ) from None

    def _open_members(self) -> None:
        path = self.path
        lengths_info, values_info = self._member("lengths"), self._member("values")
        try:
            with self._archive.open(lengths_info) as stream:
                raw = np.lib.format.read_array(stream, allow_pickle=False)
        except _READ_ERRORS as exc:
            raise ScoreError(path, f"'lengths' is not a readable .npy array: {exc}") from exc
        self.lengths = _check_lengths(raw, None, None, path)
        try:
            self._stream = self._archive.open(values_info)
        except _READ_ERRORS as exc:
            raise ScoreError(path, f"cannot read the 'values' member: {exc}") from exc
        shape, fortran_order, self._file_dtype = _npy_header(self._stream, path, "'values'")
        self.tokens = len(shape) == 1 and self._file_dtype.kind in "iu"
        if not self.tokens and len(shape) != 2:
            raise ScoreError(
                path,
                f"'values' must be 2-D [total_steps, depth] (or 1-D integer token ids [total_steps]), "
                f"got shape {shape} of {self._file_dtype}",
            )
        if fortran_order and not self.tokens and shape[1] > 1:
            raise ScoreError(
                path, "'values' is stored in Fortran order; save np.ascontiguousarray(values) instead"
            )
        total, self.depth = (shape[0], None) if self.tokens else shape
        expected = int(self.lengths.sum())
        if total != expected:
            raise ScoreError(path, f"'values' has {total} steps but the lengths add up to {expected}")
        nbytes = total * (self.depth or 1) * self._file_dtype.itemsize
        available = values_info.file_size - self._stream.tell()
        if available < nbytes:
            raise ScoreError(
                path,
                f"truncated: 'values' announces shape {shape} ({nbytes} bytes of data) "
                f"but the member holds {available}",
            )
        self.max_time = int(self.lengths.max(initial=0))

    def batches(self, batch_size: int, dtype: np.dtype) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        step_bytes = (self.depth or 1) * self._file_dtype.itemsize
        for start in range(0, self.lengths.shape[0], batch_size):
            lengths = self.lengths[start : start + batch_size]
            steps = int(lengths.sum())
            try:
                buffer = _read_exact(self._stream, steps * step_bytes, self.path)
            except _READ_ERRORS as exc:
                raise ScoreError(self.path, f"corrupt 'values' member: {exc}") from exc
            values = np.frombuffer(buffer, self._file_dtype)
            if self.tokens:
                yield _pad(values, lengths, None, self._file_dtype.newbyteorder("=")), lengths
            else:
                yield _pad(values.reshape(steps, self.depth), lengths, self.depth, dtype), lengths

    def close(self) -> None:
        if hasattr(self, "_stream"):
            self._stream.close()
        self._archive.close()


# -- Parquet --------------------------------------------------------------------------------
class ParquetSource(Source):
    """One sequence per row in a list-of-lists column."""

    def __init__(self, path: str, column: str | None) -> None:
        self.path = path
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ScoreError(path, "reading Parquet needs pyarrow: pip install 'fastlstm[parquet]'") from None
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises its own ArrowException subclasses
            raise ScoreError(path, f"not a readable Parquet file: {exc}") from exc
        try:
            self._column = self._pick_column(column)
            self._scan()
        except BaseException:
            self._file.close()
            raise

    def _pick_column(self, column: str | None) -> str:
        import pyarrow as pa

        schema = self._file.schema_arrow
        nested = [field.name for field in schema if _is_list(field.type) and _is_list(field.type.value_type)]
        if column is not None:
            if column not in schema.names:
                raise ScoreError(self.path, f"no column {column!r}; columns: {schema.names}")
            field_type = schema.field(column).type
            if _is_token_list(field_type):
                self.tokens = True
                return column
            if not (_is_list(field_type) and _is_list(field_type.value_type)):
                raise ScoreError(
                    self.path,
                    f"column {column!r} has type {field_type}, not a list of lists of numbers "
                    "(vectors) or a list of integers (token ids)",
                )
            return column
        if not nested:
            token_columns = [field.name for field in schema if _is_token_list(field.type)]
            if len(token_columns) == 1:
                self.tokens = True
                return token_columns[0]
            if token_columns:
                raise ScoreError(
                    self.path, f"several list<integer> columns {token_columns}; name the column with --column"
                )
        if len(nested) != 1:
            found = "no list-of-lists column" if not nested else f"several list-of-lists columns {nested}"
            raise ScoreError(self.path, f"{found}; name the column with --column")
        values_type = schema.field(nested[0]).type.value_type.value_type
        if not (pa.types.is_floating(values_type) or pa.types.is_integer(values_type)):
            raise ScoreError(self.path, f"column {nested[0]!r} holds {values_type}, not numbers")
        return nested[0]

    def _arrays(self, batch_size: int) -> Iterator[tuple[np.ndarray, Any]]:
        """Per record batch: its lengths and its flat values (every step of every row, in order)."""
        import pyarrow.compute as pc

        done = 0
        try:
            for record_batch in self._file.iter_batches(batch_size=batch_size, columns=[self._column]):
                column = record_batch.column(0)
                steps = column.flatten()
                lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
                if self.tokens:
                    if column.null_count or steps.null_count:
                        raise ScoreError(self.path, f"column {self._column!r} holds nulls")
                    yield lengths, steps
                    done += lengths.shape[0]
                    continue
                values = steps.flatten()
                if column.null_count or steps.null_count or values.null_count:
                    raise ScoreError(self.path, f"column {self._column!r} holds nulls")
                sizes = pc.list_value_length(steps).to_numpy(zero_copy_only=False)
                if sizes.size:
                    if self.depth is None:
                        self.depth = int(sizes[0])
                    odd = np.flatnonzero(sizes != self.depth)
                    if odd.size:
                        row = done + int(np.searchsorted(np.cumsum(lengths), odd[0], side="right"))
                        raise ScoreError(
                            self.path,
                            f"row {row} has a step of depth {sizes[odd[0]]}, earlier rows depth {self.depth}",
                        )
                yield lengths, values
                done += lengths.shape[0]
        except ScoreError:
            raise
        except Exception as exc:  # pyarrow's errors on corrupt pages
            raise ScoreError(self.path, f"corrupt Parquet data: {exc}") from exc

    def _scan(self) -> None:
        """First pass: the lengths of every row and the depth; checks nulls and depths."""
        self.depth = None
        parts = [lengths for lengths, _ in self._arrays(65536)]
        self.lengths = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        self.max_time = int(self.lengths.max(initial=0))

    def batches(self, batch_size: int, dtype: np.dtype) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for lengths, values in self._arrays(batch_size):
            if self.tokens:
                ids = values.to_numpy(zero_copy_only=False)
                yield _pad(ids, lengths, None, ids.dtype), lengths
                continue
            flat = values.to_numpy(zero_copy_only=False).reshape(-1, self.depth)
            yield _pad(flat, lengths, self.depth, dtype), lengths

    def close(self) -> None:
        self._file.close()


def _is_list(arrow_type: Any) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or (pa.types.is_fixed_size_list(arrow_type))
    )


def _is_token_list(arrow_type: Any) -> bool:
    """A list of integers: one sequence of token ids per row."""
    import pyarrow as pa

    return _is_list(arrow_type) and pa.types.is_integer(arrow_type.value_type)
