"""2-D convolution by im2col and one matrix product, written against the Array API only.

Forward: the input is viewed as (channels, height, width, batch), zero-padded, and its ``kh * kw``
shifted strided slices (:func:`~nnbackend.layers.windows.window_slices`) are stacked into the column
matrix ``cols`` (in_channels * kh * kw, out_h * out_w * batch); then ``W @ cols``, with the weight as it
is stored (out_channels, in_channels * kh * kw), is one large matrix product. Backward:
``dW = g @ cols.T`` and ``dcols = W.T @ g`` are two more, and col2im adds the ``kh * kw`` slices of
``dcols`` back into a fresh zero array. Python loops run over kernel positions only.

Layout: the product gives the output as (out_channels, out_h, out_w, batch) in memory; the layer
returns it as a (batch, out_channels, out_h, out_w) *view* (``permute_dims``, no copy). Element-wise
layers, BatchNorm and pooling keep that memory order, so the next Conv2D's (channels, height, width,
batch) view of its input is free. With the batch innermost, every window slice (here and in pooling)
moves runs of ``width * batch`` (stride 1) or ``batch`` (pooling) contiguous elements instead of
rows of ``width``: NumPy's element-wise loops then run long. Shapes seen by users are always NCHW.
"""

from __future__ import annotations

from typing import Any, Sequence

import array_api_compat

from ..arrays import is_count
from ..backend import Backend, namespace_of
from ..inplace import add_into, ufuncs, writeable
from ..random import Streams
from .activations import activation_config, activation_label, get_activation
from .base import Layer, Shape
from .init import INITIALIZERS, initialize
from .windows import Pair, as_pair, output_size, window_slices

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """A 2-D convolution ``y = act(conv(x, weight) + bias)`` (cross-correlation, as PyTorch's ``Conv2d``).

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (the number of filters).
        kernel_size: ``k`` or ``(kh, kw)``.
        stride: ``s`` or ``(sh, sw)``. Defaults to ``1``.
        padding: zeros added on each side, ``p`` or ``(ph, pw)``; ``"same"`` pads so the output is as
            large as the input (stride 1 only; an even kernel puts the extra row and column after, as
            PyTorch does); ``"valid"`` is ``0``. Defaults to ``0``.
        init: weight initialiser, one of ``nnbackend.layers.init.INITIALIZERS``, with
            ``fan_in = in_channels * kh * kw`` and ``fan_out = out_channels * kh * kw``. Defaults to
            ``"he"``. Biases start at zero.
        activation: an activation name, an activation layer, or ``None`` (default) for a linear output.

    Shapes: ``x`` (batch, in_channels, height, width) → ``y`` (batch, out_channels, out_h, out_w) with
    ``out_h = (height + pad_top + pad_bottom - kh) // sh + 1`` (likewise ``out_w``), in the model's float
    dtype on its device. ``weight`` is (out_channels, in_channels, kh, kw) (PyTorch's layout); ``bias``
    is (out_channels,).

    Attributes:
        pads: the zero rows and columns added, ``((top, bottom), (left, right))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        *,
        init: str = "he",
        activation: str | Layer | None = None,
    ) -> None:
        super().__init__()
        for label, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not is_count(value):
                raise ValueError(f"Conv2D {label} must be a positive integer, got {value!r}")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown initializer {init!r}; choose one of {', '.join(INITIALIZERS)}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = as_pair("kernel_size", kernel_size)
        self.stride = as_pair("stride", stride)
        self.padding: Pair | str = padding if isinstance(padding, str) else as_pair("padding", padding, minimum=0)
        self.pads = _resolve_padding(padding, self.kernel_size, self.stride)
        self.init = init
        self.activation = get_activation(activation)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "init": self.init,
            "activation": activation_config(self.activation),
        }

    def children(self) -> list[Layer]:
        return [self.activation] if self.activation is not None else []

    def describe(self) -> str:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        label = f"Conv2D {kh}x{kw}" + ("" if (sh, sw) == (1, 1) else f" stride {sh}x{sw}")
        name = activation_label(self.activation) if self.activation is not None else None
        return f"{label} ({name})" if name and name not in ("linear", "identity") else label

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3 or input_shape[0] not in (None, self.in_channels):
            raise ValueError(
                f"Conv2D expects per-sample inputs of shape ({self.in_channels}, height, width), "
                f"got {tuple(input_shape)}"
            )
        return (self.out_channels, *self._output_hw(input_shape[1], input_shape[2]))

    def state_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.out_channels, self.in_channels, *self.kernel_size), "bias": (self.out_channels,)}

    def build(self, input_shape: Shape, backend: Backend, streams: Streams) -> Shape:
        output_shape = super().build(input_shape, backend, streams)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        weight = initialize(self.init, shape, self.in_channels * kh * kw, self.out_channels * kh * kw, streams.init)
        self.params = {
            "weight": backend.asarray(weight),
            "bias": backend.asarray(initialize("zeros", (self.out_channels,), 0, 0, streams.init)),
        }
        return output_shape

    def _output_hw(self, height: int | None, width: int | None) -> tuple[int | None, int | None]:
        sizes = []
        for size, kernel, stride, pad in zip((height, width), self.kernel_size, self.stride, self.pads):
            out = None if size is None else output_size(size, kernel, stride, pad)
            if out is not None and out < 1:
                raise ValueError(
                    f"Conv2D with a {self.kernel_size[0]}x{self.kernel_size[1]} kernel and padding "
                    f"{self.pads} needs inputs of at least that size, got {height}x{width}"
                )
            sizes.append(out)
        return sizes[0], sizes[1]

    def forward(self, x: Any) -> Any:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D expects input of shape (batch, {self.in_channels}, height, width), got {tuple(x.shape)}"
            )
        xp = namespace_of(x)
        n, _, height, width = x.shape
        out_hw = self._output_hw(height, width)
        padded = _pad(xp.permute_dims(x, (1, 2, 3, 0)), self.pads)
        cols = _im2col(padded, self.kernel_size, self.stride, out_hw)
        weight = xp.reshape(self.params["weight"], (self.out_channels, -1))
        z = add_into(weight @ cols, xp.reshape(self.params["bias"], (-1, 1)))  # no second z-sized array
        self._remember((cols, tuple(padded.shape), (height, width)))
        y = xp.permute_dims(xp.reshape(z, (self.out_channels, *out_hw, n)), (3, 0, 1, 2))
        return y if self.activation is None else self.activation.forward(y)

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        cols, padded_shape, (height, width) = self._recall()
        if self.activation is not None:
            grad = self.activation.backward(grad)
        xp = namespace_of(grad)
        n, _, out_h, out_w = grad.shape
        g = xp.reshape(xp.permute_dims(grad, (1, 2, 3, 0)), (self.out_channels, -1))
        weight = self.params["weight"]
        self.grads = {"weight": xp.reshape(g @ cols.T, weight.shape), "bias": xp.sum(g, axis=1)}
        if not input_grad:
            return None
        kh, kw = self.kernel_size
        weight_t = xp.reshape(weight, (self.out_channels, -1)).T
        lib = ufuncs(cols)
        if lib is not None and writeable(cols):
            # cols is this layer's own (im2col made it) and no longer needed: the input gradient's
            # columns, the same shape, go into its memory instead of a fresh array as big (29 MB per
            # step in models.cnn()'s second block, with the page faults of fresh memory).
            dcols = lib.matmul(weight_t, g, out=cols)
        else:
            dcols = weight_t @ g
        dcols = xp.reshape(dcols, (self.in_channels, kh * kw, out_h, out_w, n))
        dpadded = _col2im(dcols, padded_shape, self.kernel_size, self.stride)
        (top, _), (left, _) = self.pads
        dx = dpadded[:, top : top + height, left : left + width, :]
        return xp.permute_dims(dx, (3, 0, 1, 2))


def _resolve_padding(padding: int | Sequence[int] | str, kernel: Pair, stride: Pair) -> tuple[Pair, Pair]:
    """``((top, bottom), (left, right))`` zero rows and columns for a ``padding`` argument."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"padding must be an integer, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride {stride}")
        (kh, kw) = kernel
        return ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
    ph, pw = as_pair("padding", padding, minimum=0)
    return (ph, ph), (pw, pw)


def _pad(x: Any, pads: tuple[Pair, Pair]) -> Any:
    """``x`` (channels, height, width, batch) with zero rows and columns around it."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    xp = namespace_of(x)
    channels, height, width, n = x.shape
    shape = (channels, height + top + bottom, width + left + right, n)
    padded = xp.zeros(shape, dtype=x.dtype, device=array_api_compat.device(x))
    padded[:, top : top + height, left : left + width, :] = x
    return padded


def _im2col(padded: Any, kernel: Pair, stride: Pair, out_hw: Pair) -> Any:
    """The column matrix (channels * kh * kw, out_h * out_w * batch) of a padded (channels, height,
    width, batch) input."""
    xp = namespace_of(padded)
    windows = [padded[:, rows, cols, :] for rows, cols in window_slices(kernel, stride, out_hw)]
    stacked = xp.stack(windows, axis=1)  # (channels, kh * kw, out_h, out_w, batch)
    return xp.reshape(stacked, (stacked.shape[0] * stacked.shape[1], -1))


def _col2im(dcols: Any, padded_shape: tuple[int, ...], kernel: Pair, stride: Pair) -> Any:
    """Sum ``dcols`` (channels, kh * kw, out_h, out_w, batch) back onto the padded input's positions."""
    xp = namespace_of(dcols)
    out_hw = (dcols.shape[2], dcols.shape[3])
    dpadded = xp.zeros(padded_shape, dtype=dcols.dtype, device=array_api_compat.device(dcols))
    for k, (rows, cols) in enumerate(window_slices(kernel, stride, out_hw)):
        dpadded[:, rows, cols, :] += dcols[:, k, :, :, :]
    return dpadded
