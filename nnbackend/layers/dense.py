"""The fully connected layer of the paper: ``z = x @ W + b``, then an optional activation."""

from __future__ import annotations

from typing import Any

from ..arrays import is_count
from ..backend import Backend, namespace_of
from ..inplace import add_into, ufuncs, writeable
from ..random import Streams
from .activations import activation_config, activation_label, get_activation
from .base import Layer, Shape
from .init import INITIALIZERS, initialize

__all__ = ["Dense"]


class Dense(Layer):
    """A fully connected layer ``y = act(x @ weight + bias)``.

    Args:
        in_features: input width. ``None`` takes it from the previous layer when the model is built.
        out_features: output width.
        activation: an activation name (``"relu"``, ``"softmax"``, ...), an activation layer, or
            ``None`` (default) for a linear output.
        init: weight initialiser, one of ``nnbackend.layers.init.INITIALIZERS``. Defaults to ``"he"``
            (``randn * sqrt(2 / in_features)``, the paper's). Biases start at zero.

    Shapes: ``x`` (batch, in_features) → ``y`` (batch, out_features), both in the model's float dtype on
    its device. ``weight`` is (in_features, out_features), as in the paper; ``bias`` is (out_features,).
    """

    def __init__(
        self,
        in_features: int | None,
        out_features: int,
        activation: str | Layer | None = None,
        *,
        init: str = "he",
    ) -> None:
        super().__init__()
        for label, value in (("in_features", in_features), ("out_features", out_features)):
            if value is None and label == "in_features":
                continue
            if not is_count(value):
                raise ValueError(f"Dense {label} must be a positive integer, got {value!r}")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown initializer {init!r}; choose one of {', '.join(INITIALIZERS)}")
        self.in_features = None if in_features is None else int(in_features)
        self.out_features = int(out_features)
        self.activation = get_activation(activation)
        self.init = init

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "activation": activation_config(self.activation),
            "init": self.init,
        }

    def children(self) -> list[Layer]:
        return [self.activation] if self.activation is not None else []

    def describe(self) -> str:
        name = activation_label(self.activation) if self.activation is not None else None
        return f"Dense ({name})" if name and name not in ("linear", "identity") else "Dense"

    def expected_input_shape(self) -> Shape | None:
        return None if self.in_features is None else (self.in_features,)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense expects flat inputs (batch, features), but receives per-sample shape "
                f"{tuple(input_shape)}; put a Flatten layer before it"
            )
        return (self.out_features,)

    def state_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        features = self.in_features if self.in_features is not None else int(input_shape[0])
        return {"weight": (features, self.out_features), "bias": (self.out_features,)}

    def build(self, input_shape: Shape, backend: Backend, streams: Streams) -> Shape:
        output_shape = super().build(input_shape, backend, streams)
        (features,) = input_shape
        if self.in_features is None:
            if features is None:
                raise ValueError("Dense(in_features=None) needs the model's input_shape to infer its width")
            self.in_features = int(features)
        elif features is not None and features != self.in_features:
            raise ValueError(
                f"Dense expects {self.in_features} input features, but the previous layer gives {features}"
            )
        shape = (self.in_features, self.out_features)
        weight = initialize(self.init, shape, self.in_features, self.out_features, streams.init)
        self.params = {
            "weight": backend.asarray(weight),
            "bias": backend.asarray(initialize("zeros", (self.out_features,), 0, 0, streams.init)),
        }
        return output_shape

    def forward(self, x: Any) -> Any:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Dense expects input of shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        self._remember(x)
        # x @ W is this layer's own fresh array: add the bias and apply the activation in its memory.
        z, bias = x @ self.params["weight"], self.params["bias"]
        return add_into(z, bias) if self.activation is None else self.activation.forward_owned_with_bias(z, bias)

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        """Fill ``grads`` and return ``dL/dx``. With NumPy and CuPy the gradient arrays of the previous
        backward pass are reused as outputs: ``grads`` holds the latest gradients, overwritten by the next
        backward pass (copy them to keep them)."""
        return self._backward(grad, input_grad, owned=False)

    def backward_owned(self, grad: Any, *, input_grad: bool = True) -> Any:
        return self._backward(grad, input_grad, owned=True)

    def _backward(self, grad: Any, input_grad: bool, owned: bool) -> Any:
        x = self._recall()
        if self.activation is not None:
            act = self.activation
            grad = act.backward_owned(grad) if owned else act.backward(grad)
        weight, old = self.params["weight"], self.grads
        lib = ufuncs(grad)
        if (lib is not None and old and type(old["weight"]) is type(grad) and old["weight"].dtype == grad.dtype
                and tuple(old["weight"].shape) == tuple(weight.shape) and writeable(old["weight"])
                and writeable(old["bias"])):
            self.grads = {"weight": lib.matmul(x.T, grad, out=old["weight"]),
                          "bias": lib.sum(grad, axis=0, out=old["bias"])}
        else:
            self.grads = {"weight": x.T @ grad, "bias": namespace_of(grad).sum(grad, axis=0)}
        return grad @ weight.T if input_grad else None
