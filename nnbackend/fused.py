"""Fused element-wise kernels for NumPy arrays, compiled with Numba when it is installed.

NumPy runs a chain of element-wise operations as one pass over memory per operation. For Adam that is
13 passes over every parameter per step (``m``, ``v``, the denominator, the step), which at batch 128
on a 784-512-256-10 network is about a third of a CPU epoch; a compiled loop does the same work in one
pass, as XLA does for a ``jax.jit`` step. The kernels here compute exactly the operations of the
NumPy path, in the same order and the same dtype: Numba compiles without fast-math, so nothing is
reassociated or contracted into fused multiply-adds, and the results are bit-identical (tested).

Numba is optional (``pip install nnbackend[fast]``). Without it, with ``NNBACKEND_FUSED=0``, or for
arrays a kernel does not take (other libraries, other dtypes than float32 / float64, non-contiguous
memory), callers keep their NumPy path. The first use in a process imports Numba and loads the
compiled kernels from Numba's on-disk cache (compiling them, about a second, the first time).
"""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["ENV_VAR", "adam_step", "available"]

ENV_VAR = "NNBACKEND_FUSED"

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_UNSET = object()
_kernels: Any = _UNSET  # the compiled kernels, None when unavailable; decided on first use


def available() -> bool:
    """True when the fused kernels are in use in this process (Numba installed, not turned off)."""
    return _load() is not None


def adam_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, *,
              beta1: float, beta2: float, eps: float, step_size: float, root_correction: float) -> np.ndarray | None:
    """One Adam step in a single pass: updates ``exp_avg`` and ``exp_avg_sq`` in place and returns the
    new parameter as a fresh array (``param`` is not written).

    Per element, in the dtype of the arrays: ``m = m * b1 + g * (1 - b1)``;
    ``v = v * b2 + (g * g) * (1 - b2)``; ``new = p - m / (sqrt(v) / root_correction + eps) * step_size``,
    the operations and order of :meth:`nnbackend.optimizers.Adam._update`.

    Args:
        param, grad, exp_avg, exp_avg_sq: NumPy arrays of one shape and one dtype (float32 or float64),
            C-contiguous; ``exp_avg`` and ``exp_avg_sq`` writeable.
        beta1, beta2, eps: Adam's settings.
        step_size: ``lr / (1 - beta1**t)``.
        root_correction: ``sqrt(1 - beta2**t)``.

    Returns:
        The new parameter, or None (nothing written) when the kernels are unavailable or do not take
        these arrays; the caller then runs its NumPy path.
    """
    arrays = (param, grad, exp_avg, exp_avg_sq)
    if not (_fusable(arrays) and exp_avg.flags.writeable and exp_avg_sq.flags.writeable):
        return None
    kernels = _load()
    if kernels is None:
        return None
    scalar = param.dtype.type  # constants rounded to the arrays' dtype, as NumPy does with Python floats
    new = np.empty_like(param)
    kernels.adam(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
                 new.reshape(-1), scalar(beta1), scalar(1 - beta1), scalar(beta2), scalar(1 - beta2),
                 scalar(root_correction), scalar(eps), scalar(step_size))
    return new


def _fusable(arrays: tuple[Any, ...]) -> bool:
    first = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == first.shape
               and a.flags.c_contiguous for a in arrays) and first.dtype in _FLOATS


def _load() -> Any:
    global _kernels
    if _kernels is _UNSET:
        _kernels = None if os.environ.get(ENV_VAR, "1").strip() == "0" else _compile()
    return _kernels


def _compile() -> SimpleNamespace | None:
    try:
        import numba
    except ImportError:  # not installed, or a version that does not support this NumPy
        return None
    # error_model="numpy": division by zero gives inf/nan as NumPy does, and the loop vectorises
    # (Python's error model checks every division and does not).
    failure = None
    for cache in (True, False):  # without a writable cache location Numba compiles in memory only
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Numba's cache warnings; a failure is reported below
                kernel = numba.njit(cache=cache, nogil=True, error_model="numpy")(_adam_loop)
                for dtype in _FLOATS:  # compile (or load) both signatures now, not inside a step
                    one = np.ones(1, dtype)
                    kernel(one, one, one.copy(), one.copy(), one.copy(), *[dtype.type(0.5)] * 7)
            return SimpleNamespace(adam=kernel)
        except Exception as error:  # noqa: BLE001 - any failure means: use the NumPy path
            failure = error
    warnings.warn(f"nnbackend: Numba is installed but its kernels did not compile ({failure}); "
                  f"the optimizers use NumPy's slower multi-pass path", RuntimeWarning, stacklevel=3)
    return None


def _adam_loop(p, g, m, v, out, b1, one_minus_b1, b2, one_minus_b2, root_correction, eps, step_size):  # pragma: no cover - compiled
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * b1 + gi * one_minus_b1
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        m[i] = mi
        v[i] = vi
        out[i] = p[i] - (mi / (np.sqrt(vi) / root_correction + eps)) * step_size
