"""nnbackend: a neural-network engine written once against the Python Array API.

The same layers, losses and optimizers run on NumPy (CPU), CuPy (CUDA), PyTorch and any other
Array-API library; a :class:`Backend` says where work runs.
"""

from __future__ import annotations

__version__ = "0.1.0"  # before the imports: submodules record it

from . import data, io, layers, losses, metrics, models, optimizers, parity, plots
from .backend import (
    Backend,
    BackendInfo,
    BackendUnavailableError,
    available_backends,
    get_backend,
    to_numpy,
)
from .history import History
from .io import CheckpointError, load_model, save_model
from .model import Sequential
from .training import Callback, EarlyStopping, LearningRateDecay, Trainer, TrainingInterrupted


__all__ = [
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "Callback",
    "CheckpointError",
    "EarlyStopping",
    "History",
    "LearningRateDecay",
    "Sequential",
    "Trainer",
    "TrainingInterrupted",
    "__version__",
    "available_backends",
    "data",
    "get_backend",
    "io",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "parity",
    "plots",
    "save_model",
    "to_numpy",
]
