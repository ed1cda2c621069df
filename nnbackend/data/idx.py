"""Read and write IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped.

An IDX file is a big-endian header, then the raw data in C order::

    0x00 0x00 <type code> <ndim>      magic number, e.g. 0x00000803 for uint8 images of 3 dimensions
    ndim x uint32                     the size of each dimension
    data                              prod(sizes) items of the type's width

Compression is recognised from the content (the gzip magic bytes), not from the file name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from nnbackend.data.errors import DataError

__all__ = ["read_idx", "write_idx", "read_content", "parse_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

#: The largest IDX data (bytes) read; far above any MNIST-style set (EMNIST's biggest file is 550 MB),
#: low enough that a crafted header cannot make the reader inflate gigabytes.
MAX_IDX_BYTES = 2**30

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _TYPES.items()}
_TYPE_NAMES = ", ".join(f"0x{code:02X} {dtype.name}" for code, dtype in _TYPES.items())


def read_content(path: str | Path, name: str | Path | None = None) -> bytes:
    """The uncompressed bytes of the IDX file ``path`` (gunzipped when the content is gzip).

    A gzip stream is inflated only as far as the IDX header inside it says the file goes, plus one
    byte: a small file that would inflate to gigabytes (a "gzip bomb") is refused as trailing data
    after that, not unpacked.

    Args:
        name: what error messages call the file (e.g. the URL it came from); defaults to ``path``.

    Raises:
        DataError: the gzip stream is corrupt or truncated; the message names the file.
        FileNotFoundError: there is no such file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return _gunzip_idx(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{name or path}: not a valid gzip stream ({exc}); the file is damaged or incomplete: "
            "delete it and download or copy it again"
        ) from exc


def _gunzip_idx(raw: bytes) -> bytes:
    """Inflate (possibly concatenated) gzip members, stopping one byte past the size the IDX header at
    the start announces; :func:`parse_idx` then reports any mismatch."""
    out = bytearray()
    limit: int | None = None
    while raw:
        inflater = zlib.decompressobj(wbits=31)
        while True:
            room = 1 << 20 if limit is None else limit + 1 - len(out)
            if room <= 0:
                return bytes(out)
            piece = inflater.decompress(raw, min(room, 1 << 24))
            out += piece
            raw = inflater.unconsumed_tail
            if limit is None and len(out) >= 4:
                ndim = out[3]
                if len(out) >= 4 + 4 * ndim:
                    shape = struct.unpack(f">{ndim}I", bytes(out[4:4 + 4 * ndim]))
                    itemsize = _TYPES[out[2]].itemsize if out[2] in _TYPES else 1
                    limit = 4 + 4 * ndim + math.prod(shape) * itemsize
                    if limit > MAX_IDX_BYTES:
                        return bytes(out)  # parse_idx refuses the size the header announces
            if inflater.eof:
                raw = inflater.unused_data
                break
            if not raw and not piece:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
    return bytes(out)


def parse_idx(content: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    """Decode the uncompressed IDX ``content``; ``name`` (the file) is used only in error messages.

    Returns:
        A read-only array of the shape and dtype the header gives (multi-byte types in native byte
        order), sharing memory with ``content`` where no byte swap is needed.

    Raises:
        DataError: bad magic number, a header cut short, or a data length that differs from the one
            the header announces.
    """
    if len(content) < 4:
        raise DataError(f"{name}: truncated: {len(content)} bytes, too short for an IDX header (at least 4)")
    zero, code, ndim = struct.unpack(">HBB", content[:4])
    if zero != 0 or code not in _TYPES or ndim == 0:
        raise DataError(
            f"{name}: bad magic number 0x{content[:4].hex().upper()}: not an IDX file (an IDX file starts "
            f"with two zero bytes, a type code ({_TYPE_NAMES}) and the number of dimensions, e.g. "
            "0x00000803 for images, 0x00000801 for labels)"
        )
    if ndim > 32:
        raise DataError(f"{name}: the header announces {ndim} dimensions; IDX files here have at most 32")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(
            f"{name}: truncated: the header announces {ndim} dimension(s), {header_size} header bytes, "
            f"file has {len(content)}"
        )
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    dtype = _TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise DataError(f"{name}: the header announces {'x'.join(map(str, shape))} items, {expected:,} bytes: "
                        f"more than the {MAX_IDX_BYTES:,} an IDX file here may hold")
    actual = len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing data"
        sizes = "x".join(str(s) for s in shape)
        raise DataError(
            f"{name}: {problem}: header says {sizes} = {expected} bytes of data, file has {actual}"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
        array.flags.writeable = False
    return array


def read_idx(path: str | Path) -> np.ndarray:
    """Read the IDX file at ``path``, raw or gzipped.

    Returns:
        A read-only array; for MNIST-style files ``(N, 28, 28)`` uint8 images or ``(N,)`` uint8 labels.

    Raises:
        DataError: the file is not IDX, is truncated, has trailing data or is a corrupt gzip stream.
    """
    return parse_idx(read_content(path), path)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file at ``path``, gzipped when the name ends in ``.gz``.

    Args:
        array: uint8, int8, int16, int32, float32 or float64, with 1 to 255 dimensions. Gzipped files
            carry no time stamp, so the same array always gives the same bytes.

    Raises:
        ValueError: a dtype or shape IDX cannot hold.
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot hold {array.dtype}; cast to one of: {_TYPE_NAMES}")
    if not 1 <= array.ndim <= 255 or any(s >= 2**32 for s in array.shape):
        raise ValueError(f"IDX holds 1 to 255 dimensions of fewer than 2**32 items, got shape {array.shape}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    content = header + np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        content = gzip.compress(content, compresslevel=9, mtime=0)
    path.write_bytes(content)
