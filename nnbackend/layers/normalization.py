"""Batch normalisation for flat (batch, features) and image (batch, channels, height, width) batches."""

from __future__ import annotations

import math
from typing import Any

from ..arrays import is_count
from ..backend import Backend, namespace_of
from ..inplace import add_into, writeable
from ..random import Streams
from .base import Layer, Shape

__all__ = ["BatchNorm"]


class BatchNorm(Layer):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per feature (PyTorch's ``BatchNorm1d/2d``).

    In training mode ``mean`` and ``var`` are the batch's statistics over the batch axis (flat inputs)
    or over batch, height and width (images), the variance biased (divided by the count ``m``); the
    running estimates move towards them: ``running = (1 - momentum) * running + momentum * stat``, with
    the unbiased variance (divided by ``m - 1``). In eval mode the running estimates are used.

    Args:
        num_features: features (flat inputs) or channels (images).
        momentum: weight of the newest batch in the running estimates, in [0, 1]. Defaults to ``0.1``.
        eps: added to the variance. Defaults to ``1e-5``.

    Shapes: ``x`` (batch, num_features) or (batch, num_features, height, width) → same shape, dtype and
    device. Parameters ``weight`` (gamma, starts at 1) and ``bias`` (beta, starts at 0), and buffers
    ``running_mean`` (starts at 0) and ``running_var`` (starts at 1), are all (num_features,). Buffers are
    replaced with new arrays on every update, never written in place.
    """

    mixes_rows = True

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        if not is_count(num_features):
            raise ValueError(f"BatchNorm num_features must be a positive integer, got {num_features!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm momentum must be in [0, 1], got {momentum!r}")
        if not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"BatchNorm eps must be > 0 and finite, got {eps!r}")
        self.num_features = int(num_features)
        self.momentum = float(momentum)
        self.eps = float(eps)

    def get_config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}

    @property
    def min_batch(self) -> int:  # type: ignore[override]
        """2 when each feature's variance comes from the batch alone (flat inputs, or 1x1 images), else 1."""
        pixels = math.prod(self.input_shape[1:]) if self.input_shape else 1
        return 2 if pixels == 1 else 1

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) not in (1, 3) or input_shape[0] not in (None, self.num_features):
            raise ValueError(
                f"BatchNorm expects per-sample inputs of shape ({self.num_features},) or "
                f"({self.num_features}, height, width), got {tuple(input_shape)}"
            )
        return input_shape

    def state_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        return dict.fromkeys(("weight", "bias", "running_mean", "running_var"), (self.num_features,))

    def build(self, input_shape: Shape, backend: Backend, streams: Streams) -> Shape:
        output_shape = super().build(input_shape, backend, streams)
        xp, shape = backend.xp, (self.num_features,)
        self.params = {
            "weight": xp.ones(shape, dtype=backend.dtype, device=backend.device),
            "bias": xp.zeros(shape, dtype=backend.dtype, device=backend.device),
        }
        self.buffers = {
            "running_mean": xp.zeros(shape, dtype=backend.dtype, device=backend.device),
            "running_var": xp.ones(shape, dtype=backend.dtype, device=backend.device),
        }
        return output_shape

    def forward(self, x: Any) -> Any:
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm expects input of shape (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, height, width), got {tuple(x.shape)}"
            )
        rows = _feature_rows(x)
        y = self._normalize_training(rows) if self.training else self._normalize_eval(rows)
        return _from_feature_rows(y, x.shape)

    def _column(self, source: dict[str, Any], key: str) -> Any:
        """A (num_features,) parameter or buffer as a (num_features, 1) column."""
        return namespace_of(source[key]).reshape(source[key], (-1, 1))

    def _normalize_eval(self, rows: Any) -> Any:
        xp = namespace_of(rows)
        scale = self._column(self.params, "weight") / xp.sqrt(self._column(self.buffers, "running_var") + self.eps)
        return (rows - self._column(self.buffers, "running_mean")) * scale + self._column(self.params, "bias")

    def _normalize_training(self, rows: Any) -> Any:
        xp = namespace_of(rows)
        count = rows.shape[1]
        if count < 2:
            raise ValueError(
                "BatchNorm in training mode needs more than one value per feature to estimate a variance, "
                f"got {count} (batch size times height times width)"
            )
        mean = xp.mean(rows, axis=1, keepdims=True)
        centered = rows - mean
        # vecdot fuses the product into the sum: no temporary array, 3x faster than sum(c * c) on NumPy
        var = xp.reshape(xp.vecdot(centered, centered), (-1, 1)) * (1.0 / count)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        m = self.momentum
        self.buffers = {
            "running_mean": (1.0 - m) * self.buffers["running_mean"] + m * xp.reshape(mean, (-1,)),
            "running_var": (1.0 - m) * self.buffers["running_var"] + (m * count / (count - 1)) * xp.reshape(var, (-1,)),
        }
        self._remember((centered, inv_std))
        return add_into(centered * (inv_std * self._column(self.params, "weight")), self._column(self.params, "bias"))

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        centered, inv_std = self._recall()
        g = _feature_rows(grad)
        xp = namespace_of(g)
        count = g.shape[1]
        grad_bias = xp.sum(g, axis=1, keepdims=True)
        grad_weight = xp.reshape(xp.vecdot(g, centered), (-1, 1)) * inv_std
        self.grads = {"weight": xp.reshape(grad_weight, (-1,)), "bias": xp.reshape(grad_bias, (-1,))}
        if not input_grad:
            return None
        # dx = weight * inv_std * (g - mean(g) - xhat * mean(g * xhat)), with xhat = centered * inv_std
        scale = self._column(self.params, "weight") * inv_std
        shift = grad_bias * (1.0 / count)
        slope = grad_weight * inv_std * (1.0 / count)
        dx = g - shift
        if writeable(dx) and writeable(centered):
            # The same operations in place: dx is fresh, and centered (this layer's own, from forward)
            # is not needed after this pass. One new array instead of four.
            dx *= scale
            centered *= slope * scale
            dx -= centered
        else:
            dx = dx * scale - centered * (slope * scale)
        return _from_feature_rows(dx, grad.shape)


def _feature_rows(x: Any) -> Any:
    """``x`` as (features, samples): one row per feature (flat inputs) or channel (images, whose rows
    hold height, width and batch). A view without copying when images are (channels, height, width,
    batch) in memory, as Conv2D's outputs are."""
    xp = namespace_of(x)
    if x.ndim == 2:
        return xp.permute_dims(x, (1, 0))
    return xp.reshape(xp.permute_dims(x, (1, 2, 3, 0)), (x.shape[1], -1))


def _from_feature_rows(rows: Any, shape: tuple[int, ...]) -> Any:
    """Undo :func:`_feature_rows` for an array of the original ``shape``."""
    xp = namespace_of(rows)
    if len(shape) == 2:
        return xp.permute_dims(rows, (1, 0))
    n, channels, height, width = shape
    return xp.permute_dims(xp.reshape(rows, (channels, height, width, n)), (3, 0, 1, 2))
