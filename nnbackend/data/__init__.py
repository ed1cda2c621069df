"""Data sets for nnbackend: IDX files, a registry with a search path, verified downloads, seeded splits.

>>> from nnbackend.data import load, paper_split
>>> split = paper_split(load("mnist"))          # doctest: +SKIP
>>> split.x_train.shape, split.y_train.dtype    # doctest: +SKIP
((56000, 784), dtype('int64'))

``load("mnist-sample")`` always works: 5,000 real MNIST images ship inside the package.
"""

from __future__ import annotations

from nnbackend.data.datasets import DataSet, load
from nnbackend.data.errors import DataError
from nnbackend.data.idx import read_idx, write_idx
from nnbackend.data.locate import cache_dir, search_path
from nnbackend.data.registry import MNIST_FILES, DataSetSpec, dataset_names, register
from nnbackend.data.splits import Split, official_split, paper_split, part_indices, subset

__all__ = [
    "DataError",
    "DataSet",
    "DataSetSpec",
    "MNIST_FILES",
    "Split",
    "cache_dir",
    "dataset_names",
    "load",
    "official_split",
    "paper_split",
    "part_indices",
    "read_idx",
    "register",
    "search_path",
    "subset",
    "write_idx",
]
