"""Seeded train/validation/test splits of a data set, as float features in [0, 1] and int64 labels."""

from __future__ import annotations

import dataclasses
import numbers
import os
from typing import Any

import numpy as np

from nnbackend.data.datasets import DataSet, load

__all__ = ["Split", "paper_split", "official_split", "part_indices", "subset"]

_PARTS = ("train", "val", "test")

_Part = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Images, labels, and the indices of one part's samples in them."""


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """Train, validation and test parts of a data set, on the host.

    Attributes:
        x_train, x_val, x_test: ``(n, 784)`` (flattened) or ``(n, 1, 28, 28)`` float32 or float64,
            pixel values / 255.
        y_train, y_val, y_test: ``(n,)`` int64 class indices.
        class_names: the name of each class index.
        description: how the split was made, e.g. ``"mnist, paper split (seed 42)"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    description: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> str:
        """A few lines: the description, then per part its size, sample shape, dtype and class balance."""
        lines = [self.description or "split"]
        for part in _PARTS:
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            counts = np.bincount(y, minlength=self.n_classes)
            lines.append(
                f"  {part:<5} {len(y):>6} samples of {tuple(x.shape[1:])} {x.dtype}, "
                f"{counts.min()}-{counts.max()} per class"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{part} {len(getattr(self, f'y_{part}'))}" for part in _PARTS)
        return f"Split({self.description!r}, {sizes}, {self.n_classes} classes)"


def paper_split(
    dataset: DataSet | str, *, seed: int = 42, flatten: bool = True, dtype: str = "float32"
) -> Split:
    """The paper's split: pool train and test, shuffle, then 10% test, 80% train, the rest validation.

    The official train images come first in the pool, then the test images; the pool is shuffled with
    ``np.random.default_rng(seed).permutation``. 70,000 images give 7,000 test, 56,000 train and
    7,000 validation.

    Args:
        dataset: a loaded :class:`DataSet` or a name to :func:`load`.
        flatten: ``(n, 784)`` features for dense networks; ``False`` gives ``(n, 1, 28, 28)`` for CNNs.
        dtype: ``"float32"`` or ``"float64"``.
    """
    dtype = _float_dtype(dtype)
    _check_seed(seed)
    data = _as_dataset(dataset)
    images = np.concatenate([data.train_images, data.test_images])
    labels = np.concatenate([data.train_labels, data.test_labels])
    index = part_indices("paper", len(data.train_labels), len(data.test_labels), seed=seed)
    parts = tuple((images, labels, index[part]) for part in _PARTS)
    return _make(data, parts, flatten, dtype, f"{data.name}, paper split (seed {seed})")


def official_split(
    dataset: DataSet | str,
    *,
    validation_fraction: float = 0.1,
    seed: int = 42,
    flatten: bool = True,
    dtype: str = "float32",
) -> Split:
    """The official test set, and a seeded ``validation_fraction`` of the official train set as validation.

    The train set is shuffled with ``np.random.default_rng(seed).permutation``; the first
    ``round(validation_fraction * n)`` images become validation, the rest train. The test set keeps
    its official order. Other arguments as in :func:`paper_split`.

    Args:
        validation_fraction: in [0, 1). ``0`` trains on the whole official train set and leaves the
            validation part empty (``x_val`` of shape ``(0, 784)``): pass no ``validation`` to
            :meth:`~nnbackend.training.Trainer.fit` then.

    Raises:
        ValueError: ``validation_fraction`` outside [0, 1), or so close to 1 that no train image is
            left; checked before the data set is loaded where it can be.
    """
    dtype = _float_dtype(dtype)
    _check_fraction(validation_fraction)
    _check_seed(seed)
    data = _as_dataset(dataset)
    n_train = len(data.train_labels)
    index = part_indices("official", n_train, len(data.test_labels), seed=seed, validation_fraction=validation_fraction)
    official = (data.train_images, data.train_labels)
    parts = ((*official, index["train"]), (*official, index["val"]),
             (data.test_images, data.test_labels, index["test"] - n_train))
    description = f"{data.name}, official split, {float(validation_fraction):g} of train as validation (seed {seed})"
    return _make(data, parts, flatten, dtype, description)


def part_indices(
    kind: str, n_train: int, n_test: int, *, seed: int = 42, validation_fraction: float = 0.1
) -> dict[str, np.ndarray]:
    """Which images make each part of a split, without loading them: ``{"train", "val", "test"}`` to
    int64 indices into the pool of the ``n_train`` official train images followed by the ``n_test``
    official test images.

    ``kind`` is ``"paper"`` (:func:`paper_split`) or ``"official"`` (:func:`official_split`, which
    takes ``validation_fraction``). Two splits share an image where their index arrays share a value.
    """
    _check_fraction(validation_fraction)
    _check_seed(seed)
    if kind == "paper":
        n = n_train + n_test
        order = np.random.default_rng(seed).permutation(n)
        test, train, val = np.split(order, [n // 10, n // 10 + n * 8 // 10])
    elif kind == "official":
        order = np.random.default_rng(seed).permutation(n_train)
        n_val = round(validation_fraction * n_train)
        if n_train and n_val == n_train:
            raise ValueError(f"validation_fraction {validation_fraction} of {n_train} train images leaves none "
                             f"to train on; use a smaller fraction")
        val, train = np.split(order, [n_val])
        test = np.arange(n_train, n_train + n_test)
    else:
        raise ValueError(f"kind must be 'paper' or 'official', got {kind!r}")
    return {"train": train, "val": val, "test": test}


def subset(split: Split, n_train: int, n_val: int | None = None, n_test: int | None = None) -> Split:
    """The first ``n_train``, ``n_val`` and ``n_test`` samples of each part (``None``: the whole part).

    The arrays are views of ``split``'s.

    Raises:
        TypeError: ``split`` is not a :class:`Split`, or a count is not an integer or ``None``.
        ValueError: a count is negative, or a part has fewer samples than asked.
    """
    if not isinstance(split, Split):
        raise TypeError(f"subset: split must be a Split (from paper_split or official_split), "
                        f"got {type(split).__name__}")
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for part, n in sizes.items():
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)):
            raise TypeError(f"subset: n_{part} must be a whole number of samples or None (the whole part), "
                            f"got {type(n).__name__} {n!r}")
    fields = {}
    for part, n in sizes.items():
        available = len(getattr(split, f"y_{part}"))
        if n is None:
            n = available
        if not 0 <= n <= available:
            raise ValueError(f"subset: asked for {n} {part} samples, the split has {available}")
        fields[f"x_{part}"] = getattr(split, f"x_{part}")[:n]
        fields[f"y_{part}"] = getattr(split, f"y_{part}")[:n]
    counts = ", ".join(f"{len(fields[f'y_{part}'])} {part}" for part in _PARTS)
    return dataclasses.replace(split, **fields, description=f"{split.description}, subset: {counts}")


def _as_dataset(dataset: DataSet | str) -> DataSet:
    if isinstance(dataset, DataSet):
        return dataset
    if isinstance(dataset, str):
        return load(dataset)
    hint = " (for files in a folder: load(name, data_dir=folder))" if isinstance(dataset, os.PathLike) else ""
    raise TypeError(f"dataset must be a DataSet or a data set name such as 'mnist', "
                    f"got {type(dataset).__name__} {dataset!r}{hint}")


def _check_fraction(validation_fraction: Any) -> None:
    if (isinstance(validation_fraction, bool) or not isinstance(validation_fraction, numbers.Real)
            or not 0 <= validation_fraction < 1):
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {validation_fraction!r}")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def _float_dtype(dtype: str) -> np.dtype:
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(dtype)


def _make(
    data: DataSet, parts: tuple[_Part, _Part, _Part], flatten: bool, dtype: np.dtype, description: str
) -> Split:
    fields = {}
    for part, (images, labels, index) in zip(_PARTS, parts):
        fields[f"x_{part}"] = _features(images[index], flatten, dtype)
        fields[f"y_{part}"] = labels[index]
    return Split(**fields, class_names=data.class_names, description=description)


def _features(images: np.ndarray, flatten: bool, dtype: np.dtype) -> np.ndarray:
    x = images.astype(dtype)
    x /= 255
    return x.reshape(len(x), int(np.prod(x.shape[1:]))) if flatten else x[:, np.newaxis]
