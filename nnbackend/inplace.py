"""When the engine may write into an array, and with which functions.

The engine's maths is written functionally against the Array API. In the hot loop some arrays are the
engine's own: a layer's fresh ``x @ W`` before the bias and activation, a layer's gradient buffers, an
optimizer's moment estimates. Overwriting those instead of allocating new ones saves a pass over memory
and, with NumPy, the page faults of a fresh multi-megabyte array on every step (glibc returns large
blocks to the kernel on ``free``). These helpers say when that is allowed; every caller keeps its
functional path for read-only arrays (JAX, the read-only NumPy parity row) and for libraries that
cannot write in place.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["add_into", "ufuncs", "writeable"]


def writeable(x: Any) -> bool:
    """True when ``x`` may be modified in place (False for JAX arrays and read-only NumPy arrays)."""
    if type(x) is np.ndarray:  # the hot case, without array_api_compat's dispatch
        return bool(x.flags.writeable)
    return array_api_compat.is_writeable_array(x)


def ufuncs(x: Any) -> ModuleType | None:
    """The library whose ufuncs take ``out=`` for ``x`` (NumPy or CuPy), or None for other libraries.

    With it a chain of element-wise steps can run in a preallocated buffer, with no temporaries.
    """
    if isinstance(x, np.ndarray):
        return np
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return None


def add_into(own: Any, other: Any) -> Any:
    """``own + other``, written into ``own`` when it may be (the caller's own fresh array: a layer's
    ``x @ W``, a running sum), else a new array. ``other`` must broadcast to ``own``'s shape."""
    if writeable(own):
        own += other
        return own
    return own + other
