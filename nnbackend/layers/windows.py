"""Sliding windows over two spatial axes, shared by convolution and pooling.

The Array API has no strided views (``as_strided``), so a layer never forms its windows directly.
Instead, for each of the ``kh * kw`` positions ``(i, j)`` inside a window it takes one strided slice of
the input that holds the ``(i, j)``-th element of *every* window at once: rows ``i, i + s, ...``, columns
``j, j + s, ...``. A layer then loops over kernel positions only (9 for a 3x3 kernel), never over samples
or windows, and each step is a whole-batch array operation.
"""

from __future__ import annotations

from typing import Sequence

from ..arrays import is_count

__all__ = ["Pair", "as_pair", "output_size", "window_slices"]

Pair = tuple[int, int]


def as_pair(name: str, value: int | Sequence[int], *, minimum: int = 1) -> Pair:
    """``value`` as a ``(height, width)`` pair of ints >= ``minimum``; an int is used for both."""
    items = list(value) if isinstance(value, (tuple, list)) else [value, value]
    valid = len(items) == 2 and all(is_count(v, minimum) for v in items)
    if not valid:
        raise ValueError(f"{name} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def output_size(size: int, kernel: int, stride: int, pad: Pair = (0, 0)) -> int:
    """Windows along one axis of ``size`` elements padded by ``pad`` (before, after); may be <= 0."""
    return (size + pad[0] + pad[1] - kernel) // stride + 1


def window_slices(kernel: Pair, stride: Pair, out: Pair) -> list[tuple[slice, slice]]:
    """For each kernel position ``(i, j)`` in row-major order, the (row, column) slices of the (padded)
    input holding that element of all ``out[0] x out[1]`` windows.

    Every stop lies within the input (``i + stride * (out - 1) + 1 <= size``): array_api_strict rejects
    out-of-range stops.
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    return [
        (slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]
