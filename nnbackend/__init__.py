"""nnbackend: a neural-network engine written once against the Python Array API.

The same layers, losses and optimizers run on NumPy (CPU), CuPy (CUDA), PyTorch and any other
Array-API library; a :class:`Backend` says where work runs.
"""

from __future__ import annotations

from . import layers, losses, models, optimizers
from .backend import (
    Backend,
    BackendInfo,
    BackendUnavailableError,
    available_backends,
    get_backend,
    to_numpy,
)
from .history import History
from .model import Sequential
from .training import Callback, EarlyStopping, Trainer

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "Callback",
    "EarlyStopping",
    "History",
    "Sequential",
    "Trainer",
    "__version__",
    "available_backends",
    "get_backend",
    "layers",
    "losses",
    "models",
    "optimizers",
    "to_numpy",
]
