"""The optimizer contract: per-parameter state, functional updates, assignment at the end."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ..backend import Backend, namespace_of, to_numpy
from ..inplace import writeable

__all__ = ["Optimizer", "check_gradients", "check_positive", "check_unit_interval"]


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


def check_gradients(params: dict[str, Any], grads: dict[str, Any]) -> None:
    """Raise ValueError unless ``grads`` has exactly ``params``' names, each with its shape and dtype."""
    if grads.keys() != params.keys():
        missing, unknown = sorted(params.keys() - grads.keys()), sorted(grads.keys() - params.keys())
        raise ValueError("the gradients do not fit the parameters:"
                         + (f" no gradient for {', '.join(missing)};" if missing else "")
                         + (f" no parameter named {', '.join(unknown)};" if unknown else "")
                         + f" expected one for each of {', '.join(params)}")
    for name, param in params.items():
        grad = grads[name]
        shape, dtype = getattr(grad, "shape", None), getattr(grad, "dtype", None)
        if shape is None or tuple(shape) != tuple(param.shape) or dtype != param.dtype:
            raise ValueError(f"the gradient for {name} has shape {None if shape is None else tuple(shape)} "
                             f"and dtype {dtype}; the parameter has shape {tuple(param.shape)} and dtype "
                             f"{param.dtype}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class Optimizer:
    """Base class. Subclasses implement :meth:`_update` for one parameter.

    The update is functional: it returns a new parameter array and assigns new state arrays into the
    parameter's state dict, so it works on libraries whose arrays are read-only. State is kept per
    parameter name (``"0.weight"``) and created on the first step. ``steps`` counts the steps taken
    (the ``t`` of bias corrections), as ``torch.optim`` does.

    Fast path: where a parameter is writeable on its first step (not JAX or read-only arrays) and its
    state arrays still are, optimizers that implement :meth:`_update_in_place` update their *state* in
    place with the same formulas and no temporaries. That needs ufuncs with ``out=``, so in practice
    NumPy and CuPy (:func:`nnbackend.inplace.ufuncs`); other libraries fall back to :meth:`_update`.
    If the model moved (``model.to(...)``), the state follows the parameters on the next step. Parameters themselves are never written: a new array is returned, so references
    others hold to the old parameters (the Trainer's last finite and best parameters) stay valid.

    Args:
        lr: the learning rate, > 0.
    """

    def __init__(self, lr: float) -> None:
        self.lr = check_positive("lr", lr)
        self.steps = 0
        self.state: dict[str, dict[str, Any]] = {}
        self._in_place: dict[str, bool] = {}  # per parameter, decided on its first step
        self._scratch: dict[str, Any] = {}  # per parameter, a work buffer for the in-place path

    #: The constructor arguments, saved by :meth:`get_config` and restored by :meth:`load_state_dict`.
    hyperparameters: tuple[str, ...] = ("lr",)

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters (constructor arguments), JSON-ready."""
        return {name: _jsonable(getattr(self, name)) for name in self.hyperparameters}

    def step(self, model: Any, grads: dict[str, Any] | None = None) -> None:
        """Update ``model``'s parameters along ``grads`` (named like its parameters), by default the
        gradients of its last backward pass.

        Raises:
            ValueError: ``grads`` misses a parameter, names one the model lacks, or holds an array of
                another shape or dtype than its parameter; nothing has changed then.
        """
        params = model.parameters()
        if grads is None:
            grads = model.gradients()  # the backward pass made them: names, shapes and dtypes fit
        else:
            check_gradients(params, grads)
        model.set_parameters(self._step(params, grads), check=False)

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> dict[str, Any]:
        """New parameter arrays by name, one optimizer step from ``params`` along ``grads`` (checked
        as :meth:`step` does)."""
        check_gradients(params, grads)
        return self._step(params, grads)

    def _step(self, params: dict[str, Any], grads: dict[str, Any]) -> dict[str, Any]:
        self.steps += 1
        new = {}
        for name, param in params.items():
            state = self.state.setdefault(name, {})
            if state:
                self._follow(state, param)
            in_place = self._in_place.get(name)
            if in_place is None:
                # Sticky: a library that hands out read-only parameters keeps the functional path.
                in_place = self._in_place[name] = writeable(param)
            if in_place and all(writeable(value) for value in state.values()):
                new[name] = self._update_in_place(param, grads[name], state, self.steps, name)
            else:
                new[name] = self._update(param, grads[name], state, self.steps)
        return new

    @staticmethod
    def _follow(state: dict[str, Any], param: Any) -> None:
        """Move ``state`` to ``param``'s library, device and dtype if the model was moved
        (``model.to(...)``) since the last step; a cheap check when nothing moved."""
        first = next(iter(state.values()))
        if (type(first) is type(param) and first.dtype == param.dtype
                and (type(param) is np.ndarray or array_api_compat.device(first) == array_api_compat.device(param))):
            return
        xp, device = namespace_of(param), array_api_compat.device(param)
        for key, value in state.items():
            state[key] = xp.asarray(to_numpy(value), dtype=param.dtype, device=device)

    def _update(self, param: Any, grad: Any, state: dict[str, Any], step: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _update()")

    def _update_in_place(self, param: Any, grad: Any, state: dict[str, Any], step: int, name: str) -> Any:
        """:meth:`_update` with the state arrays (writeable) updated in place; returns the new parameter.

        Must give the same values as :meth:`_update`. The default is :meth:`_update`.
        """
        return self._update(param, grad, state, step)

    def _work_buffer(self, name: str, like: Any) -> Any:
        """A reusable scratch array shaped like ``like`` for parameter ``name``."""
        buffer = self._scratch.get(name)
        if (buffer is None or type(buffer) is not type(like) or buffer.dtype != like.dtype
                or tuple(buffer.shape) != tuple(like.shape)):
            buffer = self._scratch[name] = namespace_of(like).empty_like(like)
        return buffer

    @staticmethod
    def _zeros(state: dict[str, Any], key: str, like: Any) -> Any:
        value = state.get(key)
        return namespace_of(like).zeros_like(like) if value is None else value

    def snapshot(self) -> dict[str, Any]:
        """Copies of the step count and state arrays (staying on the device), for :meth:`restore`."""
        return {"steps": self.steps,
                "state": {name: {key: namespace_of(value).asarray(value, copy=True) for key, value in slots.items()}
                          for name, slots in self.state.items()}}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Go back to the step count and state of :meth:`snapshot` (which must not be reused)."""
        self.steps = snapshot["steps"]
        self.state = snapshot["state"]

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and per-parameter state arrays (as host NumPy arrays)."""
        return {
            "type": type(self).__name__,
            "config": self.get_config(),
            "steps": self.steps,
            # Copies: the in-place path keeps writing into the live arrays.
            "state": {name: {key: np.array(to_numpy(value), copy=True) for key, value in slots.items()}
                      for name, slots in self.state.items()},
        }

    def load_state_dict(self, state: dict[str, Any], backend: Backend) -> None:
        """Restore :meth:`state_dict` output, moving the arrays onto ``backend``."""
        if state.get("type") != type(self).__name__:
            raise ValueError(f"this state belongs to a {state.get('type')} optimizer, not {type(self).__name__}")
        config = state["config"]
        unknown = set(config) - set(self.hyperparameters) if isinstance(config, dict) else {"(not a dict)"}
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} settings {sorted(unknown)}")
        config = {key: tuple(value) if isinstance(value, list) else value for key, value in config.items()}
        checked = type(self)(**config)  # the constructor's own checks (lr > 0, betas in [0, 1), ...)
        steps = state["steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"the step count must be an integer >= 0, got {steps!r}")
        for key in self.hyperparameters:
            setattr(self, key, getattr(checked, key))
        self.steps = steps
        # Copies, so that updating in place never writes into the caller's arrays.
        self.state = {name: {key: backend.asarray(np.array(to_numpy(value), copy=True))
                             for key, value in slots.items()}
                      for name, slots in state["state"].items()}
        self._in_place.clear()
        self._scratch.clear()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
