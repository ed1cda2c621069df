"""The one exception the data package raises for data that cannot be used."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not the expected version.

    The message names the file (or the places searched), what is wrong, and how to fix it.
    """
