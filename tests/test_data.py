"""nnbackend.data: reading and writing IDX files, and the errors for broken ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from nnbackend.data import DataError, read_idx, write_idx


# -- IDX ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([5, 0, 4], dtype=np.uint8),
        np.array([[-7, 1 << 20]], dtype=np.int32),
        np.array([[0.5, -1e300]], dtype=np.float64),
    ],
    ids=["uint8-3d", "uint8-1d", "int32", "float64"],
)
def test_idx_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"x-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert path.read_bytes().startswith(b"\x1f\x8b") == (suffix == ".gz")


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "labels", np.zeros(2, np.uint8))
    assert (tmp_path / "images").read_bytes()[:16] == bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert (tmp_path / "labels").read_bytes()[:8] == bytes.fromhex("00000801 00000002")


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def _gz(path: Path, content: bytes) -> Path:
    path.write_bytes(gzip.compress(content))
    return path


def test_truncated_file_is_rejected_with_its_name(tmp_path):
    write_idx(tmp_path / "full", np.zeros((3, 28, 28), np.uint8))
    path = _gz(tmp_path / "train-images-idx3-ubyte.gz", (tmp_path / "full").read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated: header says "
                                        r"3x28x28 = 2352 bytes of data, file has 2252"):
        read_idx(path)


def test_trailing_data_is_rejected(tmp_path):
    write_idx(tmp_path / "full", np.zeros(4, np.uint8))
    path = _gz(tmp_path / "labels.gz", (tmp_path / "full").read_bytes() + b"\0")
    expected = "labels.gz: trailing data: header says 4 = 4 bytes of data, file has 5"
    with pytest.raises(DataError, match=expected):
        read_idx(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\x00", "truncated"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated: the header announces 3 dimension"),
        (b"<html>not found</html>", "bad magic number 0x3C68746D"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", "bad magic number 0x00000701"),
        (b"\x00\x00\x08\x00", "bad magic number"),
    ],
    ids=["short", "short-header", "html", "type-code", "no-dims"],
)
def test_not_an_idx_file_is_rejected(tmp_path, content, problem):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"t10k-labels-idx1-ubyte: {problem}"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_gzip_is_rejected_with_its_name(tmp_path, damage):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: not a valid gzip stream"):
        read_idx(path)
