"""Convolution, pooling and batch normalisation: gradients, agreement with PyTorch, shapes, errors,
and a small CNN that learns."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnbackend as nb
from nnbackend import layers as L
from nnbackend.random import Streams

F64 = nb.get_backend("numpy", dtype="float64")


def built(layer: L.Layer, input_shape: tuple[int, ...], backend: nb.Backend = F64) -> L.Layer:
    layer.build(input_shape, backend, Streams(0))
    return layer


def randn(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def distinct(seed: int, *shape: int) -> np.ndarray:
    """Values at least 0.01 apart (no ties, no switching of a max under a 1e-6 nudge), shuffled."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) * 0.01 - size * 0.005).reshape(shape)


# -- gradient checks ---------------------------------------------------------------------------------
def numeric_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``f()`` with respect to each element of ``array`` (perturbed in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        up = f()
        array[index] = saved - eps
        down = f()
        array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12))


def check_gradients(layer: L.Layer, x: np.ndarray) -> None:
    """Input and parameter gradients of ``sum(layer(x) * r)`` against central differences."""
    x = x.copy()
    for key in layer.params:
        layer.params[key] = np.array(layer.params[key], copy=True)
    r = randn(99, *layer.forward(x).shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x) * r))

    layer.forward(x)
    dx = layer.backward(r)
    analytic = {"input": dx, **{k: np.array(v) for k, v in layer.grads.items()}}
    numeric = {"input": numeric_gradient(loss, x), **{k: numeric_gradient(loss, v) for k, v in layer.params.items()}}
    for name in analytic:
        assert relative_error(analytic[name], numeric[name]) < 1e-6, name


@pytest.mark.parametrize(
    "kwargs, input_shape",
    [
        ({"kernel_size": 3}, (2, 5, 5)),
        ({"kernel_size": 3, "padding": 1, "activation": "tanh"}, (2, 5, 4)),
        ({"kernel_size": (3, 2), "stride": 2}, (2, 7, 6)),
        ({"kernel_size": 2, "padding": "same"}, (1, 4, 5)),
        ({"kernel_size": 3, "stride": (2, 1), "padding": (1, 2)}, (3, 5, 4)),
    ],
)
def test_conv2d_gradients(kwargs: dict[str, Any], input_shape: tuple[int, ...]) -> None:
    layer = built(L.Conv2D(input_shape[0], 3, **kwargs), input_shape)
    layer.params["bias"] = randn(5, 3)
    check_gradients(layer, randn(1, 2, *input_shape))


@pytest.mark.parametrize("pool_size, stride", [(2, None), (3, 2), ((2, 3), 1)])
@pytest.mark.parametrize("cls", [L.MaxPool2D, L.AvgPool2D])
def test_pooling_gradients(cls: type[L.Layer], pool_size: Any, stride: Any) -> None:
    layer = built(cls(pool_size, stride), (2, 6, 7))
    check_gradients(layer, distinct(2, 2, 2, 6, 7))


@pytest.mark.parametrize("input_shape", [(4,), (3, 3, 4)])
def test_batchnorm_gradients(input_shape: tuple[int, ...]) -> None:
    layer = built(L.BatchNorm(input_shape[0]), input_shape)
    layer.params = {"weight": randn(3, input_shape[0]) + 1.0, "bias": randn(4, input_shape[0])}
    check_gradients(layer, randn(1, 5, *input_shape) * 2.0 + 0.5)


# -- agreement with PyTorch --------------------------------------------------------------------------
def torch_grads(fn: Callable[..., Any], g: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``fn(*tensors)`` in float64 and the gradients of ``sum(fn * g)`` with respect to every input."""
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    (out * torch.tensor(g)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize(
    "kernel, stride, padding, size",
    [
        (3, 1, 0, (6, 6)),
        (3, 1, 1, (5, 7)),
        (3, 2, 1, (8, 7)),
        (5, 2, 2, (9, 9)),
        ((3, 1), (1, 2), (1, 0), (6, 5)),
        (1, 1, 0, (4, 4)),
        (3, 1, "same", (5, 6)),
        (4, 1, "same", (6, 5)),
        (2, 3, 0, (8, 7)),
    ],
)
def test_conv2d_matches_torch(kernel: Any, stride: Any, padding: Any, size: tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    layer = built(L.Conv2D(3, 4, kernel, stride, padding), (3, *size))
    layer.params["bias"] = randn(7, 4)
    x = randn(1, 2, 3, *size)
    y = layer.forward(x)
    g = randn(2, *y.shape)
    dx = layer.backward(g)
    expected, (tx, tw, tb) = torch_grads(
        lambda a, w, b: torch.nn.functional.conv2d(a, w, b, stride=stride, padding=padding),
        g, x, layer.params["weight"], layer.params["bias"],
    )
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], tw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], tb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool_size, stride", [(2, None), (2, 1), (3, 2), ((2, 3), (1, 2))])
@pytest.mark.parametrize("kind", ["max", "avg", "max with ties"])
def test_pooling_matches_torch(kind: str, pool_size: Any, stride: Any) -> None:
    torch = pytest.importorskip("torch")
    cls, fn = (L.AvgPool2D, torch.nn.functional.avg_pool2d) if kind == "avg" else (L.MaxPool2D, torch.nn.functional.max_pool2d)
    layer = built(cls(pool_size, stride), (3, 7, 8))
    x = randn(1, 2, 3, 7, 8)
    if kind == "max with ties":
        x = np.round(x)  # mostly -1, 0 and 1: most windows hold their maximum more than once
    y = layer.forward(x)
    g = randn(2, *y.shape)
    expected, (tx,) = torch_grads(lambda a: fn(a, pool_size, stride if stride is not None else pool_size), g, x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(g), tx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2)])
def test_batchnorm_training_matches_torch(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    layer = built(L.BatchNorm(4, momentum=0.2, eps=1e-3), shape[1:])
    weight, bias = randn(3, 4), randn(4, 4)
    layer.params = {"weight": weight, "bias": bias}
    x = randn(1, *shape) * 3.0 + 2.0
    y = layer.forward(x)
    g = randn(2, *shape)
    dx = layer.backward(g)
    expected, (tx, tw, tb) = torch_grads(
        lambda a, w, b: torch.nn.functional.batch_norm(a, None, None, w, b, training=True, eps=1e-3),
        g, x, weight, bias,
    )
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["weight"], tw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], tb, rtol=1e-10, atol=1e-12)


def test_batchnorm_running_statistics_and_eval_match_torch_batchnorm2d() -> None:
    torch = pytest.importorskip("torch")
    reference = torch.nn.BatchNorm2d(3, momentum=0.3, dtype=torch.float64)
    layer = built(L.BatchNorm(3, momentum=0.3), (3, 4, 4))
    for step in range(4):
        x = randn(step, 5, 3, 4, 4) * (step + 1) + step
        y = layer.forward(x)
        np.testing.assert_allclose(y, reference(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], reference.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], reference.running_var.numpy(), rtol=1e-12)
    layer.set_training(False)
    reference.eval()
    x = randn(9, 2, 3, 4, 4)
    np.testing.assert_allclose(layer.forward(x), reference(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_batchnorm_replaces_buffers_and_never_writes_its_input() -> None:
    layer = built(L.BatchNorm(3), (3, 2, 2))
    before = {k: v for k, v in layer.buffers.items()}
    snapshot = {k: v.copy() for k, v in before.items()}
    x = randn(0, 4, 3, 2, 2)
    x.flags.writeable = False
    layer.backward(layer.forward(x))
    for key, old in before.items():
        assert layer.buffers[key] is not old
        np.testing.assert_array_equal(old, snapshot[key])


@pytest.mark.parametrize(
    "layer", [L.Conv2D(2, 3, 3, padding=1), L.MaxPool2D(2), L.AvgPool2D(3, 1), L.BatchNorm(2)], ids=repr
)
def test_read_only_inputs_and_gradients_are_accepted(layer: L.Layer) -> None:
    layer = built(layer, (2, 6, 6))
    x = randn(0, 3, 2, 6, 6)
    x.flags.writeable = False
    g = np.ones((3, *layer.output_shape))
    g.flags.writeable = False
    assert layer.backward(layer.forward(x)).shape == x.shape
    layer.forward(x)  # each forward serves one backward
    assert layer.backward(g).shape == x.shape


# -- shapes, configs and summaries -------------------------------------------------------------------
def test_cnn_summary_shows_every_shape_and_parameter_count() -> None:
    model = nb.models.cnn(backend="numpy")
    text = model.summary()
    for expected in ("(None, 32, 28, 28)", "(None, 32, 14, 14)", "(None, 64, 7, 7)", "(None, 3136)",
                     "Conv2D 3x3", "BatchNorm", "MaxPool2D 2x2", "Total params: 421,834"):
        assert expected in text
    assert model.predict(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)
    assert {"1.running_mean", "1.running_var", "5.running_mean", "5.running_var"} <= set(model.state_dict())


def test_mlp_builds_the_papers_network() -> None:
    model = nb.models.mlp(backend="numpy")
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert model.n_params == 784 * 512 + 512 + 512 * 10 + 10


def test_layers_rebuild_from_config_and_from_layers_config() -> None:
    configs = [
        {"type": "Conv2D", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": "same",
         "activation": {"type": "LeakyReLU", "negative_slope": 0.2}},
        {"type": "BatchNorm", "num_features": 4},
        {"type": "MaxPool2D", "pool_size": 2},
        {"type": "Conv2D", "in_channels": 4, "out_channels": 2, "kernel_size": [3, 2], "stride": [2, 1]},
        {"type": "AvgPool2D", "pool_size": [1, 2]},
        {"type": "Flatten"},
        {"units": 3},
    ]
    model = nb.Sequential.from_layers_config(configs, input_shape=(1, 12, 12), backend="numpy")
    assert [layer.output_shape for layer in model.layers] == [
        (4, 12, 12), (4, 12, 12), (4, 6, 6), (2, 2, 5), (2, 2, 2), (8,), (3,)
    ]
    rebuilt = nb.Sequential.from_config(model.get_config(), backend="numpy")
    assert rebuilt.get_config() == model.get_config()
    x = randn(0, 2, 1, 12, 12).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 3), channels=st.integers(1, 3), height=st.integers(3, 9), width=st.integers(3, 9),
    kernel=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 1), pool=st.integers(1, 3),
)
def test_forward_and_backward_shapes_hold_for_any_geometry(
    batch: int, channels: int, height: int, width: int, kernel: int, stride: int, padding: int, pool: int
) -> None:
    x = randn(0, batch, channels, height, width)
    for layer in (L.Conv2D(channels, 2, kernel, stride, padding), L.MaxPool2D(pool, stride),
                  L.AvgPool2D(pool, stride), L.BatchNorm(channels)):
        built(layer, (channels, height, width))
        y = layer.forward(x)
        assert (y.shape[0], *y.shape[1:]) == (batch, *layer.output_shape)
        dx = layer.backward(np.ones(y.shape))
        assert dx.shape == x.shape
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


# -- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, x, message",
    [
        (L.Conv2D(3, 4, 3), np.zeros((2, 3, 5)), r"Conv2D expects input of shape \(batch, 3, height, width\), got \(2, 3, 5\)"),
        (L.Conv2D(3, 4, 3), np.zeros((2, 1, 5, 5)), r"\(batch, 3, height, width\), got \(2, 1, 5, 5\)"),
        (L.Conv2D(1, 4, 3), np.zeros((2, 1, 2, 5)), r"3x3 kernel .* at least that size, got 2x5"),
        (L.MaxPool2D(2), np.zeros((2, 8)), r"MaxPool2D expects input of shape \(batch, channels, height, width\)"),
        (L.AvgPool2D(3), np.zeros((1, 1, 2, 2)), r"3x3 window needs inputs of at least that size, got 2x2"),
        (L.BatchNorm(4), np.zeros((2, 3)), r"BatchNorm expects input of shape \(batch, 4\) .* got \(2, 3\)"),
        (L.BatchNorm(4), np.zeros((1, 4)), r"more than one value per feature"),
    ],
)
def test_bad_inputs_say_what_was_expected_and_what_came(layer: L.Layer, x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer.forward(x)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.Conv2D(0, 4, 3), "in_channels must be a positive integer"),
        (lambda: L.Conv2D(1, 4, 0), "kernel_size must be an integer >= 1"),
        (lambda: L.Conv2D(1, 4, (3, 3, 3)), "kernel_size must be an integer >= 1 or a pair"),
        (lambda: L.Conv2D(1, 4, 3, padding=-1), "padding must be an integer >= 0"),
        (lambda: L.Conv2D(1, 4, 3, stride=2, padding="same"), "padding='same' needs stride 1"),
        (lambda: L.Conv2D(1, 4, 3, padding="full"), "padding must be an integer, a pair, 'same' or 'valid'"),
        (lambda: L.MaxPool2D(2, stride=0), "stride must be an integer >= 1"),
        (lambda: L.BatchNorm(3, momentum=1.5), "momentum must be in"),
    ],
)
def test_bad_arguments_are_rejected(make: Callable[[], L.Layer], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_model_built_for_other_channels_says_so() -> None:
    with pytest.raises(ValueError, match=r"Conv2D expects per-sample inputs of shape \(3, height, width\), got \(1, 28, 28\)"):
        nb.Sequential([L.Conv2D(3, 4, 3)], input_shape=(1, 28, 28), backend="numpy")


# -- learning ------------------------------------------------------------------------------------------
def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 8x8 images of a horizontal (class 0), vertical (1) or diagonal (2) bar at a random place."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, 1, 8, 8))
    y = rng.integers(0, 3, n)
    for i, (label, at) in enumerate(zip(y, rng.integers(1, 7, n))):
        if label == 0:
            x[i, 0, at, 1:7] += 1.0
        elif label == 1:
            x[i, 0, 1:7, at] += 1.0
        else:
            x[i, 0, np.arange(8), (np.arange(8) + at) % 8] += 1.0
    return x.astype(np.float32), y


def test_a_small_cnn_learns_to_tell_bars_apart() -> None:
    x, y = bars(384, seed=0)
    x_test, y_test = bars(256, seed=1)
    model = nb.Sequential(
        [L.Conv2D(1, 8, 3, padding=1), L.BatchNorm(8), L.MaxPool2D(2), L.ReLU(), L.Flatten(), L.Dense(128, 3)],
        input_shape=(1, 8, 8), backend="numpy", seed=0,
    )
    trainer = nb.Trainer(model, "cross_entropy", nb.optimizers.Adam(0.01))
    trainer.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert trainer.evaluate(x_test, y_test)["accuracy"] >= 0.97
