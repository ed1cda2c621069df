"""AdaGrad, as ``torch.optim.Adagrad`` (the paper's future work)."""

from __future__ import annotations

from typing import Any

from ..backend import namespace_of
from .base import Optimizer, check_positive

__all__ = ["AdaGrad"]


class AdaGrad(Optimizer):
    """Scale each coordinate by the root of its summed squared gradients.

    Per step ``t``: ``g += weight_decay * p``; ``lr_t = lr / (1 + (t - 1) lr_decay)``;
    ``s += g^2``; ``p -= lr_t g / (sqrt(s) + eps)``.

    Args:
        lr: learning rate. Defaults to ``0.01``.
        lr_decay: learning-rate decay. Defaults to ``0``.
        weight_decay: L2 penalty added to the gradient. Defaults to ``0``.
        initial_accumulator_value: the starting value of ``s``. Defaults to ``0``.
        eps: added to the denominator. Defaults to ``1e-10``.
    """

    hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(
        self,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(lr)
        self.lr_decay = check_positive("lr_decay", lr_decay, allow_zero=True)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.initial_accumulator_value = check_positive(
            "initial_accumulator_value", initial_accumulator_value, allow_zero=True
        )
        self.eps = check_positive("eps", eps)


    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        xp = namespace_of(param)
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        total = state.get("sum")
        if total is None:
            total = xp.full_like(param, self.initial_accumulator_value)
        total = total + grad * grad
        state["sum"] = total
        lr = self.lr / (1 + (step - 1) * self.lr_decay)
        return param - lr * (grad / (xp.sqrt(total) + self.eps))
