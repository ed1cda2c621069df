"""Losses: a value and its gradient with respect to the model's output.

Every loss takes ``pred`` (batch, outputs), a float array on any backend, and ``target``: integer class
labels (batch,) in ``[0, outputs)`` or a float array shaped like ``pred`` (one-hot rows, class
probabilities, or regression targets). Values are means over the batch (see each class for the exact
normaliser) returned as 0-d arrays on the device: nothing is read back to the host.
"""

from __future__ import annotations

from typing import Any

from .arrays import check_array, check_labels, check_same_length, is_integer, match_namespace, one_hot
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
        """The mean loss over the batch, a 0-d array on ``pred``'s device (``float(...)`` reads it)."""
        return self.value_and_gradient(pred, target)[0]

    def gradient(self, pred: Any, target: Any) -> Any:
        """``dL/dpred``, same shape, dtype and device as ``pred``."""
        return self.value_and_gradient(pred, target)[1]

    def value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        """The loss (0-d array) and ``dL/dpred``, sharing the work of both."""
        return self._value_and_gradient(pred, self.dense_target(pred, target))

    def dense_target(self, pred: Any, target: Any) -> Any:
        """Check ``target`` against ``pred`` and return it as a float array shaped like ``pred``."""
        pred = check_array(pred, "pred", ndim=2, float_only=True)
        target = match_namespace(check_array(target, "target", ndim=(1, 2)), "target", pred, "pred")
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


class _ProbabilityLoss(Loss):
    """A loss on scores (``from_logits=True``) or on probabilities clipped away from 0 by ``clip``."""

    def __init__(self, from_logits: bool, clip: float) -> None:
        if not 0 < clip < 0.5:
            raise ValueError(f"clip must be in (0, 0.5), got {clip!r}")
        self.from_logits = bool(from_logits)
        self.expects_logits = self.from_logits
        self.clip = float(clip)

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "clip": self.clip}


class CrossEntropy(_ProbabilityLoss):
    """Categorical cross-entropy ``-sum_c t_c log p_c``, averaged over the batch.

    Args:
        from_logits: ``True`` (default): ``pred`` holds raw scores and the log-softmax is fused in (exact
            and finite for scores of any magnitude; gradient ``(softmax(pred) - t) / N``).
            ``False``: ``pred`` holds probabilities (a Softmax output), clipped to ``[clip, 1]`` before
            the log; gradient ``-t / p / N``.
        clip: the smallest probability used when ``from_logits=False``. Defaults to ``1e-10``.
    """

    def __init__(self, from_logits: bool = True, clip: float = 1e-10) -> None:
        super().__init__(from_logits, clip)

    #: Why one output cannot work: said by :meth:`dense_target` and by the Trainer before it trains.
    ONE_OUTPUT = ("CrossEntropy needs 2 or more outputs: over one output the softmax is always 1, so the loss "
                  "is always 0 and nothing trains; for two classes give the model 2 outputs, or keep 1 output "
                  "and use BinaryCrossEntropy(from_logits=True) with float targets of shape (N, 1)")

    def dense_target(self, pred: Any, target: Any) -> Any:
        if len(pred.shape) == 2 and pred.shape[1] == 1:
            raise ValueError(self.ONE_OUTPUT)
        return super().dense_target(pred, target)

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
        p = xp.maximum(pred, self.clip)  # (no clip(): array-api-compat's CuPy clip syncs with the host)
        return -xp.sum(target * xp.log(p)) / n, -target / p / n


class BinaryCrossEntropy(_ProbabilityLoss):
    """Element-wise binary cross-entropy, averaged over all ``N * C`` entries.

    With a Softmax output and one-hot targets this is exactly the paper's "cross-entropy":
    ``-mean(t log p + (1 - t) log(1 - p))`` with ``p`` clipped to ``[clip, 1 - clip]`` (in float32 the
    upper bound is the largest float below 1, since ``1 - 1e-10`` rounds to 1), its gradient
    ``(p - t) / (p (1 - p)) / (N C)`` flowing back through the Softmax.

    Args:
        from_logits: ``False`` (default): ``pred`` holds probabilities. ``True``: raw scores, with the
            sigmoid fused in (gradient ``(sigmoid(pred) - t) / (N C)``).
        clip: probability clipping when ``from_logits=False``. Defaults to ``1e-10`` (the paper's).
        paper_gradient: divide the gradient by ``N`` only, as the paper's code did, instead of by ``N C``:
            its updates are ``C`` times the derivative of the loss it reports. Only this reproduces the
            paper's gradient-descent learning-rate table (with it, lr 0.5 reaches the paper's 95.8% on
            MNIST; without, about 90%); Adam is unaffected. Defaults to ``False`` (the exact gradient).
    """

    def __init__(self, from_logits: bool = False, clip: float = 1e-10, paper_gradient: bool = False) -> None:
        super().__init__(from_logits, clip)
        self.paper_gradient = bool(paper_gradient)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "paper_gradient": self.paper_gradient}

    def _value_and_gradient(self, pred: Any, target: Any) -> tuple[Any, Any]:
        xp = namespace_of(pred)
        count = pred.shape[0] * pred.shape[1]
        grad_count = pred.shape[0] if self.paper_gradient else count
        if self.from_logits:
            e = xp.exp(-xp.abs(pred))
            value = xp.sum(xp.maximum(pred, 0) - pred * target + xp.log1p(e)) / count
            sigmoid = xp.exp(xp.minimum(pred, 0)) / (1 + e)  # no where(): see layers.activations._sigmoid
            return value, (sigmoid - target) / grad_count
        # In float32 1 - 1e-10 rounds to 1: a saturated output would give log(0) and a 0/0 gradient, so the
        # upper bound is kept at least half an eps below 1 (float64 keeps the paper's 1 - clip exactly).
        upper = min(1.0 - self.clip, 1.0 - float(xp.finfo(pred.dtype).eps) / 2)
        p = xp.minimum(xp.maximum(pred, self.clip), upper)  # not clip(): see CrossEntropy
        value = -xp.sum(target * xp.log(p) + (1 - target) * xp.log(1 - p)) / count
        return value, (p - target) / (p * (1 - p)) / grad_count


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
