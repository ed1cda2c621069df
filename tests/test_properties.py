"""Property-based checks over shapes and dtypes: every layer's forward and backward keep shapes, dtypes
and finiteness for any batch size and width; losses are finite and shaped like their input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbackend as nb
from nnbackend import layers as L
from nnbackend import losses
from nnbackend.random import Streams

FLAT_LAYERS = [
    lambda w: L.Dense(w, 3),
    lambda w: L.Dense(w, 5, "relu"),
    lambda w: L.Dense(w, 2, "softmax"),
    lambda w: L.ReLU(),
    lambda w: L.LeakyReLU(),
    lambda w: L.Sigmoid(),
    lambda w: L.Tanh(),
    lambda w: L.Softplus(),
    lambda w: L.Softmax(),
    lambda w: L.Identity(),
    lambda w: L.Dropout(0.3),
    lambda w: L.Flatten(),
]

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(
    make=st.sampled_from(FLAT_LAYERS),
    batch=st.integers(1, 17),
    width=st.integers(1, 9),
    dtype=st.sampled_from(["float32", "float64"]),
    scale=st.sampled_from([1e-3, 1.0, 50.0]),
    seed=st.integers(0, 2**16),
)
def test_layers_keep_shape_dtype_and_finiteness(make, batch, width, dtype, scale, seed):
    backend = nb.get_backend("numpy", dtype=dtype)
    layer = make(width)
    layer.build((width,), backend, Streams(seed))
    rng = np.random.default_rng(seed)
    x = backend.asarray(rng.standard_normal((batch, width)) * scale)
    y = layer(x)
    assert y.shape == (batch, *layer.output_shape) and y.dtype == x.dtype
    assert np.all(np.isfinite(y))
    dx = layer.backward(backend.asarray(rng.standard_normal(y.shape)))
    assert dx.shape == x.shape and dx.dtype == x.dtype and np.all(np.isfinite(dx))
    for key, grad in layer.grads.items():
        assert grad.shape == layer.params[key].shape and grad.dtype == x.dtype


@SETTINGS
@given(
    loss=st.sampled_from([losses.CrossEntropy(), losses.CrossEntropy(from_logits=False),
                          losses.BinaryCrossEntropy(), losses.BinaryCrossEntropy(from_logits=True), losses.MSE()]),
    batch=st.integers(1, 12),
    classes=st.integers(2, 7),
    scale=st.sampled_from([1e-2, 1.0, 1e4]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_losses_are_finite_and_shaped_like_pred(loss, batch, classes, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    pred = (rng.standard_normal((batch, classes)) * scale).astype(dtype)
    if not loss.expects_logits and not isinstance(loss, losses.MSE):
        e = np.exp(pred - pred.max(axis=1, keepdims=True))
        pred = (e / e.sum(axis=1, keepdims=True)).astype(dtype)
    labels = rng.integers(0, classes, batch)
    value, grad = loss.value_and_gradient(pred, labels)
    assert value.shape == () and np.isfinite(value)
    assert grad.shape == pred.shape and grad.dtype == dtype and np.all(np.isfinite(grad))


def test_cross_entropy_is_exact_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    value, grad = losses.CrossEntropy().value_and_gradient(logits, np.array([1, 1]))
    assert np.isclose(float(value), (2e4 + 0.0) / 2)  # sample 0 misses by 2e4 nats, sample 1 is certain
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
