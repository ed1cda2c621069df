"""Data sets for nnbackend: IDX files."""

from __future__ import annotations

from nnbackend.data.errors import DataError
from nnbackend.data.idx import read_idx, write_idx

__all__ = ["DataError", "read_idx", "write_idx"]
