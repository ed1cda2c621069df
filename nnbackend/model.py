"""Sequential models: a list of layers run in order on one backend."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .arrays import check_array
from .backend import Backend, get_backend, namespace_of, to_numpy
from .layers import Dense, Layer, layer_from_config, layer_to_config
from .layers.activations import Identity, Sigmoid, Softmax
from .layers.base import Shape
from .random import Streams

__all__ = ["PREDICT_BATCH_SIZE", "Sequential", "to_model_dtype"]

#: Rows per forward pass when predicting or evaluating: bounds the memory of activations (a CNN's
#: im2col buffers for 1,024 MNIST images are about 250 MB).
PREDICT_BATCH_SIZE = 1024


def to_model_dtype(backend: Backend, x: Any, name: str) -> Any:
    """Float array ``x`` on ``backend``'s device in its float dtype; ValueError (naming ``name``) when values
    that were finite become infinite in that precision (1e39 in float32)."""
    if not isinstance(x, np.ndarray) and x.dtype == backend.dtype:
        return x
    with np.errstate(over="ignore"):  # an overflow is reported below, with its cause
        moved = backend.asarray(x)
    if str(moved.dtype) != str(x.dtype):
        xp = backend.xp
        too_large = int(xp.sum(xp.astype(~xp.isfinite(moved), xp.int64)))
        if too_large:
            raise ValueError(
                f"{name} holds {too_large} value(s) beyond the range of {backend.dtype_name}, the model's "
                f"precision (largest {float(xp.finfo(backend.dtype).max):.3g}); scale the data, or use a "
                "float64 model"
            )
    return moved


class Sequential:
    """Layers applied one after the other, with parameters on one backend.

    Args:
        layers: the layers, in order.
        input_shape: the per-sample input shape, e.g. ``(784,)`` or ``(1, 28, 28)``. Defaults to what the
            first layer declares (a Dense layer's ``in_features``).
        backend: a :class:`~nnbackend.Backend` or a backend name. Defaults to ``$NNBACKEND_BACKEND``, else
            ``"auto"``.
        dtype: ``"float32"`` or ``"float64"``. Defaults to float32 (or the given Backend's dtype).
        seed: seeds the initial weights and dropout masks (host NumPy streams) of the layers built here (a
            layer another model built keeps its weights and stream: the two models share it): the same seed gives the
            same initial weights on every backend and dtype. Defaults to ``0``.

    Parameters are named ``"<layer index>.<name>"`` (``"0.weight"``), as in PyTorch.
    """

    def __init__(
        self,
        layers: Iterable[Layer],
        *,
        input_shape: Shape | None = None,
        backend: str | Backend | None = None,
        dtype: str | None = None,
        seed: int | None = 0,
    ) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("a Sequential model needs at least one layer")
        first_place: dict[int, int] = {}
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is a {type(layer).__name__}, not an nnbackend Layer")
            for part in (layer, *layer.children()):
                if id(part) in first_place:
                    raise ValueError(
                        f"layer {i} uses the same {type(part).__name__} object as layer {first_place[id(part)]}: a "
                        f"layer keeps what its backward pass needs, so each place needs its own "
                        f"(e.g. nb.layers.{type(part).__name__}(...) again)")
                first_place[id(part)] = i
        self.backend = get_backend(backend, dtype=dtype)
        self.seed = seed
        self.streams = Streams(seed)
        if input_shape is None:
            input_shape = self.layers[0].expected_input_shape()
            if input_shape is None:
                raise ValueError(
                    f"cannot tell the input shape from a first layer {type(self.layers[0]).__name__}; "
                    "pass input_shape=(...) (per sample, without the batch dimension)"
                )
        self.input_shape: Shape = tuple(int(s) for s in input_shape)
        shape = self.input_shape
        built_here = [layer for layer in self.layers if layer.built_on is None]
        for i, layer in enumerate(self.layers):
            shape = self._build_or_share(i, layer, shape)
        for layer in built_here:  # only once the whole model is built: a failed one leaves them unclaimed
            for part in (layer, *layer.children()):
                part.built_on = self.backend.placement
        for layer in self.layers:
            layer.models.add(self)
        self.output_shape: Shape = shape
        self._slots = [
            (f"{i}.{key}", layer, key) for i, layer in enumerate(self.layers) for key in layer.params
        ]
        # Layers before the first one with parameters need no backward pass at all.
        self._first_trainable = next((i for i, layer in enumerate(self.layers) if layer.params), len(self.layers))

    def _build_or_share(self, index: int, layer: Layer, shape: Shape) -> Shape:
        """Build ``layer`` for per-sample input ``shape``; a layer another model built keeps its weights
        (shared, as in Keras) when it was built on this backend, device and dtype for this input shape."""
        where = self.backend.placement
        if layer.built_on is None:
            return layer.build(shape, self.backend, self.streams)
        if layer.built_on != where or tuple(layer.input_shape or ()) != tuple(shape):
            raise ValueError(
                f"layer {index} ({layer.describe()}) was built by another model ({'/'.join(layer.built_on)}, input "
                f"{tuple(layer.input_shape or ())}); a layer shares its weights with a new model only on the same "
                f"backend, device and dtype and for the same input ({'/'.join(where)}, input {tuple(shape)}): "
                "create a new layer instead"
            )
        return layer.output_shape

    # -- construction from configs --------------------------------------------------------------
    @classmethod
    def from_layers_config(
        cls,
        layers_config: list[dict[str, Any]],
        *,
        input_size: int | None = None,
        input_shape: Shape | None = None,
        **kwargs: Any,
    ) -> Sequential:
        """Build a model the way the paper's code does.

        Each entry is ``{"units": n, "activation": "relu"}`` (``"output_size"`` is accepted for
        ``"units"``; an ``"init"`` key picks the initialiser) for a Dense layer, or ``{"type": "Conv2D", ...}`` for any other layer with its
        constructor arguments. ``input_size`` (flat inputs) or ``input_shape`` gives the input.
        """
        if input_shape is None:
            if input_size is None:
                raise ValueError("from_layers_config needs input_size (flat inputs) or input_shape")
            input_shape = (input_size,)
        layers: list[Layer] = []
        for i, entry in enumerate(layers_config):
            entry = dict(entry)
            if "type" in entry:
                layers.append(layer_from_config(entry))
                continue
            units = entry.pop("units", entry.pop("output_size", None))
            if units is None:
                raise ValueError(f"layers_config[{i}] needs 'units' (or 'output_size') or a 'type'")
            activation = entry.pop("activation", None)
            init = entry.pop("init", "he")
            if entry:
                raise ValueError(f"layers_config[{i}] has unknown keys {sorted(entry)}")
            layers.append(Dense(None, int(units), activation, init=init))
        return cls(layers, input_shape=input_shape, **kwargs)

    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild the architecture (JSON-ready); weights are separate."""
        return {
            "input_shape": list(self.input_shape),
            "dtype": self.backend.dtype_name,
            "seed": self.seed,
            "layers": [layer_to_config(layer) for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, backend: str | Backend | None = None,
                    dtype: str | None = None) -> Sequential:
        """Rebuild a model from :meth:`get_config` (fresh weights drawn from the recorded seed)."""
        layers = [layer_from_config(entry) for entry in config["layers"]]
        return cls(layers, input_shape=tuple(config["input_shape"]), backend=backend,
                   dtype=dtype or config.get("dtype"), seed=config.get("seed", 0))

    # -- computation ----------------------------------------------------------------------------
    def forward(self, x: Any) -> Any:
        """Run the layers on a batch ``x`` (batch, *input_shape) on the model's device, in the model's
        float dtype; returns (batch, *output_shape) on that device. Unchecked: see :meth:`predict`."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, grad: Any, *, input_grad: bool = False) -> Any:
        """Back-propagate ``dL/doutput`` through every layer, filling each layer's ``grads``.

        Returns ``dL/dx`` when ``input_grad`` is true, else ``None`` (and skips the work).
        """
        stop = 0 if input_grad else self._first_trainable
        owned = False  # the caller's grad is not ours to overwrite; a fresh one from a layer is
        for i in range(len(self.layers) - 1, stop - 1, -1):
            layer = self.layers[i]
            backward = layer.backward_owned if owned else layer.backward
            grad = backward(grad, input_grad=input_grad or i > stop)
            owned = owned or layer.fresh_input_grad
        return grad if input_grad else None

    def train(self) -> Sequential:
        """Training mode: layers keep what backward needs; Dropout drops."""
        for layer in self.layers:
            layer.set_training(True)
        return self

    def eval(self) -> Sequential:
        """Evaluation mode: no caches, no dropout."""
        for layer in self.layers:
            layer.set_training(False)
        return self

    @property
    def training(self) -> bool:
        return self.layers[0].training

    def predict(self, x: Any, *, batch_size: int | None = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Model outputs (N, *output_shape) for ``x`` (N, *input_shape), as a host NumPy array in the
        model's float dtype. ``x`` is host NumPy data or an array on the model's device; other float
        dtypes are cast, bad shapes, dtypes and values refused.

        Runs in eval mode in chunks of ``batch_size`` rows (``None``: all at once); the model's mode is
        restored afterwards.
        """
        return to_numpy(self.predict_on_device(x, batch_size=batch_size))

    def predict_on_device(self, x: Any, *, batch_size: int | None = PREDICT_BATCH_SIZE) -> Any:
        """Like :meth:`predict`, but the outputs (N, *output_shape) stay on the model's device."""
        x = self.check_input(x)
        xp = self.backend.xp
        was_training = self.training
        self.eval()
        try:
            n = x.shape[0]
            step = n if batch_size is None else int(batch_size)
            if step <= 0:
                raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
            chunks = [self.forward(x[i : min(i + step, n), ...]) for i in range(0, n, step)]
            return chunks[0] if len(chunks) == 1 else xp.concat(chunks, axis=0)
        finally:
            if was_training:
                self.train()

    def predict_proba(self, x: Any, *, batch_size: int | None = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Class probabilities (N, C) on the host, rows summing to 1: the outputs of a model that ends with
        a Softmax, else the softmax of its outputs (the raw scores a model trained with
        :class:`~nnbackend.losses.CrossEntropy` gives). A one-output model gives (N, 2): ``1 - p`` and
        ``p``, its output if it ends with a Sigmoid, else the sigmoid of its score (as trained with
        ``BinaryCrossEntropy(from_logits=True)``)."""
        return to_numpy(self._probabilities(self.predict_on_device(x, batch_size=batch_size)))

    def predict_classes(self, x: Any, *, batch_size: int | None = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Predicted class indices (N,) int64 on the host: the arg-max of the outputs (for one output:
        1 where the probability of :meth:`predict_proba` is above 0.5)."""
        out = self.predict_on_device(x, batch_size=batch_size)
        if out.shape[1] == 1:
            out = self._probabilities(out)
        return to_numpy(namespace_of(out).argmax(out, axis=1)).astype(np.int64)

    def _probabilities(self, out: Any) -> Any:
        last = self.layers[-1]
        head = getattr(last, "activation", None) or last
        one_output = out.shape[1] == 1
        if not (head.params or isinstance(head, (Identity, Softmax)) or (one_output and isinstance(head, Sigmoid))):
            raise ValueError(f"predict_proba needs raw scores, a Softmax or (for one output) a Sigmoid at the end; "
                             f"this model ends with {type(head).__name__}, whose outputs are not probabilities")
        xp = namespace_of(out)
        if one_output:
            if self._ends_with(Sigmoid):
                p = out
            else:
                e = xp.exp(-xp.abs(out))  # a sigmoid that never overflows
                p = xp.where(out >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return xp.concat([1.0 - p, p], axis=1)
        if self.ends_with_softmax:
            return out
        e = xp.exp(out - xp.max(out, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def check_input(self, x: Any, name: str = "x") -> Any:
        """Check ``x`` against the model's input shape; host data moves onto the device and floats of
        another precision are cast to the model's dtype."""
        x = check_array(x, name, float_only=True, finite=True, backend=self.backend)
        shape = tuple(x.shape)
        if shape[1:] != self.input_shape:
            wanted = ", ".join(map(str, self.input_shape))
            if shape == self.input_shape:
                hint = "; for one sample, add the batch axis: x[None]"
            elif len(shape) >= 1 and math.prod(shape[1:]) == math.prod(self.input_shape):
                hint = f"; the same numbers per sample: x.reshape(len(x), {wanted})"
            else:
                hint = ""
            raise ValueError(f"{name} must have shape (N, {wanted}) for this model, got {shape}{hint}")
        return to_model_dtype(self.backend, x, name)

    # -- parameters -----------------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """Trainable arrays by name, in layer order (the live arrays, not copies)."""
        return {name: layer.params[key] for name, layer, key in self._slots}

    def gradients(self) -> dict[str, Any]:
        """The gradients of the last backward pass, named like :meth:`parameters`."""
        try:
            return {name: layer.grads[key] for name, layer, key in self._slots}
        except KeyError:
            raise RuntimeError("no gradients yet: run forward() and backward() in training mode first") from None

    def set_parameters(self, values: dict[str, Any], *, check: bool = True) -> None:
        """Assign new arrays to parameters by name (all of them, or a subset with ``check=True``).

        With ``check`` the names and shapes are verified, values must be floating point, and they are
        moved to the device in the parameter's dtype (a float64 array loads into a float32 model as
        float32). Every value is checked before any is assigned: on an error nothing has changed.
        """
        slots = {name: (layer, key) for name, layer, key in self._slots}
        if check:
            values = {name: self._checked_value(slots, name, value) for name, value in values.items()}
        for name, value in values.items():
            layer, key = slots[name]
            layer.params[key] = value

    def _checked_value(self, slots: dict[str, tuple[Layer, str]], name: str, value: Any) -> Any:
        if name not in slots:
            raise KeyError(f"unknown parameter {name!r}; this model has {', '.join(slots)}")
        layer, key = slots[name]
        old = layer.params[key]
        if tuple(value.shape) != tuple(old.shape):
            raise ValueError(f"parameter {name} has shape {tuple(old.shape)}, got {tuple(value.shape)}")
        return self._float_like(old, value, f"parameter {name}")

    def _float_like(self, old: Any, value: Any, name: str) -> Any:
        """``value`` (any backend) on this model's device in ``old``'s dtype; it must be floating point."""
        host = to_numpy(value)
        if host.dtype.kind != "f":
            raise ValueError(f"{name} must be a floating-point array, got dtype {host.dtype}")
        return self.backend.asarray(host, dtype=old.dtype)

    def snapshot(self) -> dict[str, Any]:
        """Copies of every parameter and buffer, by name, for :meth:`restore` (stays on the device)."""
        return {name: self.backend.xp.asarray(value, copy=True)
                for name, value in {**self.parameters(), **self.buffers()}.items()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put back the parameters and buffers of :meth:`snapshot` (arrays on this model's device)."""
        self.set_parameters({k: v for k, v in snapshot.items() if k in self.parameters()}, check=False)
        for i, layer in enumerate(self.layers):
            for key in layer.buffers:
                layer.buffers[key] = snapshot[f"{i}.{key}"]

    def buffers(self) -> dict[str, Any]:
        """Non-trainable state arrays by name (e.g. running statistics), named like parameters."""
        return {f"{i}.{key}": value for i, layer in enumerate(self.layers) for key, value in layer.buffers.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer as a host NumPy array, by name."""
        return {name: to_numpy(value) for name, value in {**self.parameters(), **self.buffers()}.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load :meth:`state_dict` output (from any backend); names and shapes must match exactly.
        Everything is checked before anything is assigned: on an error the model is unchanged."""
        expected = set(self.parameters()) | set(self.buffers())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"state does not fit this model: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        slots = {name: (layer, key) for name, layer, key in self._slots}
        params = {name: self._checked_value(slots, name, state[name]) for name in slots}
        buffers = {}
        for i, layer in enumerate(self.layers):
            for key, old in layer.buffers.items():
                value = state[f"{i}.{key}"]
                if tuple(value.shape) != tuple(old.shape):
                    raise ValueError(f"buffer {i}.{key} has shape {tuple(old.shape)}, got {tuple(value.shape)}")
                buffers[layer, key] = self._float_like(old, value, f"buffer {i}.{key}")
        self.set_parameters(params, check=False)
        for (layer, key), value in buffers.items():
            layer.buffers[key] = value

    def to(self, backend: str | Backend | None = None, *, dtype: str | None = None) -> Sequential:
        """Move every parameter and buffer to another backend (and/or dtype), in place; returns self.

        ``backend`` defaults to the model's own (``model.to(dtype="float64")``). The dtype is ``dtype`` if
        given, else a :class:`Backend`'s own, else the model's."""
        if backend is None:
            backend = self.backend.with_dtype(dtype) if dtype else self.backend
        if dtype is None and not isinstance(backend, Backend):
            dtype = self.backend.dtype_name
        target = get_backend(backend, dtype=dtype)
        shared = [i for i, layer in enumerate(self.layers) if any(model is not self for model in layer.models)]
        if shared and target.placement != self.backend.placement:
            raise ValueError(f"layer(s) {shared} are shared with another model, which moving them would change "
                             "too (a deleted model still referenced, by a traceback or a notebook's output, "
                             "counts); move the weights with a new model instead: "
                             "new = nb.Sequential(<new layers>, ...); new.load_state_dict(model.state_dict())")
        state = self.state_dict()
        self.backend = target
        for layer in self.layers:
            layer._cache = None
            for holder in (layer.params, layer.buffers):
                for key in holder:
                    holder[key] = None
        for i, layer in enumerate(self.layers):
            for holder in (layer.params, layer.buffers):
                for key in holder:
                    holder[key] = target.asarray(state[f"{i}.{key}"])
            for part in (layer, *layer.children()):
                part.built_on = target.placement
        return self

    @property
    def n_params(self) -> int:
        """How many trainable numbers the model holds."""
        return sum(layer.n_params for layer in self.layers)

    @property
    def mixes_rows(self) -> bool:
        """True when a layer makes a row's output depend on other rows of the batch (BatchNorm)."""
        return any(layer.mixes_rows or any(child.mixes_rows for child in layer.children()) for layer in self.layers)

    def layers_needing(self, rows: int) -> list[str]:
        """The layers (descriptions) that cannot train on a batch of ``rows`` samples (see ``min_batch``)."""
        return [layer.describe() for layer in self.layers
                for part in (layer, *layer.children()) if part.min_batch > rows]

    @property
    def ends_with_softmax(self) -> bool:
        """True when the last operation is a Softmax (the outputs are probabilities)."""
        return self._ends_with(Softmax)

    def _ends_with(self, kind: type[Layer]) -> bool:
        last = self.layers[-1]
        return isinstance(last, kind) or isinstance(getattr(last, "activation", None), kind)

    def summary(self) -> str:
        """A Keras-style table: each layer, its output shape and parameter count, then totals."""
        rows = [("#", "Layer", "Output shape", "Params")]
        for i, layer in enumerate(self.layers):
            shape = "(None, " + ", ".join("None" if s is None else str(s) for s in layer.output_shape) + ")"
            rows.append((str(i), layer.describe(), shape, f"{layer.n_params:,}"))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        rule = "-" * (sum(widths) + 6)

        def fmt(row: tuple[str, ...]) -> str:
            return f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}"

        itemsize = 8 if self.backend.dtype_name == "float64" else 4
        lines = [f"Sequential on {self.backend}", rule, fmt(rows[0]), rule]
        lines += [fmt(row) for row in rows[1:]]
        lines += [
            rule,
            f"Input shape: (None, {', '.join(map(str, self.input_shape))})",
            f"Total params: {self.n_params:,} ({self.n_params * itemsize / 2**20:.2f} MiB)",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n], backend={str(self.backend)!r})"
