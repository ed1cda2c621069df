"""Keeping freed host memory for reuse during training (glibc's malloc settings).

A training step allocates the same big temporaries every time (activations, im2col columns, their
gradients) and frees them at the end of the step. With glibc's defaults, arrays above a size threshold
are mapped fresh from the kernel and unmapped when freed, and free memory at the top of the heap is
handed back to the kernel: the next step then faults in and zeroes the same pages again. Measured on a
2-core machine, a full-batch epoch of 784-512-256-10 (in 2048-row slices) took 69,000 page faults and
0.25 s of system time, and 500 faults with the settings below (peak memory 289 -> 298 MiB; epoch time
0.84x in the benchmark, bench/README.md); a step of ``models.cnn()`` 3,300 faults and 14 ms of system
time, none with them. NumPy offers no memory pool, so :class:`~nnbackend.Trainer` asks malloc to keep
freed memory instead.

The settings are process-wide, as malloc is; ``NNBACKEND_KEEP_FREED_MEMORY=0`` leaves malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["ENV_VAR", "KEEP_FREE_BYTES", "POOLED_BYTES", "keep_freed_memory"]

ENV_VAR = "NNBACKEND_KEEP_FREED_MEMORY"

#: Free memory at the top of the heap that malloc keeps instead of returning it (``M_TRIM_THRESHOLD``).
KEEP_FREE_BYTES = 256 * 1024 * 1024
#: Blocks up to this size come from the heap, not from fresh mappings (``M_MMAP_THRESHOLD``; glibc's
#: own adaptive threshold stops at the same 32 MiB on 64-bit systems).
POOLED_BYTES = 32 * 1024 * 1024

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_applied: bool | None = None  # None: not tried yet in this process


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep up to :data:`KEEP_FREE_BYTES` of freed memory and to serve blocks up
    to :data:`POOLED_BYTES` from it. Once per process; later calls return the first answer.

    Returns True when the settings are in effect; False on other C libraries (macOS, Windows, musl)
    or when ``$NNBACKEND_KEEP_FREED_MEMORY`` is ``0``, in which case nothing was changed.
    """
    global _applied
    if _applied is None:
        _applied = os.environ.get(ENV_VAR, "1").strip() != "0" and _set_glibc_thresholds()
    return _applied


def _set_glibc_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # not glibc: musl's mallopt accepts the call and changes nothing
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Both, and the mmap one first: setting either turns glibc's adaptive thresholds off.
    return bool(mallopt(_M_MMAP_THRESHOLD, POOLED_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP_FREE_BYTES))
