"""Layers: each maps a batch forward and its gradient backward.

``layer_from_config`` rebuilds any layer from ``{"type": name, **constructor_args}``.
"""

from __future__ import annotations

from typing import Any

from .activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    get_activation,
)
from .base import Layer
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm
from .pooling import AvgPool2D, MaxPool2D
from .reshape import Flatten

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "get_activation",
    "layer_from_config",
    "layer_to_config",
]

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (
        AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, Identity, LeakyReLU, MaxPool2D, ReLU, Sigmoid,
        Softmax, Softplus, Tanh,
    )
}


def layer_to_config(layer: Layer) -> dict[str, Any]:
    """``{"type": "Dense", **constructor_args}``, JSON-ready."""
    return {"type": type(layer).__name__, **layer.get_config()}


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from :func:`layer_to_config`'s output."""
    config = dict(config)
    name = config.pop("type", None)
    if name not in LAYERS:
        raise ValueError(f"unknown layer type {name!r}; known: {', '.join(sorted(LAYERS))}")
    activation = config.get("activation")
    if isinstance(activation, dict):
        config["activation"] = layer_from_config(activation)
        if type(config["activation"]) not in ACTIVATIONS.values():
            raise ValueError(f"{activation.get('type')!r} is not an activation; choose one of {', '.join(ACTIVATIONS)}")
    return LAYERS[name](**config)
