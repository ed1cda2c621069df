"""The data sets nnbackend knows: their files, checksums, download address, licence and classes.

Everything :func:`nnbackend.data.load` needs to find, verify and fetch a data set is data in a
:class:`DataSetSpec`, so a new (or, in tests, a fake) data set is one :func:`register` call.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from nnbackend.data.errors import DataError

__all__ = ["DataSetSpec", "register", "get_spec", "dataset_names", "MNIST_FILES"]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four file names shared by MNIST, Fashion-MNIST and the MNIST sample, found raw or with ``.gz``."""


@dataclasses.dataclass(frozen=True)
class DataSetSpec:
    """How to find, verify and fetch one data set of four IDX files (train/test images and labels).

    Attributes:
        name: the canonical name, lower case with ``-`` (``"fashion-mnist"``); also its folder name.
        class_names: one name per label value, label ``i`` is ``class_names[i]``.
        sha256: SHA-256 of the *uncompressed* content of each file, keyed by the names in ``files``.
        url_base: the download folder; file ``f`` is fetched from ``url_base + f + ".gz"``.
            ``None`` for a data set that cannot be downloaded.
        mirrors: other download folders laid out as ``url_base``, tried in order when it fails.
        licence: the licence the data is distributed under.
        authors: who made the data.
        homepage: where the data and its description live.
        debian_package: the Debian package that installs the files under ``/usr/share/datasets/<name>``.
        packaged_dir: a folder inside nnbackend that ships the files (searched last).
        files: the base names of images and labels, in the order train images, train labels,
            test images, test labels.
    """

    name: str
    class_names: tuple[str, ...]
    sha256: Mapping[str, str]
    url_base: str | None = None
    mirrors: tuple[str, ...] = ()
    licence: str = ""
    authors: str = ""
    homepage: str = ""
    debian_package: str | None = None
    packaged_dir: Path | None = None
    files: tuple[str, str, str, str] = MNIST_FILES

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", self.name):
            raise ValueError(f"a data set name is lower case with '-' between words, got {self.name!r}")
        missing = set(self.files) - set(self.sha256)
        if missing:
            raise ValueError(f"data set {self.name!r}: no SHA-256 for {sorted(missing)}")
        if isinstance(self.mirrors, str) or not all(isinstance(m, str) for m in self.mirrors):
            raise ValueError(f"data set {self.name!r}: mirrors must be a tuple of URLs, got {self.mirrors!r}")
        if self.mirrors and self.url_base is None:
            raise ValueError(f"data set {self.name!r}: mirrors need a url_base to back up")


def _key(name: str) -> str:
    """``"Fashion_MNIST"``, ``"fashion mnist"`` and ``"fashion-mnist"`` all become ``"fashionmnist"``."""
    return re.sub(r"[\s_\-]+", "", name.lower())


_REGISTRY: dict[str, DataSetSpec] = {}


def register(spec: DataSetSpec) -> None:
    """Make ``spec`` loadable by its name, replacing any data set registered under the same name."""
    _REGISTRY[_key(spec.name)] = spec


def dataset_names() -> tuple[str, ...]:
    """The canonical names of every registered data set, sorted."""
    return tuple(sorted(spec.name for spec in _REGISTRY.values()))


def get_spec(name: str) -> DataSetSpec:
    """The data set called ``name``, ignoring case and separators (``"MNIST"``, ``"fashion_mnist"``).

    Raises:
        TypeError: ``name`` is not a string.
        DataError: no data set has that name; the message lists the known ones.
    """
    if not isinstance(name, str):
        hint = " (for files in a folder, pass data_dir=FOLDER to load)" if isinstance(name, os.PathLike) else ""
        raise TypeError(f"a data set name must be a string such as 'mnist', got {type(name).__name__} {name!r}"
                        f"{hint}; known data sets: {', '.join(dataset_names())}")
    spec = _REGISTRY.get(_key(name))
    if spec is None:
        raise DataError(f"unknown data set {name!r}; known data sets: {', '.join(dataset_names())}")
    return spec


DIGITS = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

register(DataSetSpec(
    name="mnist",
    class_names=DIGITS,
    sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    # The mirrors torchvision and TensorFlow use: yann.lecun.com often refuses automated downloads.
    url_base="https://ossci-datasets.s3.amazonaws.com/mnist/",
    mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",),
    licence="CC BY-SA 3.0",
    authors="Yann LeCun, Corinna Cortes, Christopher J.C. Burges",
    homepage="http://yann.lecun.com/exdb/mnist/",
))

register(DataSetSpec(
    name="fashion-mnist",
    class_names=FASHION_CLASSES,
    sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    # Keras's copy over https first; Zalando's own S3 site serves http only (the SHA-256 protects either).
    url_base="https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    licence="MIT",
    authors="Han Xiao, Kashif Rasul, Roland Vollgraf (Zalando Research)",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    debian_package="dataset-fashion-mnist",
))

register(DataSetSpec(
    name="mnist-sample",
    class_names=DIGITS,
    sha256={
        "train-images-idx3-ubyte": "b4ea23dbf90a95ba267fd8d786844ec0b787ab50deafe1df489033288891d4e0",
        "train-labels-idx1-ubyte": "59a97f76dd0550f2fe844ecbcbc47ac13ffde504e3d13fa3f59f451ee5f54026",
        "t10k-images-idx3-ubyte": "bdef0386f8d4cb4f5e5417138f3147ea7a947897b18bd5e56221f12ab433e1be",
        "t10k-labels-idx1-ubyte": "77fa26ff2ef4c829611636b8c1a5ae311baf95216e770df3ae86b363ecd26376",
    },
    licence="CC BY-SA 3.0",
    authors="Yann LeCun, Corinna Cortes, Christopher J.C. Burges",
    homepage="http://yann.lecun.com/exdb/mnist/",
    packaged_dir=Path(__file__).parent / "sample",
))
