"""The layer contract every layer follows."""

from __future__ import annotations

import weakref
from typing import Any

from ..arrays import check_array, match_namespace
from ..backend import Backend, namespace_of
from ..inplace import add_into
from ..random import Streams

__all__ = ["Layer", "Shape"]

# A per-sample shape (the batch dimension left out); None marks a size not known until data arrives.
Shape = tuple["int | None", ...]


class Layer:
    """A differentiable map ``y = f(x; params)`` with a hand-written backward pass.

    Lifecycle: a model calls :meth:`build` once (creating parameters on its backend), then
    :meth:`forward` and, in training mode, :meth:`backward`, which fills :attr:`grads` and returns the
    gradient with respect to the input.

    Attributes:
        params: trainable arrays by name (``"weight"``, ``"bias"``); replaced, never mutated, by optimizers.
        grads: gradients of the loss with respect to ``params``, same names, shapes and dtypes; a layer
            may write the next backward pass into the same arrays (Dense does with NumPy and CuPy), so
            copy them to keep them.
        buffers: non-trainable state saved with the model (e.g. running statistics).
        training: in training mode forward keeps what backward needs, until backward has used it; in
            eval mode it keeps nothing.
        fresh_input_grad: True when :meth:`backward` returns a new array (never the ``grad`` it was
            given or a view of it); a :class:`~nnbackend.Sequential` model then hands that array to the
            layer before with :meth:`backward_owned`.
        mixes_rows: True when, in training mode, a row's output depends on the other rows of the batch
            (BatchNorm's batch statistics); the :class:`~nnbackend.Trainer` then never splits a batch.
        min_batch: the fewest samples a training batch may hold (1; BatchNorm over flat features: 2).
    """

    fresh_input_grad = True
    mixes_rows = False
    min_batch = 1

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.buffers: dict[str, Any] = {}
        self.training = True
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        #: (backend, device, dtype) of the model that built it; set by :class:`~nnbackend.Sequential`.
        self.built_on: tuple[str, str, str] | None = None
        #: The models this layer is part of (more than one when they share it).
        self.models: weakref.WeakSet[Any] = weakref.WeakSet()
        self._cache: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A copy or an unpickled layer belongs to no model yet (a WeakSet cannot be pickled anyway).
        return {key: value for key, value in self.__dict__.items() if key != "models"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.models = weakref.WeakSet()

    # -- construction ---------------------------------------------------------------------------
    def build(self, input_shape: Shape, backend: Backend, streams: Streams) -> Shape:
        """Create parameters for per-sample input shape ``input_shape``; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        return self.output_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """The per-sample output shape for a per-sample input shape (default: unchanged)."""
        return input_shape

    def state_shapes(self, input_shape: Shape) -> dict[str, tuple[int, ...]]:
        """The shapes of the parameters and buffers :meth:`build` creates for ``input_shape``, without
        creating them (loading a file checks its arrays against these before allocating a model)."""
        return {}

    def expected_input_shape(self) -> Shape | None:
        """The per-sample input shape this layer was configured for, if it knows one."""
        return None

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-ready)."""
        return {}

    def children(self) -> list[Layer]:
        """Layers this layer runs inside itself (e.g. a Dense layer's activation)."""
        return []

    # -- computation ----------------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Map a batch ``x`` to the layer's output (same namespace, device and float dtype)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def forward_owned(self, x: Any) -> Any:
        """:meth:`forward` for an ``x`` the caller hands over and never reads again (e.g. a Dense layer's
        fresh ``x @ W + b`` going into its activation): the layer may compute its output in ``x``'s
        memory. The default is :meth:`forward`."""
        return self.forward(x)

    def forward_owned_with_bias(self, x: Any, bias: Any) -> Any:
        """:meth:`forward_owned` of ``x + bias`` (``bias`` broadcast along ``x``'s last axis): a Dense
        layer hands its fresh ``x @ W`` and its bias to its activation, which may fuse the two. The
        default adds the bias in ``x``'s memory where it may, then calls :meth:`forward_owned`."""
        return self.forward_owned(add_into(x, bias))

    def backward(self, grad: Any, *, input_grad: bool = True) -> Any:
        """Given ``dL/dy`` (shape of the last output), fill :attr:`grads` and return ``dL/dx``.

        With ``input_grad=False`` layers may skip computing ``dL/dx`` and return ``None`` (nothing
        needs the gradient with respect to the input data).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    def backward_owned(self, grad: Any, *, input_grad: bool = True) -> Any:
        """:meth:`backward` for a ``grad`` the caller hands over and never reads again (a gradient the
        next layer has just computed): the layer may compute in ``grad``'s memory. The default is
        :meth:`backward`."""
        return self.backward(grad, input_grad=input_grad)

    def __call__(self, x: Any) -> Any:
        """:meth:`forward` with its input checked first (models call ``forward`` directly)."""
        name = f"{type(self).__name__} input"
        if self.input_shape is None and type(self).build is not Layer.build:
            raise RuntimeError(f"{type(self).__name__} must be built before it runs: put it in a Sequential "
                               "(which builds every layer for its input shape and backend)")
        x = check_array(x, name, float_only=True)
        if self.input_shape is not None:
            expected = len(self.input_shape) + 1
            if x.ndim != expected or any(
                want is not None and got != want for want, got in zip(self.input_shape, x.shape[1:])
            ):
                shape = ", ".join("?" if s is None else str(s) for s in self.input_shape)
                raise ValueError(f"{name} must have shape (batch, {shape}), got {tuple(x.shape)}")
        if self.params:
            param = next(iter(self.params.values()))
            x = match_namespace(x, name, param, f"{type(self).__name__}'s parameters")
            if x.dtype != param.dtype:
                x = namespace_of(x).astype(x, param.dtype)
        return self.forward(x)

    # -- state ----------------------------------------------------------------------------------
    def set_training(self, mode: bool) -> None:
        """Switch training mode on or off, here and in child layers; leaving it drops the cache."""
        self.training = mode
        if not mode:
            self._cache = None
        for child in self.children():
            child.set_training(mode)

    def _remember(self, value: Any) -> None:
        if self.training:
            self._cache = value

    def _recall(self) -> Any:
        """What forward kept for backward, released here: each forward serves one backward, and a
        full-batch step then frees each layer's activations as soon as its backward is done."""
        value, self._cache = self._cache, None
        if value is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward() in training mode first, one per "
                "backward (call model.train() before forward, or use Trainer.fit)"
            )
        return value

    @property
    def n_params(self) -> int:
        """How many trainable numbers this layer holds."""
        total = 0
        for value in self.params.values():
            count = 1
            for size in value.shape:
                count *= int(size)
            total += count
        return total

    def describe(self) -> str:
        """A short label for summaries, e.g. ``Dense (relu)``."""
        return type(self).__name__

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
