"""Max and average pooling over (batch, channels, height, width) batches.

Each window's ``(i, j)``-th elements form one strided slice of the input
(:func:`~nnbackend.layers.windows.window_slices`); pooling combines these ``ph * pw`` slices element-wise,
and the backward pass adds each slice's share of the gradient into a fresh zero array. No padding; the
last rows and columns that do not fill a window are dropped (PyTorch's default ``ceil_mode=False``).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import array_api_compat

from ..backend import namespace_of
from .base import Layer, Shape
from .windows import as_pair, output_size, window_slices

__all__ = ["AvgPool2D", "MaxPool2D"]


class _Pool2D(Layer):
    """Arguments, shapes, window slicing and the gradient scatter shared by the pooling layers."""

    def __init__(self, pool_size: int | Sequence[int] = 2, stride: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.pool_size = as_pair("pool_size", pool_size)
        self.stride = self.pool_size if stride is None else as_pair("stride", stride)

    def get_config(self) -> dict[str, Any]:
        return {"pool_size": list(self.pool_size), "stride": list(self.stride)}

    def describe(self) -> str:
        (ph, pw), (sh, sw) = self.pool_size, self.stride
        return f"{type(self).__name__} {ph}x{pw}" + ("" if (sh, sw) == (ph, pw) else f" stride {sh}x{sw}")

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects per-sample inputs of shape (channels, height, width), "
                f"got {tuple(input_shape)}"
            )
        return (input_shape[0], *self._output_hw(input_shape[1], input_shape[2]))

    def _output_hw(self, height: int | None, width: int | None) -> tuple[int | None, int | None]:
        sizes = [
            None if size is None else output_size(size, pool, stride)
            for size, pool, stride in zip((height, width), self.pool_size, self.stride)
        ]
        if any(size is not None and size < 1 for size in sizes):
            raise ValueError(
                f"{type(self).__name__} with a {self.pool_size[0]}x{self.pool_size[1]} window needs inputs "
                f"of at least that size, got {height}x{width}"
            )
        return sizes[0], sizes[1]

    def _slices(self, x: Any) -> list[tuple[slice, slice]]:
        """Check ``x`` is a (batch, channels, height, width) batch; the window slices over it."""
        if x.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, channels, height, width), "
                f"got {tuple(x.shape)}"
            )
        return window_slices(self.pool_size, self.stride, self._output_hw(x.shape[2], x.shape[3]))

    def _scatter(self, x: Any, parts: Iterable[Any]) -> Any:
        """A zero array shaped like ``x`` plus the ``k``-th of ``parts`` at window position ``k`` of
        every window."""
        dx = namespace_of(x).zeros_like(x)
        overlapping = self.stride[0] < self.pool_size[0] or self.stride[1] < self.pool_size[1]
        for (rows, cols), part in zip(self._slices(x), parts):
            if overlapping:
                dx[:, :, rows, cols] += part
            else:  # each element lies in one window at most: write without reading back
                dx[:, :, rows, cols] = part
        return dx


class MaxPool2D(_Pool2D):
    """The maximum of each window, as PyTorch's ``max_pool2d``.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, the window. Defaults to ``2``.
        stride: ``s`` or ``(sh, sw)``. Defaults to ``pool_size`` (windows side by side).

    Shapes: ``x`` (batch, channels, height, width) → (batch, channels, out_h, out_w) with
    ``out_h = (height - ph) // sh + 1`` (likewise ``out_w``), same dtype and device.

    The gradient of each window goes to its arg-max element; among equal maxima, to the first in
    row-major order.
    """

    def forward(self, x: Any) -> Any:
        xp = namespace_of(x)
        slices = self._slices(x)
        y = x[:, :, slices[0][0], slices[0][1]]
        # In training, which window position holds the first maximum, found by comparing each new
        # running maximum with the old one: backward then never reads x's strided slices again.
        first = None
        if self.training:
            dtype = xp.int8 if len(slices) <= 127 else xp.int32
            first = xp.zeros(y.shape, dtype=dtype, device=array_api_compat.device(x))
        for k, (rows, cols) in enumerate(slices[1:], start=1):
            new = xp.maximum(y, x[:, :, rows, cols])
            if first is not None:  # strictly greater only: ties keep the earlier position
                first = first + xp.astype(new > y, first.dtype) * (k - first)
            y = new
        self._remember((x, first))
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        x, first = self._recall()
        xp = namespace_of(grad)
        # A multiply by the 0/1 mask: NumPy's where() is several times slower on random masks.
        shares = (grad * xp.astype(first == k, grad.dtype) for k in range(len(self._slices(x))))
        return self._scatter(x, shares)


class AvgPool2D(_Pool2D):
    """The mean of each window, as PyTorch's ``avg_pool2d``.

    Args:
        pool_size: ``p`` or ``(ph, pw)``, the window. Defaults to ``2``.
        stride: ``s`` or ``(sh, sw)``. Defaults to ``pool_size`` (windows side by side).

    Shapes: ``x`` (batch, channels, height, width) → (batch, channels, out_h, out_w) with
    ``out_h = (height - ph) // sh + 1`` (likewise ``out_w``), same dtype and device.
    """

    def forward(self, x: Any) -> Any:
        slices = self._slices(x)
        total = x[:, :, slices[0][0], slices[0][1]]
        for rows, cols in slices[1:]:
            total = total + x[:, :, rows, cols]
        self._remember(x)
        return total * (1.0 / len(slices))

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        x = self._recall()
        share = grad * (1.0 / (self.pool_size[0] * self.pool_size[1]))
        return self._scatter(x, [share] * (self.pool_size[0] * self.pool_size[1]))
