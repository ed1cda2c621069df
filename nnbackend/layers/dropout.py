"""Inverted dropout with masks drawn on the host, so every backend drops the same units."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ..backend import Backend, namespace_of
from ..random import Streams
from .base import Layer, Shape

__all__ = ["Dropout"]


_NO_MASK = object()  # what a rate-0 forward remembers: backward passes the gradient through


class Dropout(Layer):
    """In training mode, zero each input with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    In eval mode it is the identity. Masks come from the layer's own seeded stream on the host (float64
    uniform draws, then moved to the device), so a seed gives the same masks on every backend, and the
    same masks whether a batch runs whole or in slices of rows (``Trainer(max_rows=...)``).

    Args:
        rate: the probability of dropping a unit, in [0, 1). Defaults to ``0.5``.
    """

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None

    fresh_input_grad = False  # with rate 0 (or in eval mode) backward returns its input

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def build(self, input_shape: Shape, backend: Backend, streams: Streams) -> Shape:
        self.rng = streams.new_dropout()
        return super().build(input_shape, backend, streams)

    def forward(self, x: Any) -> Any:
        if not self.training or self.rate == 0.0:
            self._remember(_NO_MASK)
            return x
        if self.rng is None:
            raise RuntimeError("Dropout must be built (inside a model) before it runs in training mode")
        xp = namespace_of(x)
        # Drawn on the host (the same masks on every backend); only the booleans, a byte per unit, move.
        keep = xp.asarray(self.rng.random(tuple(x.shape)) >= self.rate, device=array_api_compat.device(x))
        mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.rate))
        self._remember(mask)
        return x * mask

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        mask = self._recall()
        return grad if mask is _NO_MASK else grad * mask
