"""Weight initialisers, drawn on the host in float64 (see :mod:`nnbackend.random`)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INITIALIZERS", "initialize"]

INITIALIZERS = ("he", "he_uniform", "glorot", "glorot_normal", "lecun", "zeros")


def initialize(
    name: str, shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw a ``shape`` float64 host array with initialiser ``name``.

    ``"he"`` is the paper's ``randn * sqrt(2 / fan_in)``; ``"he_uniform"`` U(±sqrt(6 / fan_in));
    ``"glorot"`` U(±sqrt(6 / (fan_in + fan_out))); ``"glorot_normal"`` N(0, 2 / (fan_in + fan_out));
    ``"lecun"`` N(0, 1 / fan_in); ``"zeros"`` zeros.
    """
    if name == "he":
        return rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    if name == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, shape)
    if name == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if name == "glorot_normal":
        return rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    if name == "lecun":
        return rng.standard_normal(shape) * math.sqrt(1.0 / fan_in)
    if name == "zeros":
        return np.zeros(shape)
    raise ValueError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
