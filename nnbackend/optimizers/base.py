"""The optimizer contract: per-parameter state, functional updates, assignment at the end."""

from __future__ import annotations

from typing import Any

from ..backend import Backend, namespace_of, to_numpy

__all__ = ["Optimizer", "check_positive", "check_unit_interval"]


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is > 0 (or >= 0 with ``allow_zero``), else raise ValueError."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (value >= 0 if allow_zero else value > 0) or value != value or value == float("inf"):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, got {value!r}")
    return value


def check_unit_interval(name: str, value: float) -> float:
    """Return ``value`` as a float if it is in [0, 1), else raise ValueError."""
    value = check_positive(name, value, allow_zero=True)
    if not value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Optimizer:
    """Base class. Subclasses implement :meth:`_update` for one parameter.

    The update is functional: it returns a new parameter array and assigns new state arrays into the
    parameter's state dict, so it works on libraries whose arrays are read-only. State is kept per
    parameter name (``"0.weight"``) and created on the first step. ``steps`` counts the steps taken
    (the ``t`` of bias corrections), as ``torch.optim`` does.

    Args:
        lr: the learning rate, > 0.
    """

    def __init__(self, lr: float) -> None:
        self.lr = check_positive("lr", lr)
        self.steps = 0
        self.state: dict[str, dict[str, Any]] = {}

    #: The constructor arguments, saved by :meth:`get_config` and restored by :meth:`load_state_dict`.
    hyperparameters: tuple[str, ...] = ("lr",)

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters (constructor arguments), JSON-ready."""
        return {name: _jsonable(getattr(self, name)) for name in self.hyperparameters}

    def step(self, model: Any) -> None:
        """Update ``model``'s parameters from the gradients of its last backward pass."""
        model.set_parameters(self.update(model.parameters(), model.gradients()), check=False)

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> dict[str, Any]:
        """New parameter arrays by name, one optimizer step from ``params`` along ``grads``."""
        self.steps += 1
        return {
            name: self._update(p, grads[name], self.state.setdefault(name, {}), self.steps)
            for name, p in params.items()
        }

    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _update()")

    @staticmethod
    def _zeros(state: dict[str, Any], key: str, like: Any) -> Any:
        value = state.get(key)
        return namespace_of(like).zeros_like(like) if value is None else value

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and per-parameter state arrays (as host NumPy arrays)."""
        return {
            "type": type(self).__name__,
            "config": self.get_config(),
            "steps": self.steps,
            "state": {
                name: {key: to_numpy(value) for key, value in slots.items()}
                for name, slots in self.state.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any], backend: Backend) -> None:
        """Restore :meth:`state_dict` output, moving the arrays onto ``backend``."""
        if state.get("type") != type(self).__name__:
            raise ValueError(f"this state belongs to a {state.get('type')} optimizer, not {type(self).__name__}")
        for key, value in state["config"].items():
            setattr(self, key, tuple(value) if isinstance(value, list) else value)
        self.steps = int(state["steps"])
        self.state = {
            name: {key: backend.asarray(value) for key, value in slots.items()}
            for name, slots in state["state"].items()
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
