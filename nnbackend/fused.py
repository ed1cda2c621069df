"""Fused element-wise kernels for NumPy arrays, from a small optional C module (``nnbackend/_fused.c``).

NumPy runs a chain of element-wise operations as one pass over memory per operation. For Adam that is
13 passes over every parameter per step (``m``, ``v``, the denominator, the step), which at batch 128
on a 784-512-256-10 network is about a quarter of a CPU epoch; one compiled loop does the same work in
one pass, as XLA does for a ``jax.jit`` step. Two smaller chains sit in every Dense + ReLU layer: the
bias and the ReLU of its fresh ``x @ W`` (NumPy's ``maximum`` with a scalar does not use its vector
loop: 34 us against 3.5 us for a 128 x 512 batch), and ReLU's backward mask. The kernels compute exactly
the operations of the NumPy path, in the same order and the same dtype (built without fused
multiply-adds or fast-math), so the results are bit-identical (tested).

``pip install`` compiles the module where a C compiler is present and skips it where none is. Without it,
with ``NNBACKEND_FUSED=0`` (or ``false``/``off``; read once per process), or for arrays a kernel does not
take (other libraries, dtypes other than float32 / float64, non-contiguous, misaligned or overlapping
memory), callers run their NumPy path. One difference from NumPy remains: the kernels raise no
floating-point warnings (``np.seterr``) for an overflow or an ``inf * 0``; the values are the same.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

import numpy as np

__all__ = ["ENV_VAR", "adam_step", "available", "bias_relu", "describe", "relu_mask"]

ENV_VAR = "NNBACKEND_FUSED"
#: The ``KERNELS_VERSION`` of ``_fused.c`` this module calls; an older build is not used.
KERNELS_VERSION = 2

_may_share_memory = np.may_share_memory  # bound once: called a few times per kernel call
_SUFFIX = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}
_UNSET = object()
_kernels: Any = _UNSET  # the compiled module, None when unavailable; decided on first use
_why_not = ""  # why the kernels are unavailable, for describe()


def available() -> bool:
    """True when the fused kernels are in use in this process (built, and not turned off)."""
    return _load() is not None


def describe() -> str:
    """One line for ``nnbackend backends``: whether the fused kernels are on here, and if not, why."""
    return ("on (compiled C module nnbackend._fused: Adam, Dense bias + ReLU)" if _load() is not None
            else f"off: {_why_not}")


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
    if not (_fusable(arrays) and _writes_alone((exp_avg, exp_avg_sq), (param, grad))):
        return None
    kernel = _kernel("adam", param.dtype)
    if kernel is None:
        return None
    new = np.empty_like(param)
    kernel(param, grad, exp_avg, exp_avg_sq, new, beta1, 1 - beta1, beta2, 1 - beta2, root_correction, eps,
           step_size)
    return new


def bias_relu(z: np.ndarray, bias: np.ndarray) -> bool:
    """``z = maximum(z + bias, 0)`` in ``z``'s memory, in one pass (NumPy: ``z += bias``, then
    ``maximum(z, 0, out=z)``).

    Args:
        z: a writeable C-contiguous float32 or float64 NumPy array whose last axis has ``len(bias)``
            entries (a Dense layer's fresh ``x @ W``, (batch, units)).
        bias: a C-contiguous 1-D array of ``z``'s dtype.

    Returns:
        True when done; False (nothing written) when the kernels are unavailable or do not take these
        arrays.
    """
    if not (_fusable((z,)) and _fusable((bias,)) and bias.dtype == z.dtype and bias.ndim == 1 and z.ndim >= 1
            and z.shape[-1] == bias.shape[0] > 0 and _writes_alone((z,), (bias,))):
        return False
    return _run("bias_relu", z.dtype, z, bias)


def relu_mask(grad: np.ndarray, y: np.ndarray) -> bool:
    """``grad = grad * (y > 0)`` in ``grad``'s memory, in one pass (ReLU's backward; NumPy: a bool mask,
    then a multiply).

    Args:
        grad: a writeable C-contiguous float32 or float64 NumPy array.
        y: ReLU's output, an array of ``grad``'s shape and dtype, C-contiguous.

    Returns:
        True when done; False (nothing written) when the kernels are unavailable or do not take these
        arrays.
    """
    if not (_fusable((grad, y)) and _writes_alone((grad,), (y,))):
        return False
    return _run("relu_mask", grad.dtype, grad, y)


def _run(name: str, dtype: np.dtype, *arrays: np.ndarray) -> bool:
    """Run kernel ``name`` for ``dtype`` on ``arrays``; False (nothing written) when the module is unavailable."""
    kernel = _kernel(name, dtype)
    if kernel is None:
        return False
    kernel(*arrays)
    return True


def _kernel(name: str, dtype: np.dtype) -> Any:
    """The compiled kernel ``name`` for ``dtype`` (float32 or float64), or None when the module is unavailable."""
    kernels = _load()
    return None if kernels is None else getattr(kernels, f"{name}_{_SUFFIX[dtype]}")


def _fusable(arrays: tuple[Any, ...]) -> bool:
    """NumPy arrays of one shape and one float dtype, C-contiguous and aligned (read through T*)."""
    first = arrays[0]
    return all(type(a) is np.ndarray and a.dtype == first.dtype and a.shape == first.shape
               and a.flags.c_contiguous and a.flags.aligned for a in arrays) and first.dtype in _SUFFIX


def _writes_alone(written: tuple[np.ndarray, ...], read: tuple[np.ndarray, ...]) -> bool:
    """The arrays a kernel writes are writeable and share no memory with each other or with the ones it
    reads (a loop over overlapping memory would not give NumPy's whole-array results)."""
    others = written + read
    for i, a in enumerate(written):
        if not a.flags.writeable:
            return False
        for b in others[i + 1:]:
            if _may_share_memory(a, b):
                return False
    return True


def _load() -> Any:
    global _kernels, _why_not
    if _kernels is _UNSET:
        _kernels = None
        setting = os.environ.get(ENV_VAR, "1").strip()
        if setting.lower() in ("0", "false", "no", "off"):
            _why_not = f"{ENV_VAR}={setting}"
            return None
        try:
            _fused = importlib.import_module(f"{__package__}._fused")
        except ImportError:
            _why_not = ("the C module was not built (no C compiler or no Python headers, e.g. python3-dev, "
                        "when nnbackend was installed); with both present, rebuild it: pip install -e . in a "
                        "checkout, or pip install --no-cache-dir --force-reinstall nnbackend")
            return None
        if getattr(_fused, "KERNELS_VERSION", None) != KERNELS_VERSION:
            _why_not = (f"the built C module is version {getattr(_fused, 'KERNELS_VERSION', '?')}, this code "
                        f"needs {KERNELS_VERSION}: rebuild it (pip install -e . in a checkout)")
            warnings.warn(f"nnbackend: {_why_not}; NumPy's slower multi-pass path is used instead",
                          RuntimeWarning, stacklevel=3)
            return None
        _kernels = _fused
    return _kernels
