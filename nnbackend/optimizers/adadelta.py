"""AdaDelta, as ``torch.optim.Adadelta`` (the paper's future work)."""

from __future__ import annotations

from typing import Any

from ..backend import namespace_of
from .base import Optimizer, check_positive, check_unit_interval

__all__ = ["AdaDelta"]


class AdaDelta(Optimizer):
    """Step sizes from running averages of squared gradients and squared updates.

    Per step: ``g += weight_decay * p``; ``v = rho v + (1 - rho) g^2``;
    ``d = sqrt(u + eps) / sqrt(v + eps) * g``; ``u = rho u + (1 - rho) d^2``; ``p -= lr d``.

    Args:
        lr: scale applied to the update. Defaults to ``1.0``.
        rho: decay rate of the running averages, in [0, 1). Defaults to ``0.9``.
        eps: added inside the roots. Defaults to ``1e-6``.
        weight_decay: L2 penalty added to the gradient. Defaults to ``0``.
    """

    hyperparameters = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        super().__init__(lr)
        self.rho = check_unit_interval("rho", rho)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)


    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        xp = namespace_of(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = self.rho * self._zeros(state, "square_avg", param) + (1 - self.rho) * (grad * grad)
        acc_delta = self._zeros(state, "acc_delta", param)
        delta = xp.sqrt(acc_delta + self.eps) / xp.sqrt(square_avg + self.eps) * grad
        state["square_avg"] = square_avg
        state["acc_delta"] = self.rho * acc_delta + (1 - self.rho) * (delta * delta)
        return param - self.lr * delta
