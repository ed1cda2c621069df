"""Optimizers, sorted by increasing complexity; update rules follow ``torch.optim``'s documentation."""

from __future__ import annotations

from typing import Any

from .adadelta import AdaDelta
from .adagrad import AdaGrad
from .adam import Adam, AdamW
from .base import Optimizer
from .gd import GD
from .rmsprop import RMSprop

__all__ = ["OPTIMIZERS", "AdaDelta", "AdaGrad", "Adam", "AdamW", "GD", "Optimizer", "RMSprop", "get_optimizer"]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": GD,
    "sgd": GD,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adadelta": AdaDelta,
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(optimizer: str | Optimizer, **hyperparameters: Any) -> Optimizer:
    """An optimizer from its name (``"gd"``, ``"adam"``, ...) and hyperparameters, or as given."""
    if isinstance(optimizer, Optimizer):
        if hyperparameters:
            raise ValueError("hyperparameters are given with an optimizer instance; set them on it instead")
        return optimizer
    key = str(optimizer).strip().lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key](**hyperparameters)
