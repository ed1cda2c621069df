"""Array helpers shared by losses, metrics and the trainer: input checks and one-hot encoding.

Every check raises ``ValueError`` (``TypeError`` for a wrong kind of object) naming the argument,
what was expected and what arrived, before any state changes.
"""

from __future__ import annotations

import numbers
from typing import Any

import array_api_compat
import numpy as np

from .backend import Backend, namespace_of

__all__ = [
    "check_array",
    "check_labels",
    "check_same_length",
    "is_count",
    "is_float",
    "is_integer",
    "match_namespace",
    "one_hot",
]


def is_count(value: Any, minimum: int = 1) -> bool:
    """True for an integer (Python or NumPy, not a bool) >= ``minimum``: a size, a count, a patience."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def is_float(x: Any) -> bool:
    """True for a real floating-point array of any backend."""
    return namespace_of(x).isdtype(x.dtype, "real floating")


def is_integer(x: Any) -> bool:
    """True for a (signed or unsigned) integer array of any backend."""
    return namespace_of(x).isdtype(x.dtype, "integral")


def _describe(x: Any) -> str:
    module = type(x).__module__.split(".")[0]
    return f"{module} array of shape {tuple(x.shape)} and dtype {x.dtype}"


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    float_only: bool = False,
    finite: bool = False,
    backend: Backend | None = None,
) -> Any:
    """Check one input array and return it (NumPy lists/tuples become NumPy arrays).

    Args:
        x: the array.
        name: the argument's name, used in messages (``"x"``, ``"y"``, ``"validation x"``).
        ndim: the allowed rank(s).
        float_only: require a real floating dtype (integer images must be scaled to floats first).
        finite: reject NaN and infinity.
        backend: when given, ``x`` must be host NumPy data or live on this backend (same library and
            device): arrays of two backends are never mixed silently.
    """
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not array_api_compat.is_array_api_obj(x):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if getattr(x, "requires_grad", False):  # a torch tensor on autograd's tape: training would chain steps
        x = x.detach()
    if backend is not None and not isinstance(x, np.ndarray):
        if namespace_of(x) is not backend.xp:
            raise ValueError(
                f"{name} is a {_describe(x)}, but the model lives on {backend}; pass host NumPy data, "
                f"convert it with nnbackend.to_numpy(), or move the model with model.to(...)"
            )
        if str(array_api_compat.device(x)) != str(backend.device):
            raise ValueError(
                f"{name} is on device {array_api_compat.device(x)}, but the model is on {backend.device}"
            )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if x.ndim >= 1 and x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): nothing to work on")
    if float_only and not is_float(x):
        is_input = name.endswith(("x", "input"))  # data going into a model; not targets or predictions
        hint = " (scale images to floats first, e.g. x / 255)" if is_integer(x) and is_input else ""
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}{hint}")
    if finite and is_float(x):
        xp = namespace_of(x)
        if not bool(xp.all(xp.isfinite(x))):
            bad = int(xp.sum(xp.astype(~xp.isfinite(x), xp.int64)))
            raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return x


def match_namespace(x: Any, name: str, like: Any, like_name: str) -> Any:
    """``x`` in the namespace and on the device of ``like``: host NumPy data is moved there, an array of
    another library or device is refused (two backends are never mixed silently)."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    xp = namespace_of(like)
    device = array_api_compat.device(like)
    if isinstance(x, np.ndarray) and not isinstance(like, np.ndarray):
        return xp.asarray(x, device=device)
    if namespace_of(x) is not xp:
        raise ValueError(f"{name} is a {_describe(x)} but {like_name} is a {_describe(like)}; "
                         "arrays of two backends cannot be mixed (convert with nnbackend.to_numpy)")
    if str(array_api_compat.device(x)) != str(device):
        raise ValueError(f"{name} is on device {array_api_compat.device(x)} but {like_name} is on {device}")
    return x


def check_same_length(a: Any, a_name: str, b: Any, b_name: str) -> None:
    """``a`` and ``b`` must hold the same number of samples (first dimension)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of samples, got {a.shape[0]} and {b.shape[0]}"
        )


def check_labels(labels: Any, n_classes: int, name: str = "y") -> Any:
    """Integer class labels (N,) in ``[0, n_classes)``; returns them unchanged.

    This reads the smallest and largest label back to the host: call it once per data set, not per batch.
    """
    if labels.ndim != 1:
        raise ValueError(f"{name} must be class labels of shape (N,), got shape {tuple(labels.shape)}")
    if not is_integer(labels):
        raise ValueError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.shape[0] == 0:
        raise ValueError(f"{name} is empty: no labels")
    xp = namespace_of(labels)
    low, high = int(xp.min(labels)), int(xp.max(labels))
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(f"{name} holds label {bad}, outside [0, {n_classes}) for {n_classes} classes")
    return labels


def one_hot(labels: Any, n_classes: int, dtype: Any) -> Any:
    """(N,) integer labels → (N, n_classes) array of 0/1 in ``dtype``, on the labels' device."""
    xp = namespace_of(labels)
    classes = xp.arange(n_classes, device=array_api_compat.device(labels))
    return xp.astype(labels[:, None] == classes[None, :], dtype)

