"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW``."""

from __future__ import annotations

import math
from typing import Any

from .. import fused
from ..backend import namespace_of
from ..inplace import ufuncs
from .base import Optimizer, check_positive, check_unit_interval

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam with bias correction (the paper's second optimizer).

    Per step ``t``: ``g += weight_decay * p``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (with ``amsgrad``, ``v`` in the
    denominator is the running maximum of ``v``). ``t`` counts steps (the paper's code counted epochs,
    which is the same with full batches). The state is torch's ``exp_avg`` (``m``) and ``exp_avg_sq``
    (``v``).

    Args:
        lr: learning rate. Defaults to ``0.001``.
        betas: ``(b1, b2)`` decay rates of the moment estimates, each in [0, 1). Defaults to ``(0.9, 0.999)``.
        eps: added to the denominator. Defaults to ``1e-8``.
        weight_decay: L2 penalty added to the gradient. Defaults to ``0``.
        amsgrad: use the AMSGrad variant. Defaults to ``False``.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad")

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_unit_interval("beta1", betas[0]), check_unit_interval("beta2", betas[1]))
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.amsgrad = bool(amsgrad)

    def _decay(self, param: Any, grad: Any) -> tuple[Any, Any]:
        """Apply weight decay: Adam adds it to the gradient (AdamW overrides)."""
        return param, (grad + self.weight_decay * param if self.weight_decay else grad)

    def _corrections(self, step: int) -> tuple[float, float]:
        """``(lr / (1 - b1^t), sqrt(1 - b2^t))`` as Python floats: a NumPy float64 scalar would push
        float32 maths onto float64 loops."""
        beta1, beta2 = self.betas
        return self.lr / (1 - beta1**step), math.sqrt(1 - beta2**step)

    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        beta1, beta2 = self.betas
        xp = namespace_of(param)
        param, grad = self._decay(param, grad)
        m = beta1 * self._zeros(state, "exp_avg", param) + (1 - beta1) * grad
        v = beta2 * self._zeros(state, "exp_avg_sq", param) + (1 - beta2) * (grad * grad)
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if self.amsgrad:
            v = state["max_exp_avg_sq"] = xp.maximum(self._zeros(state, "max_exp_avg_sq", param), v)
        step_size, root_correction = self._corrections(step)
        return param - step_size * (m / (xp.sqrt(v) / root_correction + self.eps))

    def _update_in_place(self, param: Any, grad: Any, state: dict[str, Any], step: int, name: str) -> Any:
        # The operations of _update in the same order (identical values), with m and v updated in their
        # own memory and one reused work buffer: no temporaries, one new array (the parameter).
        lib = ufuncs(param)
        if lib is None or self.amsgrad:
            return self._update(param, grad, state, step)
        beta1, beta2 = self.betas
        param, grad = self._decay(param, grad)
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = lib.zeros_like(param), lib.zeros_like(param)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        step_size, root_correction = self._corrections(step)
        new = fused.adam_step(param, grad, m, v, beta1=beta1, beta2=beta2, eps=self.eps,
                              step_size=step_size, root_correction=root_correction)
        if new is not None:  # NumPy with the compiled module: all of the below in one pass, same values
            return new
        work = self._work_buffer(name, param)
        m *= beta1
        lib.multiply(grad, 1 - beta1, out=work)
        m += work
        v *= beta2
        lib.multiply(grad, grad, out=work)
        work *= 1 - beta2
        v += work
        lib.sqrt(v, out=work)
        work /= root_correction
        work += self.eps
        lib.divide(m, work, out=work)
        work *= step_size
        return param - work


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step.

    Args are those of :class:`Adam`; ``weight_decay`` defaults to ``0.01`` (as PyTorch).
    """

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)

    def _decay(self, param: Any, grad: Any) -> tuple[Any, Any]:
        return (param * (1 - self.lr * self.weight_decay) if self.weight_decay else param), grad
