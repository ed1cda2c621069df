"""Loading a registered data set from the first folder on its search path, or downloading it."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from nnbackend.data import locate
from nnbackend.data.download import download as fetch
from nnbackend.data.errors import DataError
from nnbackend.data.registry import DataSetSpec, get_spec
from nnbackend.data.verify import read_verified

__all__ = ["DataSet", "load"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class DataSet:
    """An image-classification data set as its official train/test files hold it; arrays are read-only.

    Attributes:
        name: the registered name (``"mnist"``, ``"fashion-mnist"``, ``"mnist-sample"``).
        train_images: ``(N, height, width)`` uint8, pixel values 0-255; ``(N, 28, 28)`` for the MNIST family.
        train_labels: ``(N,)`` int64 in ``[0, n_classes)``.
        test_images: ``(M, height, width)`` uint8.
        test_labels: ``(M,)`` int64.
        class_names: the name of each label value.
        source: the folder the files were read from.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape of one image, ``(28, 28)`` for the MNIST family."""
        return self.train_images.shape[1:]

    def __repr__(self) -> str:
        return (
            f"DataSet({self.name!r}, train {len(self.train_labels)}, test {len(self.test_labels)}, "
            f"images {'x'.join(map(str, self.image_shape))} uint8, {self.n_classes} classes, "
            f"from {self.source})"
        )


def load(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> DataSet:
    """Load data set ``name`` from the first folder of :func:`search_path` that holds its files.

    Every file is checked against the SHA-256 of its uncompressed content. When no folder has the
    files and ``download`` is true, the official files are downloaded into the cache first.

    Args:
        name: a registered name, in any case and with any separator (``"MNIST"``, ``"fashion_mnist"``).
        data_dir: searched first: a folder holding the files, or holding ``<name>/`` with them.
        download: fetch the files into :func:`cache_dir` when no copy is found (needs pooch).

    Raises:
        TypeError: ``name`` is not a string, or ``data_dir`` not a path.
        DataError: unknown name; a folder with only some of the files; a corrupt, truncated or wrong file;
            or no copy found and none downloaded (the message lists every place searched and how to
            provide the files).
    """
    spec = get_spec(name)
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder's path (str or Path), got {type(data_dir).__name__} {data_dir!r}")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataError(f"data_dir {data_dir}: no such folder (it should hold {spec.name}/ or the files themselves)")
    places = locate.search_path(spec.name, data_dir)
    for folder in places:
        files = locate.files_in(folder, spec)
        if files is not None:
            return _read(spec, folder, files)
    if not download or spec.url_base is None:
        raise DataError(_not_found(spec, places, offer_download=spec.url_base is not None))
    target = locate.cache_dir() / spec.name
    try:
        fetch(spec, target)
    except DataError as exc:
        raise DataError(f"{_not_found(spec, places, offer_download=False)}\nDownloading them failed: {exc}") from exc
    return _read(spec, target, locate.files_in(target, spec))


def _read(spec: DataSetSpec, folder: Path, files: dict[str, Path]) -> DataSet:
    arrays = [read_verified(files[base], spec, base) for base in spec.files]
    train_images, train_labels, test_images, test_labels = arrays
    for images, labels in ((train_images, train_labels), (test_images, test_labels)):
        _check_pair(spec, folder, images, labels)
    log.info("loaded %s from %s", spec.name, folder)
    return DataSet(
        name=spec.name,
        train_images=train_images,
        train_labels=_labels(train_labels),
        test_images=test_images,
        test_labels=_labels(test_labels),
        class_names=spec.class_names,
        source=str(folder),
    )


def _check_pair(spec: DataSetSpec, folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    problem = None
    if images.ndim != 3 or images.dtype != np.uint8:
        problem = f"images must be (N, height, width) uint8, got {images.shape} {images.dtype}"
    elif labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        problem = f"{len(images)} images but labels of shape {labels.shape} {labels.dtype}"
    elif labels.size and not 0 <= labels.min() <= labels.max() < len(spec.class_names):
        problem = f"labels outside 0..{len(spec.class_names) - 1}"
    if problem:
        raise DataError(f"{folder}: {spec.name}: {problem}")


def _labels(labels: np.ndarray) -> np.ndarray:
    out = labels.astype(np.int64)
    out.flags.writeable = False
    return out


def _not_found(spec: DataSetSpec, places: list[Path], *, offer_download: bool) -> str:
    names = ", ".join(spec.files)
    ways = [
        f"set {locate.DATA_ENV} to a folder holding {spec.name}/ with the files",
        f"put the files in {locate.cache_dir() / spec.name}"
        + (f" (from {spec.url_base})" if spec.url_base else ""),
        "pass data_dir=<a folder holding them> to load() (on the command line: --data-dir FOLDER)",
    ]
    if spec.debian_package:
        ways.append(f"apt install {spec.debian_package} (Debian/Ubuntu)")
    if offer_download:
        ways.append(f"load({spec.name!r}, download=True) to download them into the cache")
    return (
        f"data set {spec.name!r} not found; looked in:\n"
        + "".join(f"  {place}{'' if place.is_dir() else ' (no such folder)'}\n" for place in places)
        + f"It needs {names} (raw or .gz). To provide them:\n"
        + "".join(f"  - {way}\n" for way in ways)
    ).rstrip("\n")
