"""Ready-made architectures: a small convolutional network and a multi-layer perceptron."""

from __future__ import annotations

from typing import Sequence

from .backend import Backend
from .layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU
from .model import Sequential

__all__ = ["cnn", "mlp"]


def cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    hidden: int = 128,
    dropout: float = 0.25,
    batchnorm: bool = True,
    output_activation: str | None = None,
    backend: str | Backend | None = None,
    dtype: str | None = None,
    seed: int | None = 0,
) -> Sequential:
    """A small CNN for MNIST-sized images, returning raw scores (logits) for a cross-entropy loss.

    Per entry of ``channels`` one block: 3x3 Conv2D with ``"same"`` padding, BatchNorm (with
    ``batchnorm``), 2x2 MaxPool2D, ReLU. (Max-pooling and ReLU commute, so pooling first gives the same
    function with a quarter of the ReLU work.) Then Flatten, Dense ``hidden`` + ReLU, Dropout
    (``dropout > 0``) and Dense ``n_classes``.

    Args:
        input_shape: per-sample (channels, height, width). Defaults to MNIST's ``(1, 28, 28)``; height and
            width must survive one halving per block.
        n_classes: outputs. Defaults to ``10``.
        channels: output channels of each block. Defaults to ``(32, 64)``.
        hidden: width of the hidden Dense layer. Defaults to ``128``.
        dropout: dropout rate before the last layer; ``0`` for none. Defaults to ``0.25``.
        batchnorm: put a BatchNorm after each convolution. Defaults to ``True``.
        output_activation: an activation for the last layer (``"softmax"`` for a probability loss).
            Defaults to ``None``: raw scores.
        backend, dtype, seed: as for :class:`~nnbackend.Sequential`.

    Shapes: inputs (batch, *input_shape) → logits (batch, n_classes). The default on (1, 28, 28) has
    421,834 parameters: blocks give (32, 14, 14) and (64, 7, 7), flattened to 3,136 features.
    """
    if len(input_shape) != 3:
        raise ValueError(f"cnn input_shape must be (channels, height, width), got {tuple(input_shape)}")
    layers: list[Layer] = []
    in_channels = int(input_shape[0])
    for out_channels in channels:
        layers.append(Conv2D(in_channels, int(out_channels), 3, padding="same"))
        if batchnorm:
            layers.append(BatchNorm(int(out_channels)))
        layers += [MaxPool2D(2), ReLU()]
        in_channels = int(out_channels)
    layers += [Flatten(), Dense(None, hidden, "relu")]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(hidden, n_classes, output_activation))
    return Sequential(layers, input_shape=tuple(input_shape), backend=backend, dtype=dtype, seed=seed)


def mlp(
    input_size: int = 784,
    hidden: Sequence[int] = (512,),
    n_classes: int = 10,
    activation: str = "relu",
    *,
    dropout: float = 0.0,
    backend: str | Backend | None = None,
    dtype: str | None = None,
    seed: int | None = 0,
) -> Sequential:
    """A multi-layer perceptron (the paper's network): Dense layers of widths ``hidden`` with
    ``activation`` (each followed by Dropout when ``dropout > 0``), then Dense ``n_classes`` logits.

    Shapes: inputs (batch, input_size) → logits (batch, n_classes). Defaults: 784 → 512 → 10.
    """
    layers: list[Layer] = []
    width = input_size
    for units in hidden:
        layers.append(Dense(width, int(units), activation))
        if dropout:
            layers.append(Dropout(dropout))
        width = int(units)
    layers.append(Dense(width, n_classes))
    return Sequential(layers, input_shape=(input_size,), backend=backend, dtype=dtype, seed=seed)
