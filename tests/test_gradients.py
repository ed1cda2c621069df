"""Every layer and loss against float64 central differences: relative error < 1e-6."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend import losses
from nnbackend.random import Streams

from .gradcheck import numerical_gradient, relative_error

BACKEND = nb.get_backend("numpy", dtype="float64")
TOL = 1e-6

LAYERS = {
    "Dense": (lambda: L.Dense(5, 4), (5,)),
    "Dense(relu)": (lambda: L.Dense(5, 4, "relu"), (5,)),
    "Dense(tanh, glorot)": (lambda: L.Dense(5, 4, "tanh", init="glorot"), (5,)),
    "Dense(softmax)": (lambda: L.Dense(5, 4, "softmax"), (5,)),
    "ReLU": (L.ReLU, (6,)),
    "LeakyReLU": (lambda: L.LeakyReLU(0.2), (6,)),
    "Sigmoid": (L.Sigmoid, (6,)),
    "Tanh": (L.Tanh, (6,)),
    "Softplus": (L.Softplus, (6,)),
    "Softmax": (L.Softmax, (6,)),
    "Identity": (L.Identity, (6,)),
    "Flatten": (L.Flatten, (2, 3)),
    "Dropout": (lambda: L.Dropout(0.4), (6,)),
}


def _away_from_kinks(x: np.ndarray) -> np.ndarray:
    """Push inputs at least 0.05 from zero, where ReLU-like layers are not differentiable."""
    return np.where(np.abs(x) < 0.05, np.sign(x) * 0.05 + x, x)


@pytest.mark.parametrize("name", LAYERS)
def test_layer_gradients_match_finite_differences(name):
    make, shape = LAYERS[name]
    layer = make()
    layer.build(shape, BACKEND, Streams(0))
    rng = np.random.default_rng(1)
    x = _away_from_kinks(rng.standard_normal((3, *shape)))
    weights = rng.standard_normal((3, *layer.output_shape))

    def objective() -> float:
        if isinstance(layer, L.Dropout):
            layer.rng = np.random.default_rng(5)  # the same mask for every evaluation
        return float(np.sum(layer.forward(x) * weights))

    objective()
    dx = layer.backward(weights)
    assert relative_error(dx, numerical_gradient(lambda _: objective(), x)) < TOL
    for key, param in layer.params.items():
        analytic = layer.grads[key]
        numeric = numerical_gradient(lambda _: objective(), param)
        assert relative_error(analytic, numeric) < TOL, key


def test_whole_model_input_gradient_matches_finite_differences():
    model = nb.Sequential(
        [L.Dense(4, 6, "sigmoid"), L.Dense(6, 5, "softplus"), L.Dense(5, 3, "softmax")],
        backend=BACKEND, seed=3,
    )
    loss = losses.BinaryCrossEntropy()
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 4)), np.array([0, 2, 1, 2])

    def objective(_) -> float:
        return float(loss(model.forward(x), y))

    objective(None)
    dx = model.backward(loss.gradient(model.forward(x), y), input_grad=True)
    assert relative_error(dx, numerical_gradient(objective, x)) < TOL
    for name, param in model.parameters().items():
        assert relative_error(model.gradients()[name], numerical_gradient(objective, param)) < TOL, name


LOSSES = {
    "CrossEntropy(logits)": (losses.CrossEntropy, "logits", "labels"),
    "CrossEntropy(logits, soft targets)": (losses.CrossEntropy, "logits", "soft"),
    "CrossEntropy(probs)": (lambda: losses.CrossEntropy(from_logits=False), "probs", "labels"),
    "BinaryCrossEntropy": (losses.BinaryCrossEntropy, "probs", "labels"),
    "BinaryCrossEntropy(soft targets)": (losses.BinaryCrossEntropy, "probs", "soft"),
    "BinaryCrossEntropy(logits)": (lambda: losses.BinaryCrossEntropy(from_logits=True), "logits", "soft"),
    "MSE(labels)": (losses.MSE, "logits", "labels"),
    "MSE(regression)": (losses.MSE, "logits", "soft"),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients_match_finite_differences(name):
    make, pred_kind, target_kind = LOSSES[name]
    rng = np.random.default_rng(3)
    pred = rng.standard_normal((5, 4))
    if pred_kind == "probs":
        pred = rng.uniform(0.05, 0.95, (5, 4))
    target = rng.integers(0, 4, 5) if target_kind == "labels" else rng.dirichlet(np.ones(4), 5)
    loss = make()
    analytic = loss.gradient(pred, target)
    numeric = numerical_gradient(lambda p: float(loss(p, target)), pred)
    assert relative_error(analytic, numeric) < TOL


def test_paper_gradient_is_the_exact_one_times_the_number_of_classes():
    rng = np.random.default_rng(4)
    pred, target = rng.uniform(0.05, 0.95, (6, 4)), rng.integers(0, 4, 6)
    exact, paper = losses.BinaryCrossEntropy(), losses.BinaryCrossEntropy(paper_gradient=True)
    assert float(paper(pred, target)) == float(exact(pred, target))
    np.testing.assert_allclose(paper.gradient(pred, target), 4 * exact.gradient(pred, target), rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_stays_finite_on_a_saturated_softmax_output(dtype):
    # 1 - 1e-10 rounds to 1 in float32: the clip must still keep log(1 - p) and 1 / (1 - p) finite.
    pred = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    value, grad = losses.BinaryCrossEntropy().value_and_gradient(pred, np.array([0, 2]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert float(value) > 1  # the wrong, certain prediction of the second row is penalised


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_softplus_and_leaky_relu_match_their_formulas_far_into_the_tails(dtype):
    backend = nb.get_backend("numpy", dtype=dtype)
    # float64 references of the values the layers see (x rounded to dtype), without overflow
    x = np.concatenate([np.linspace(-80, 80, 4001), [-1e4, 1e4, 0.0]]).astype(dtype).astype(np.float64)
    e = np.exp(-np.abs(x))
    exact_sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    exact_softplus = np.logaddexp(0, x)
    rtol = 4 * np.finfo(dtype).eps
    ones = backend.asarray(np.ones((1, x.size)))
    sigmoid, softplus, leaky = L.Sigmoid(), L.Softplus(), L.LeakyReLU(0.2)
    for layer in (sigmoid, softplus, leaky):
        layer.set_training(True)
    xb = backend.asarray(x[None, :])
    np.testing.assert_allclose(sigmoid(xb)[0], exact_sigmoid.astype(dtype), rtol=rtol, atol=0)
    np.testing.assert_allclose(softplus(xb)[0], exact_softplus.astype(dtype), rtol=rtol, atol=0)
    np.testing.assert_allclose(softplus.backward(ones)[0], exact_sigmoid.astype(dtype), rtol=rtol, atol=0)
    xd = x.astype(dtype)
    np.testing.assert_array_equal(leaky(xb)[0], np.where(xd > 0, xd, xd * 0.2))
    np.testing.assert_array_equal(leaky.backward(ones)[0], np.where(x > 0, 1.0, 0.2).astype(dtype))
    steep = L.LeakyReLU(3.0)
    steep.set_training(True)
    np.testing.assert_array_equal(steep(xb)[0], np.where(xd > 0, xd, xd * 3.0))


def test_a_second_backward_fills_the_reused_gradient_arrays_correctly():
    # Dense writes later backward passes into the arrays of the first (NumPy/CuPy): that path too must
    # give x^T g and the column sums.
    model = nb.Sequential([L.Dense(4, 3)], backend="numpy", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, grad = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
        model.forward(x)
        model.backward(grad)
        np.testing.assert_allclose(model.gradients()["0.weight"], x.T @ grad, rtol=1e-12)
        np.testing.assert_allclose(model.gradients()["0.bias"], grad.sum(axis=0), rtol=1e-12)


def test_dropout_scales_the_units_it_keeps():
    layer = nb.Sequential([L.Dense(3, 4), L.Dropout(0.4)], backend="numpy", seed=0).layers[1]
    out = layer.forward(np.ones((500, 200), np.float32))
    assert set(np.unique(out)) == {np.float32(0.0), np.float32(1 / 0.6)}
    assert abs(out.mean() - 1.0) < 0.01  # inverted dropout keeps the expected activation
    assert abs((out == 0).mean() - 0.4) < 0.01


def _train_a_bit(seed=0):
    model = nb.Sequential([L.Conv2D(1, 3, 3, padding=1), L.BatchNorm(3), L.ReLU(), L.Flatten(),
                           L.Dense(None, 8, "relu"), L.Dense(8, 3)],
                          input_shape=(1, 5, 5), backend="numpy", dtype="float64", seed=seed)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 1, 5, 5)), rng.integers(0, 3, 40)
    nb.Trainer(model, optimizer=nb.optimizers.Adam(0.01)).fit(x, y, epochs=2, batch_size=10, verbose=0)
    return model.state_dict()


def test_every_in_place_shortcut_gives_the_values_of_the_functional_path(monkeypatch):
    # With NumPy the engine writes into its own temporaries; libraries with read-only arrays (JAX) take
    # the functional path. Pretending nothing is writeable sends every component down that path.
    import nnbackend.inplace
    import nnbackend.layers.activations
    import nnbackend.layers.conv
    import nnbackend.layers.dense
    import nnbackend.layers.normalization
    import nnbackend.optimizers.base

    in_place = _train_a_bit()
    for module in (nnbackend.inplace, losses, nnbackend.layers.activations, nnbackend.layers.conv,
                   nnbackend.layers.dense, nnbackend.layers.normalization, nnbackend.optimizers.base):
        monkeypatch.setattr(module, "writeable", lambda x: False)
    functional = _train_a_bit()
    for name, value in in_place.items():
        np.testing.assert_allclose(functional[name], value, rtol=1e-10, atol=1e-13, err_msg=name)
