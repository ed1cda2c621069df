"""Adam and AdamW, as ``torch.optim.Adam`` / ``torch.optim.AdamW``."""

from __future__ import annotations

import math
from typing import Any

from ..backend import namespace_of
from ..inplace import ufuncs
from .base import Optimizer, check_positive, check_unit_interval

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam with bias correction (the paper's second optimizer).

    Per step ``t``: ``g += weight_decay * p``; ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. It is evaluated with ``m`` and
    ``v`` kept as the discounted sums ``m / (1 - b1)`` and ``v / (1 - b2)`` and the constants folded
    together (10 passes over a parameter instead of 13); :meth:`state_dict` reports ``m`` and ``v`` (with ``amsgrad``, ``v`` in the
    denominator is the running maximum of ``v``). ``t`` counts steps (the paper's code counted epochs,
    which is the same with full batches).

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
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_unit_interval("beta1", betas[0]), check_unit_interval("beta2", betas[1]))
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.amsgrad = bool(amsgrad)


    def _decay(self, param: Any, grad: Any) -> tuple[Any, Any]:
        """Apply weight decay: Adam adds it to the gradient (AdamW overrides)."""
        return param, (grad + self.weight_decay * param if self.weight_decay else grad)

    # Adam's state is kept as discounted sums, ``M = m / (1 - b1)`` and ``V = v / (1 - b2)``, whose
    # updates ``M = b1 M + g`` and ``V = b2 V + g^2`` take one multiplication fewer each; the constant
    # factors move into the step. state_dict() reports torch's ``exp_avg`` and ``exp_avg_sq``.
    _EXPORTED = {"grad_sum": "exp_avg", "grad_sq_sum": "exp_avg_sq", "max_grad_sq_sum": "max_exp_avg_sq"}

    def _export_factor(self, key: str) -> float:
        beta1, beta2 = self.betas
        return 1 - beta1 if key == "grad_sum" else 1 - beta2

    def _scales(self, step: int) -> tuple[float, float]:
        """``(scale, eps')`` with ``new p = p - M / (sqrt(V) * scale + eps')``, which is torch's
        ``p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` for ``m = (1 - b1) M`` and
        ``v = (1 - b2) V``, with every constant folded into two numbers (fewer passes per step).

        Python floats, not NumPy scalars: a float64 scalar would push float32 maths onto float64 loops.
        """
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**step) * (1 - beta1)
        root_correction = math.sqrt(1 - beta2**step)
        return math.sqrt(1 - beta2) / (root_correction * step_size), self.eps / step_size

    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        beta1, beta2 = self.betas
        xp = namespace_of(param)
        param, grad = self._decay(param, grad)
        m = beta1 * self._zeros(state, "grad_sum", param) + grad
        v = beta2 * self._zeros(state, "grad_sq_sum", param) + grad * grad
        state["grad_sum"], state["grad_sq_sum"] = m, v
        if self.amsgrad:
            v = state["max_grad_sq_sum"] = xp.maximum(self._zeros(state, "max_grad_sq_sum", param), v)
        scale, eps = self._scales(step)
        return param - m / (xp.sqrt(v) * scale + eps)

    def _update_in_place(self, param: Any, grad: Any, state: dict[str, Any], step: int, name: str) -> Any:
        # The formulas of _update, operation for operation (so the values are identical), with the
        # sums updated in their own memory and one work buffer: 10 passes over the parameter and one
        # new array (the parameter) instead of a dozen temporaries.
        lib = ufuncs(param)
        if lib is None or self.amsgrad:
            return self._update_generic_in_place(param, grad, state, step)
        beta1, beta2 = self.betas
        param, grad = self._decay(param, grad)
        m, v = state.get("grad_sum"), state.get("grad_sq_sum")
        if m is None or v is None:
            m = state["grad_sum"] = lib.zeros_like(param)
            v = state["grad_sq_sum"] = lib.zeros_like(param)
        work = self._work_buffer(name, param)
        scale, eps = self._scales(step)
        m *= beta1
        m += grad
        v *= beta2
        lib.multiply(grad, grad, out=work)
        v += work
        lib.sqrt(v, out=work)
        work *= scale
        work += eps
        lib.divide(m, work, out=work)
        return param - work

    def _update_generic_in_place(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        """In place with Array-API operators only (PyTorch, array_api_strict, amsgrad)."""
        beta1, beta2 = self.betas
        xp = namespace_of(param)
        param, grad = self._decay(param, grad)
        m, v = state.get("grad_sum"), state.get("grad_sq_sum")
        if m is None or v is None:
            m = state["grad_sum"] = xp.zeros_like(param)
            v = state["grad_sq_sum"] = xp.zeros_like(param)
        m *= beta1
        m += grad
        v *= beta2
        v += grad * grad
        if self.amsgrad:
            v = state["max_grad_sq_sum"] = xp.maximum(self._zeros(state, "max_grad_sq_sum", param), v)
        scale, eps = self._scales(step)
        denom = xp.sqrt(v)
        denom *= scale
        denom += eps
        return param - m / denom


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
