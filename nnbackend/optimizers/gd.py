"""Gradient descent, with optional (Nesterov) momentum and L2 weight decay, as ``torch.optim.SGD``."""

from __future__ import annotations

from typing import Any

from ..backend import namespace_of
from .base import Optimizer, check_positive, check_unit_interval

__all__ = ["GD"]


class GD(Optimizer):
    """Gradient descent (the paper's GD; with full batches, plain gradient descent).

    Per step, with ``g`` the gradient: ``g += weight_decay * p``; with momentum ``mu``,
    ``b = g`` on the first step, then ``b = mu * b + (1 - dampening) * g``, and ``g = g + mu * b``
    (Nesterov) or ``g = b``; finally ``p -= lr * g``. This is ``torch.optim.SGD``'s documented rule.

    Args:
        lr: learning rate. Defaults to ``0.1``.
        momentum: momentum factor in [0, 1). Defaults to ``0`` (none).
        dampening: dampening for momentum in [0, 1). Defaults to ``0``.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0). Defaults to ``False``.
        weight_decay: L2 penalty added to the gradient. Defaults to ``0``.
    """

    hyperparameters = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.momentum = check_unit_interval("momentum", momentum)
        self.dampening = check_unit_interval("dampening", dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")


    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state.get("momentum_buffer")
            # A copy on the first step: the gradient array may be reused by the next backward pass.
            buf = namespace_of(grad).asarray(grad, copy=True) if buf is None else \
                self.momentum * buf + (1 - self.dampening) * grad
            state["momentum_buffer"] = buf
            grad = grad + self.momentum * buf if self.nesterov else buf
        return param - self.lr * grad
