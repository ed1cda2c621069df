"""Seeded host random streams.

All randomness (initial weights, shuffles, dropout masks) is drawn with NumPy on the host, in float64,
and only then cast and moved to a backend. So the same seed gives the same weights and the same batch
order on every backend and every dtype.

Each purpose has its own stream, derived from ``(seed, purpose)`` with ``SeedSequence``: drawing more
weights never changes the batch order, and the reverse. Each Dropout layer has a stream of its own, so a
layer's masks for a batch are the same whether the batch runs whole or in slices of rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STREAMS", "Streams", "generator", "get_state", "set_state"]

STREAMS = {"init": 0, "shuffle": 1, "dropout": 2}


def generator(seed: int | None, stream: str, index: int = 0) -> np.random.Generator:
    """A fresh ``numpy.random.Generator`` for ``stream`` (``"init"``, ``"shuffle"`` or ``"dropout"``).

    ``index`` numbers several streams of one purpose (the model's Dropout layers, in build order).
    ``seed=None`` draws fresh entropy from the OS (not reproducible).
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; choose one of {sorted(STREAMS)}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    # Index 0 keeps the one-number spawn key, so the first stream of each purpose draws what it always did.
    key = (STREAMS[stream],) if index == 0 else (STREAMS[stream], index)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def get_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as a JSON-ready dict (for checkpoints)."""
    return rng.bit_generator.state


def set_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore a state returned by :func:`get_state`."""
    rng.bit_generator.state = state


class Streams:
    """The generators a model draws from while it is built: ``init`` for the initial weights, and one
    per Dropout layer, in build order (each layer keeps its own)."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self.init = generator(seed, "init")
        self._dropout_layers = 0

    def new_dropout(self) -> np.random.Generator:
        """The stream of the next Dropout layer to be built."""
        self._dropout_layers += 1
        return generator(self.seed, "dropout", self._dropout_layers - 1)

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed})"
