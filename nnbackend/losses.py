"""Losses: a value and its gradient with respect to the model's output.

Every loss takes ``pred`` (batch, outputs), a float array on any backend, and ``target``: integer class
labels (batch,) in ``[0, outputs)`` or a float array shaped like ``pred`` (one-hot rows, class
probabilities, or regression targets). Values are means over the batch (see each class for the exact
normaliser) returned as 0-d arrays on the device: nothing is read back to the host.
"""

from __future__ import annotations

from typing import Any

from .arrays import check_array, check_labels, check_same_length, is_integer, one_hot
from .backend import namespace_of
from .inplace import writeable

__all__ = ["LOSSES", "BinaryCrossEntropy", "CrossEntropy", "Loss", "MSE", "get_loss"]


class Loss:
    """Base class: :meth:`__call__` for the value, :meth:`gradient` for ``dL/dpred``.

    Subclasses implement :meth:`_value_and_gradient` on a dense target (same shape as ``pred``).
    """

    #: True when ``pred`` is expected to be raw scores (no Softmax/Sigmoid at the end of the model).
    expects_logits = False

    def __call__(self, pred: Any, target: Any) -> Any:
        return self.value_and_gradient(pred, target)[0]

    def gradient(self, pred: Any, target: Any) -> Any:
        """``dL/dpred``, same shape, dtype and device as ``pred``."""
        return self.value_and_gradient(pred, target)[1]

    def value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        """The loss (0-d array) and ``dL/dpred``, sharing the work of both."""
        return self._value_and_gradient(pred, self.dense_target(pred, target))

    def dense_target(self, pred: Any, target: Any) -> Any:
        """Check ``target`` against ``pred`` and return it as a float array shaped like ``pred``."""
        check_array(pred, "pred", ndim=2, float_only=True)
        check_array(target, "target", ndim=(1, 2))
        check_same_length(pred, "pred", target, "target")
        if target.ndim == 1 and is_integer(target):
            check_labels(target, pred.shape[1], "target")
            return one_hot(target, pred.shape[1], pred.dtype)
        if tuple(target.shape) != tuple(pred.shape):
            raise ValueError(
                f"target must be integer labels of shape ({pred.shape[0]},) or a float array of shape "
                f"{tuple(pred.shape)} like pred, got shape {tuple(target.shape)} and dtype {target.dtype}"
            )
        check_array(target, "target", float_only=True)
        return namespace_of(pred).astype(target, pred.dtype)

    def _value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement _value_and_gradient()")

    def get_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class CrossEntropy(Loss):
    """Categorical cross-entropy ``-sum_c t_c log p_c``, averaged over the batch.

    Args:
        from_logits: ``True`` (default): ``pred`` holds raw scores and the log-softmax is fused in (exact
            and finite for scores of any magnitude; gradient ``(softmax(pred) - t) / N``).
            ``False``: ``pred`` holds probabilities (a Softmax output), clipped to ``[clip, 1]`` before
            the log; gradient ``-t / p / N``.
        clip: the smallest probability used when ``from_logits=False``. Defaults to ``1e-10``.
    """

    def __init__(self, from_logits: bool = True, clip: float = 1e-10) -> None:
        self.from_logits = bool(from_logits)
        self.expects_logits = self.from_logits
        self.clip = float(clip)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "clip": self.clip}

    def _value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = namespace_of(pred)
        n = pred.shape[0]
        if self.from_logits:
            shifted = pred - xp.max(pred, axis=1, keepdims=True)
            exp = xp.exp(shifted)
            total = xp.sum(exp, axis=1, keepdims=True)
            mass = xp.sum(target, axis=1, keepdims=True)
            if writeable(shifted) and writeable(exp):  # the same maths in our own temporaries
                shifted -= xp.log(total)  # now the log-probabilities
                value = -xp.sum(target * shifted) / n
                exp /= total
                exp *= mass
                exp -= target
                exp /= n
                return value, exp
            log_probs = shifted - xp.log(total)
            value = -xp.sum(target * log_probs) / n
            grad = (exp / total * mass - target) / n
            return value, grad
        p = xp.clip(pred, self.clip, 1.0)
        return -xp.sum(target * xp.log(p)) / n, -target / p / n


class BinaryCrossEntropy(Loss):
    """Element-wise binary cross-entropy, averaged over all ``N * C`` entries.

    With a Softmax output and one-hot targets this is exactly the paper's "cross-entropy":
    ``-mean(t log p + (1 - t) log(1 - p))`` with ``p`` clipped to ``[clip, 1 - clip]``, its gradient
    ``(p - t) / (p (1 - p)) / (N C)`` flowing back through the Softmax.

    Args:
        from_logits: ``False`` (default): ``pred`` holds probabilities. ``True``: raw scores, with the
            sigmoid fused in (gradient ``(sigmoid(pred) - t) / (N C)``).
        clip: probability clipping when ``from_logits=False``. Defaults to ``1e-10`` (the paper's).
    """

    def __init__(self, from_logits: bool = False, clip: float = 1e-10) -> None:
        self.from_logits = bool(from_logits)
        self.expects_logits = self.from_logits
        self.clip = float(clip)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "clip": self.clip}

    def _value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = namespace_of(pred)
        count = pred.shape[0] * pred.shape[1]
        if self.from_logits:
            e = xp.exp(-xp.abs(pred))
            value = xp.sum(xp.maximum(pred, 0) - pred * target + xp.log1p(e)) / count
            sigmoid = xp.where(pred >= 0, 1 / (1 + e), e / (1 + e))
            return value, (sigmoid - target) / count
        p = xp.clip(pred, self.clip, 1.0 - self.clip)
        value = -xp.sum(target * xp.log(p) + (1 - target) * xp.log(1 - p)) / count
        return value, (p - target) / (p * (1 - p)) / count


class MSE(Loss):
    """Mean squared error over all entries: ``mean((pred - t)^2)``, gradient ``2 (pred - t) / (N C)``.

    Integer labels are one-hot encoded first (as the paper did when training classifiers with MSE).
    """

    def _value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = namespace_of(pred)
        diff = pred - target
        count = pred.shape[0] * pred.shape[1]
        return xp.sum(diff * diff) / count, 2 * diff / count


LOSSES: dict[str, type[Loss]] = {
    "cross_entropy": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "bce": BinaryCrossEntropy,
    "mse": MSE,
}


def get_loss(loss: str | Loss) -> Loss:
    """A loss from its name (``"cross_entropy"``, ``"binary_cross_entropy"``/``"bce"``, ``"mse"``)."""
    if isinstance(loss, Loss):
        return loss
    key = str(loss).strip().lower().replace("-", "_")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[key]()
