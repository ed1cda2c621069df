"""Reading a data set's file and checking it against the SHA-256 of its uncompressed content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from nnbackend.data.errors import DataError
from nnbackend.data.idx import parse_idx, read_content
from nnbackend.data.registry import DataSetSpec, dataset_names, get_spec

__all__ = ["read_verified"]


def read_verified(path: Path, spec: DataSetSpec, base: str, origin: str | None = None) -> np.ndarray:
    """The IDX array in ``path``, which must be ``spec``'s file ``base``.

    The structure is checked before the checksum, so a cut-off file is reported as truncated.

    Args:
        origin: where the file came from (a URL), named in errors instead of ``path``.

    Raises:
        DataError: a corrupt gzip stream, a malformed IDX file, or content whose SHA-256 differs from
            the registered one; the message names the file, both sums and, when the content is another
            registered file (Fashion-MNIST in an MNIST folder), which one.
    """
    name = origin or path
    content = read_content(path, name)
    array = parse_idx(content, name)
    actual = hashlib.sha256(content).hexdigest()
    expected = spec.sha256[base]
    if actual != expected:
        other = _identify(actual)
        hint = f" (that is the content of {other})" if other else ""
        raise DataError(
            f"{name}: wrong content for {spec.name}'s {base}: SHA-256 of the uncompressed content "
            f"is {actual}{hint}, expected {expected}; the file is damaged or another data set's: replace "
            "it with the official file or delete it"
        )
    return array


def _identify(sha256: str) -> str | None:
    for name in dataset_names():
        for base, known in get_spec(name).sha256.items():
            if known == sha256:
                return f"{name}'s {base}"
    return None
