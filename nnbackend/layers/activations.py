"""Element-wise activations and Softmax: no parameters, a cached value for the backward pass."""

from __future__ import annotations

from typing import Any

from .. import fused
from ..backend import namespace_of
from ..inplace import add_into, ufuncs, writeable
from .base import Layer

__all__ = [
    "ACTIVATIONS",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "activation_config",
    "get_activation",
]


class Identity(Layer):
    """``y = x`` (the paper's "Linear" activation)."""

    fresh_input_grad = False

    def forward(self, x: Any) -> Any:
        self._remember(True)
        return x

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        self._recall()
        return grad


class ReLU(Layer):
    """``y = max(x, 0)``; the gradient at 0 is taken as 0."""

    def forward(self, x: Any) -> Any:
        y = namespace_of(x).maximum(x, 0)
        self._remember(y)
        return y

    def forward_owned(self, x: Any) -> Any:
        lib = ufuncs(x)
        if lib is None or not writeable(x):
            return self.forward(x)
        y = lib.maximum(x, 0, out=x)
        self._remember(y)
        return y

    def forward_owned_with_bias(self, x: Any, bias: Any) -> Any:
        if fused.bias_relu(x, bias):  # NumPy with the compiled module: one pass, in x's memory
            self._remember(x)
            return x
        return self.forward_owned(add_into(x, bias))

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        return self._backward(grad, owned=False)

    def backward_owned(self, grad: Any, *, input_grad: bool = True) -> Any:
        return self._backward(grad, owned=True)

    def _backward(self, grad: Any, owned: bool) -> Any:
        y = self._recall()
        # A multiply by the 0/1 mask, not where(y > 0, grad, 0): NumPy's where branches per element on
        # a mask that is ~50% random, 6-14x slower than the vectorised multiply.
        lib = ufuncs(grad)
        if lib is not None:  # NumPy/CuPy multiply by a bool mask without a float copy of it
            if not (owned and writeable(grad)):
                return lib.multiply(grad, y > 0)
            if not fused.relu_mask(grad, y):  # NumPy with the compiled module: one pass, no mask array
                lib.multiply(grad, y > 0, out=grad)
            return grad
        xp = namespace_of(grad)
        return grad * xp.astype(y > 0, grad.dtype)


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0`` and ``negative_slope * x`` otherwise.

    Args:
        negative_slope: slope for negative inputs, must be > 0. Defaults to ``0.01`` (as PyTorch).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if not negative_slope > 0:
            raise ValueError(f"negative_slope must be > 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}

    def forward(self, x: Any) -> Any:
        # max(x, a x) for a <= 1, min(x, a x) for a > 1: no where(), which branches per element on NumPy.
        xp = namespace_of(x)
        y = (xp.maximum if self.negative_slope <= 1 else xp.minimum)(x, x * self.negative_slope)
        self._remember(y)
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        y = self._recall()  # y > 0 exactly where x > 0, since the slope is positive
        xp = namespace_of(grad)
        slope = xp.astype(y > 0, grad.dtype) * (1 - self.negative_slope) + self.negative_slope
        return grad * slope


def _sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` as ``exp(min(x, 0)) / (1 + exp(-|x|))``: no exponent is positive, so nothing
    overflows, every step keeps its relative accuracy (also in the tail, unlike ``(1 + tanh(x/2)) / 2``),
    and there is no where(), which branches per element on NumPy (6x slower at 128 x 512)."""
    xp = namespace_of(x)
    return xp.exp(xp.minimum(x, 0)) / (1 + xp.exp(-xp.abs(x)))


class Sigmoid(Layer):
    """``y = 1 / (1 + exp(-x))``, evaluated without overflow for large ``|x|``."""

    def forward(self, x: Any) -> Any:
        y = _sigmoid(x)
        self._remember(y)
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        y = self._recall()
        return grad * y * (1 - y)


class Tanh(Layer):
    """``y = tanh(x)``."""

    def forward(self, x: Any) -> Any:
        y = namespace_of(x).tanh(x)
        self._remember(y)
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        y = self._recall()
        return grad * (1 - y * y)


class Softplus(Layer):
    """``y = log(1 + exp(x))``, evaluated as ``max(x, 0) + log1p(exp(-|x|))`` so it never overflows."""

    def forward(self, x: Any) -> Any:
        xp = namespace_of(x)
        y = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        self._remember(x)
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        return grad * _sigmoid(self._recall())


class Softmax(Layer):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (default: the last).

    The backward pass is the vectorised Jacobian-vector product ``y * (g - sum(g * y))``: no per-sample
    Jacobian is ever formed.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def forward(self, x: Any) -> Any:
        xp = namespace_of(x)
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))
        y = e / xp.sum(e, axis=self.axis, keepdims=True)
        self._remember(y)
        return y

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        y = self._recall()
        xp = namespace_of(y)
        return y * (grad - xp.sum(grad * y, axis=self.axis, keepdims=True))


ACTIVATIONS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softplus": Softplus,
    "softmax": Softmax,
    "linear": Identity,
    "identity": Identity,
}


def get_activation(activation: str | Layer | None) -> Layer | None:
    """An activation layer from its name (``"relu"``, ...), a layer, or ``None`` for no activation.

    A layer of one's own is taken as it is (a parameter-free layer that keeps its input's shape); one of
    the package's other layers (Dense, BatchNorm, Dropout, pooling, ...) is refused.
    """
    if activation is None:
        return None
    if isinstance(activation, Layer):
        from . import LAYERS  # the package's registry (importing it at the top would be circular)

        if any(isinstance(activation, cls) for cls in LAYERS.values() if cls not in ACTIVATIONS.values()):
            raise ValueError(f"{type(activation).__name__} is not an activation; choose one of "
                             f"{', '.join(ACTIVATIONS)}, or put it in the model as a layer of its own")
        return activation
    key = str(activation).strip().lower().replace("-", "_")
    if key in ("none", ""):
        return None
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def activation_name(layer: Layer | None) -> str | None:
    """The registry name of an activation layer (inverse of :func:`get_activation`)."""
    if layer is None:
        return None
    for name, cls in ACTIVATIONS.items():
        if type(layer) is cls:
            return name
    raise ValueError(f"{type(layer).__name__} is not a registered activation")


def activation_label(layer: Layer) -> str:
    """What a summary calls an activation: its registry name, or its class name if it is one's own."""
    try:
        return activation_name(layer) or ""
    except ValueError:
        return type(layer).__name__


def activation_config(layer: Layer | None) -> str | dict[str, Any] | None:
    """A fused activation as a layer config stores it: its name, or ``{"type": ..., **args}`` when it
    has arguments (a LeakyReLU's slope) or is one's own layer. :func:`get_activation` and
    ``layer_from_config`` invert it (for the package's activations)."""
    if layer is not None and (layer.get_config() or type(layer) not in ACTIVATIONS.values()):
        return {"type": type(layer).__name__, **layer.get_config()}
    return activation_name(layer)
