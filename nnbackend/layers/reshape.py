"""Shape-only layers."""

from __future__ import annotations

import math
from typing import Any

from ..backend import namespace_of
from .base import Layer, Shape

__all__ = ["Flatten"]


class Flatten(Layer):
    """Join all per-sample dimensions: (batch, d1, d2, ...) → (batch, d1 * d2 * ...)."""

    fresh_input_grad = False  # backward returns a view of the gradient it receives

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if any(size is None for size in input_shape):
            return (None,)
        return (math.prod(input_shape),)

    def forward(self, x: Any) -> Any:
        self._remember(tuple(x.shape))
        return namespace_of(x).reshape(x, (x.shape[0], -1))

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        shape = self._recall()
        return namespace_of(grad).reshape(grad, shape)
