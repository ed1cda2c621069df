"""RMSprop, as ``torch.optim.RMSprop`` (the paper's future work)."""

from __future__ import annotations

from typing import Any

from ..backend import namespace_of
from .base import Optimizer, check_positive, check_unit_interval

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """Divide the gradient by a running root mean square of recent gradients.

    Per step: ``g += weight_decay * p``; ``v = alpha v + (1 - alpha) g^2``; centred: ``a = alpha a +
    (1 - alpha) g`` and ``v~ = v - a^2``, else ``v~ = v``; with momentum ``mu``: ``b = mu b + g /
    (sqrt(v~) + eps)``, ``p -= lr b``; without: ``p -= lr g / (sqrt(v~) + eps)``.

    Args:
        lr: learning rate. Defaults to ``0.01``.
        alpha: smoothing constant in [0, 1). Defaults to ``0.99``.
        eps: added to the denominator. Defaults to ``1e-8``.
        weight_decay: L2 penalty added to the gradient. Defaults to ``0``.
        momentum: momentum factor in [0, 1). Defaults to ``0``.
        centered: normalise by an estimate of the gradient's variance. Defaults to ``False``.
    """

    hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(lr)
        self.alpha = check_unit_interval("alpha", alpha)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.momentum = check_unit_interval("momentum", momentum)
        self.centered = bool(centered)


    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        xp = namespace_of(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = self.alpha * self._zeros(state, "square_avg", param) + (1 - self.alpha) * (grad * grad)
        state["square_avg"] = square_avg
        if self.centered:
            grad_avg = self.alpha * self._zeros(state, "grad_avg", param) + (1 - self.alpha) * grad
            state["grad_avg"] = grad_avg
            square_avg = square_avg - grad_avg * grad_avg
        scaled = grad / (xp.sqrt(square_avg) + self.eps)
        if self.momentum:
            scaled = self.momentum * self._zeros(state, "momentum_buffer", param) + scaled
            state["momentum_buffer"] = scaled
        return param - self.lr * scaled
