"""Data sets for nnbackend: IDX files, a registry with a search path, verified downloads.

>>> from nnbackend.data import load
>>> load("mnist")                               # doctest: +SKIP
DataSet('mnist', train 60000, test 10000, images 28x28 uint8, 10 classes, from ...)
"""

from __future__ import annotations

from nnbackend.data.datasets import DataSet, load
from nnbackend.data.errors import DataError
from nnbackend.data.idx import read_idx, write_idx
from nnbackend.data.locate import cache_dir, search_path
from nnbackend.data.registry import DataSetSpec, dataset_names, register

__all__ = [
    "DataError",
    "DataSet",
    "DataSetSpec",
    "cache_dir",
    "dataset_names",
    "load",
    "read_idx",
    "register",
    "search_path",
    "write_idx",
]
