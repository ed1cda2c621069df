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

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Callable

import array_api_compat
import numpy as np

__all__ = ["THREADS_ENV", "cpu_threads", "split_elementwise", "ufuncs", "writeable"]

THREADS_ENV = "NNBACKEND_NUM_THREADS"
"""Environment variable: how many threads NumPy element-wise chains may use (default: the CPUs this
process may run on). BLAS keeps its own setting (OPENBLAS_NUM_THREADS, threadpoolctl)."""

MIN_PART = 1 << 15
"""Elements per part below which handing work to another thread (~20 us) costs more than it saves."""


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


def cpu_threads() -> int:
    """Threads for NumPy element-wise chains: ``$NNBACKEND_NUM_THREADS``, else the usable CPUs."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        return max(1, int(value))
    return _USABLE_CPUS


try:
    _USABLE_CPUS = len(os.sched_getaffinity(0))
except AttributeError:  # not on Linux
    _USABLE_CPUS = os.cpu_count() or 1


_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] = (0, 0)


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), workers)  # a forked child has none of its parent's threads: make new ones
    if _pool is None or _pool_key != key:
        _pool = ThreadPoolExecutor(workers, thread_name_prefix="nnbackend")
        _pool_key = key
    return _pool


def split_elementwise(fn: Callable[..., None], *arrays: np.ndarray) -> None:
    """Run ``fn(*arrays)``, an element-wise chain writing its results into some of ``arrays`` (NumPy
    arrays of one shape), as ``fn`` on contiguous parts shared by up to :func:`cpu_threads` threads.

    NumPy releases the GIL inside each ufunc, so the parts run in parallel, and the results are those
    of one call (element-wise work has no order to change). The calling thread takes parts too, and
    helper threads that have not started by the time it runs out of parts are cancelled, not waited
    for: on a busy machine, where a helper may not get a core for milliseconds, the caller simply does
    the work itself. Arrays that are not C-contiguous, or too small to share, run in one call.
    """
    size = arrays[0].size
    threads = min(cpu_threads(), size // MIN_PART)
    if threads < 2 or not all(a.flags.c_contiguous for a in arrays):
        fn(*arrays)
        return
    parts = min(2 * threads, size // MIN_PART)  # smaller parts: less to wait for if a helper stalls
    bounds = [size * i // parts for i in range(parts + 1)]
    flat = [a.reshape(-1) for a in arrays]  # views, since every array is C-contiguous
    todo = iter(range(parts))  # next() on a range iterator is atomic under the GIL

    def drain() -> None:
        for i in todo:
            fn(*(f[bounds[i]:bounds[i + 1]] for f in flat))

    pool = _get_pool(threads - 1)
    helpers = [pool.submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for helper in helpers:
            if not helper.cancel():  # it started: it may hold a part
                helper.result()
