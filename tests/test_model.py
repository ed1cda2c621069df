"""Sequential: building, summary, configs, parameters, moving between backends, input checks."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L


def paper_model(**kwargs):
    return nb.Sequential([L.Dense(784, 512, "relu"), L.Dense(512, 10, "softmax")], **kwargs)


def test_summary_lists_layers_shapes_and_counts():
    text = paper_model(backend="numpy").summary()
    assert "Dense (relu)" in text and "(None, 512)" in text and "401,920" in text
    assert "Dense (softmax)" in text and "5,130" in text
    assert "Total params: 407,050" in text


def test_parameters_are_named_like_pytorch_and_shaped_like_the_paper():
    params = paper_model(backend="numpy").parameters()
    assert list(params) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert params["0.weight"].shape == (784, 512) and params["1.bias"].shape == (10,)
    np.testing.assert_array_equal(params["0.bias"], 0)


def test_he_initialisation_has_the_papers_scale():
    w = nb.to_numpy(paper_model(backend="numpy", dtype="float64").parameters()["0.weight"])
    assert abs(w.std() - np.sqrt(2 / 784)) < 0.002 and abs(w.mean()) < 0.001


def test_paper_layers_config_builds_the_same_model():
    config = [{"output_size": 512, "activation": "relu"}, {"units": 10, "activation": "softmax"}]
    a = nb.Sequential.from_layers_config(config, input_size=784, backend="numpy", seed=3)
    b = paper_model(backend="numpy", seed=3)
    for (ka, va), (kb, vb) in zip(a.parameters().items(), b.parameters().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)


def test_config_round_trip_rebuilds_the_architecture():
    model = nb.Sequential([L.Dense(6, 5, L.LeakyReLU(0.2)), L.Dropout(0.3), L.Dense(5, 2, init="glorot")],
                          backend="numpy", seed=4)
    clone = nb.Sequential.from_config(model.get_config(), backend="numpy")
    assert clone.get_config() == model.get_config()
    assert clone.layers[0].activation.negative_slope == 0.2
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(clone.parameters()[name], value)


@pytest.mark.parametrize("name", ["torch", "array_api_strict:device1"])
def test_moving_a_model_keeps_its_function(name):
    pytest.importorskip(name.split(":")[0])
    model = nb.Sequential([L.Dense(4, 3, "tanh"), L.Dense(3, 2)], backend="numpy", dtype="float64")
    x = np.random.default_rng(0).standard_normal((5, 4))
    before = model.predict(x)
    model.to(name)
    assert model.backend.name == name.split(":")[0]
    np.testing.assert_allclose(model.predict(x), before, rtol=1e-12)
    model.to("numpy", dtype="float32")
    assert model.parameters()["0.weight"].dtype == np.float32
    np.testing.assert_allclose(model.predict(x.astype(np.float32)), before, rtol=1e-5)


def test_moving_to_a_backend_object_takes_its_dtype_unless_one_is_given():
    model = nb.Sequential([L.Dense(4, 3)], backend="numpy")
    float64 = nb.get_backend("numpy", dtype="float64")
    assert model.to(float64).parameters()["0.weight"].dtype == np.float64
    assert model.to("numpy").parameters()["0.weight"].dtype == np.float64  # a name keeps the model's
    assert model.to(float64, dtype="float32").parameters()["0.weight"].dtype == np.float32


def test_predict_batches_and_restores_training_mode():
    model = nb.Sequential([L.Dense(3, 4, "relu"), L.Dropout(0.5), L.Dense(4, 2)], backend="numpy", seed=1)
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    assert model.training
    p = model.parameters()
    by_hand = np.maximum(x @ p["0.weight"] + p["0.bias"], 0) @ p["2.weight"] + p["2.bias"]  # no dropout in eval
    np.testing.assert_allclose(model.predict(x, batch_size=None), by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=3), model.predict(x, batch_size=None), rtol=1e-6)
    assert model.training
    np.testing.assert_array_equal(model.predict_classes(x), np.argmax(by_hand, axis=1))
    assert model.predict_classes(x).dtype == np.int64


def test_dropout_is_the_identity_in_eval_mode_and_inverted_in_training():
    model = nb.Sequential([L.Dropout(0.25)], backend="numpy", input_shape=(1000,), seed=0)
    x = np.random.default_rng(0).random((20, 1000)).astype(np.float32) + 1.0
    model.eval()
    np.testing.assert_array_equal(model.forward(x), x)
    model.train()
    out = model.forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)  # the survivors scaled by 1 / (1 - rate)
    assert 0.72 < kept.mean() < 0.78


def test_a_new_model_from_built_layers_shares_their_weights():
    # The Keras habit: a trained model's layers plus a Softmax head, for probabilities.
    model = nb.Sequential([L.Dense(4, 5, "relu"), L.Dense(5, 3)], backend="numpy", seed=1)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    logits = model.predict(x)
    probabilities = nb.Sequential([*model.layers, L.Softmax()], backend="numpy", seed=99).predict(x)
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x), logits)  # the first model is untouched
    with pytest.raises(ValueError, match=r"layer 0 \(Dense \(relu\)\) was built by another model \(numpy/cpu/float32"):
        nb.Sequential(model.layers, backend="numpy", dtype="float64")


def test_a_failed_model_leaves_its_layers_free_and_a_shared_layer_is_not_moved_under_another_model():
    layers = [L.Dense(8, 16, "relu"), L.Dense(32, 3)]
    with pytest.raises(ValueError, match="expects 32 input features"):
        nb.Sequential(layers, backend="numpy", dtype="float64")
    layers[1] = L.Dense(16, 3)
    model = nb.Sequential(layers, backend="numpy")  # float32 now: the failed float64 model claimed nothing
    head = nb.Sequential([*model.layers, L.Softmax()], backend="numpy")
    with pytest.raises(ValueError, match=r"layer\(s\) \[0, 1\] are shared with another model"):
        model.to(dtype="float64")
    assert head.parameters()["0.weight"].dtype == np.float32
    del head
    import gc

    gc.collect()
    assert model.to(dtype="float64").parameters()["0.weight"].dtype == np.float64  # no longer shared


def test_predict_proba_and_classes_of_a_one_output_model():
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    scores = nb.Sequential([L.Dense(4, 1)], backend="numpy", seed=0)
    sigmoid = nb.Sequential([L.Dense(4, 1, "sigmoid")], backend="numpy", seed=0)
    z = scores.predict(x)[:, 0]
    p = 1 / (1 + np.exp(-z))
    for model in (scores, sigmoid):
        np.testing.assert_allclose(model.predict_proba(x), np.stack([1 - p, p], axis=1), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(model.predict_classes(x), (p > 0.5).astype(np.int64))
    assert 0 < scores.predict_classes(x).sum() < 50  # both classes occur: not argmax over one column
    big = nb.Sequential([L.Dense(1, 1)], backend="numpy", seed=0)
    with np.errstate(over="raise", invalid="raise"):  # no overflow for scores far from 0 (underflow to 0 is fine)
        proba = big.predict_proba(np.array([[1e30], [-1e30]], np.float32))
    assert set(np.round(proba[:, 1]).tolist()) == {0.0, 1.0}


def test_layers_can_be_copied_and_pickled():
    import copy
    import pickle

    model = nb.Sequential([L.Dense(4, 5, "relu"), L.Dense(5, 3)], backend="numpy", seed=1)
    for clone in (copy.deepcopy(model.layers[0]), pickle.loads(pickle.dumps(model.layers[0])), copy.copy(model.layers[0])):
        np.testing.assert_array_equal(clone.params["weight"], model.layers[0].params["weight"])
        assert not clone.models  # a copy belongs to no model yet
    pickle.dumps(L.Dense(4, 2))


def test_predict_proba_refuses_outputs_that_are_not_probabilities_or_scores():
    x = np.ones((2, 4), np.float32)
    for head in (L.Dense(4, 3, "sigmoid"), L.Dense(4, 1, "tanh"), L.Dense(4, 3, "relu")):
        with pytest.raises(ValueError, match="predict_proba needs raw scores, a Softmax or .for one output. a Sigmoid"):
            nb.Sequential([head], backend="numpy").predict_proba(x)
    nb.Sequential([L.Dense(4, 3, "linear")], backend="numpy").predict_proba(x)


def test_one_layer_object_in_two_places_is_refused():
    relu = L.ReLU()
    with pytest.raises(ValueError, match="layer 2 uses the same ReLU object as layer 1"):
        nb.Sequential([L.Dense(4, 4), relu, relu], backend="numpy")
    tanh = L.Tanh()
    with pytest.raises(ValueError, match="layer 1 uses the same Tanh object as layer 0"):
        nb.Sequential([L.Dense(4, 4, tanh), L.Dense(4, 4, tanh)], backend="numpy")


def test_predict_proba_gives_probabilities_for_logits_and_softmax_models():
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    logits = nb.Sequential([L.Dense(4, 3)], backend="numpy", seed=1)
    z = logits.predict(x)
    expected = np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)
    np.testing.assert_allclose(logits.predict_proba(x), expected, rtol=1e-5)
    softmax = nb.Sequential([L.Dense(4, 3, "softmax")], backend="numpy", seed=1)
    np.testing.assert_allclose(softmax.predict_proba(x), softmax.predict(x), rtol=0)  # already probabilities
    np.testing.assert_array_equal(logits.predict_proba(x).argmax(1), logits.predict_classes(x))


def test_to_changes_only_the_dtype_when_no_backend_is_named():
    model = nb.Sequential([L.Dense(4, 3)], backend="array_api_strict:device1")
    model.to(dtype="float64")
    assert model.backend.name == "array_api_strict" and "device1" in str(model.backend.device)
    assert model.backend.dtype_name == "float64" and str(model.parameters()["0.weight"].dtype).endswith("float64")


def test_set_parameters_checks_names_shapes_and_dtypes():
    model = nb.Sequential([L.Dense(4, 2)], backend="numpy")
    with pytest.raises(KeyError, match="unknown parameter '3.weight'"):
        model.set_parameters({"3.weight": np.zeros((4, 2))})
    with pytest.raises(ValueError, match=r"parameter 0.weight has shape \(4, 2\), got \(2, 4\)"):
        model.set_parameters({"0.weight": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="parameter 0.weight must be a floating-point array, got dtype int64"):
        model.set_parameters({"0.weight": np.ones((4, 2), dtype=np.int64)})
    model.set_parameters({"0.weight": np.full((4, 2), 0.1, dtype=np.float64)})
    assert model.parameters()["0.weight"].dtype == np.float32  # the model's precision, not the value's


def test_load_state_dict_keeps_the_models_dtypes():
    source = nb.Sequential([L.Dense(4, 3), L.BatchNorm(3), L.Dense(3, 2)], backend="numpy", dtype="float64", seed=1)
    model = nb.Sequential([L.Dense(4, 3), L.BatchNorm(3), L.Dense(3, 2)], backend="numpy", seed=2)
    model.load_state_dict(source.state_dict())
    assert {value.dtype for value in model.state_dict().values()} == {np.dtype(np.float32)}
    np.testing.assert_allclose(model.state_dict()["0.weight"], source.state_dict()["0.weight"], rtol=1e-6)


@pytest.mark.parametrize("spoil,message", [
    (lambda sd: sd.update({"2.weight": np.zeros((5, 5))}), r"parameter 2.weight has shape"),
    (lambda sd: sd.update({"1.running_var": np.ones(7)}), r"buffer 1.running_var has shape"),
    (lambda sd: sd.update({"2.bias": np.ones(2, np.int64)}), r"2.bias must be a floating-point array"),
], ids=["parameter-shape", "buffer-shape", "dtype"])
def test_a_state_that_does_not_fit_leaves_the_model_unchanged(spoil, message):
    def net(seed):
        return nb.Sequential([L.Dense(4, 3), L.BatchNorm(3), L.Dense(3, 2)], backend="numpy", seed=seed)

    model, before = net(0), net(0).state_dict()
    state = {name: value + 1 for name, value in net(1).state_dict().items()}
    spoil(state)
    with pytest.raises(ValueError, match=message):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_set_parameters_assigns_nothing_when_one_value_does_not_fit():
    model = nb.Sequential([L.Dense(4, 3), L.Dense(3, 2)], backend="numpy", seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"parameter 1.weight has shape \(3, 2\), got \(2, 2\)"):
        model.set_parameters({"0.weight": np.ones((4, 3)), "1.weight": np.ones((2, 2))})
    np.testing.assert_array_equal(model.state_dict()["0.weight"], before["0.weight"])


@pytest.mark.parametrize("name", ["numpy", "array_api_strict:device1", "torch"])
def test_float64_input_is_cast_to_the_models_float32(name):
    pytest.importorskip(name.split(":")[0])
    model = nb.Sequential([L.Dense(4, 3, "relu"), L.Dense(3, 2)], backend=name, seed=0)
    x64 = np.random.default_rng(0).standard_normal((5, 4))
    expected = model.predict(x64.astype(np.float32))
    on_device = model.backend.asarray(x64, dtype="float64")  # float64 already on the model's device
    out = model.predict_on_device(on_device)
    assert out.dtype == model.backend.dtype
    np.testing.assert_allclose(nb.to_numpy(out), expected, rtol=1e-6)
    assert model.layers[0](on_device).dtype == model.backend.dtype


@pytest.mark.parametrize("name", ["torch", "array_api_strict:device1"])
def test_training_goes_on_after_moving_the_model(name):
    # The optimizer's state follows the parameters to their new library, device and dtype.
    pytest.importorskip(name.split(":")[0])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 2, 40)
    model = nb.Sequential([L.Dense(4, 3, "relu"), L.Dense(3, 2)], backend="numpy", seed=0)
    trainer = nb.Trainer(model, optimizer=nb.optimizers.Adam(0.01))
    trainer.fit(x, y, epochs=2, batch_size=10, verbose=0)
    model.to(name, dtype="float64")
    history = trainer.fit(x, y, epochs=2, batch_size=10, verbose=0)
    assert np.isfinite(history.loss[-1])
    state = trainer.optimizer.state["0.weight"]["exp_avg"]
    assert type(state) is type(model.parameters()["0.weight"]) and state.dtype == model.backend.dtype


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: nb.Sequential([]), "at least one layer"),
        (lambda: nb.Sequential([L.ReLU()]), "pass input_shape"),
        (lambda: nb.Sequential([L.Dense(4, 3), L.Dense(5, 2)]), "expects 5 input features, but the previous"),
        (lambda: L.Dense(0, 3), "in_features must be a positive integer"),
        (lambda: L.Dense(3, 2, "swish"), "unknown activation 'swish'"),
        (lambda: L.Dense(3, 2, init="orthogonal"), "unknown initializer 'orthogonal'"),
        (lambda: L.Dropout(1.0), r"Dropout rate must be in \[0, 1\)"),
        (lambda: nb.Sequential([L.Dense(2, 2)], input_shape=(3, 2)), "Dense expects flat inputs"),
    ],
)
def test_bad_architectures_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_dense_infers_its_width_from_the_previous_layer():
    model = nb.Sequential([L.Flatten(), L.Dense(None, 2)], input_shape=(2, 3), backend="numpy")
    assert model.layers[1].in_features == 6 and model.parameters()["1.weight"].shape == (6, 2)


def test_backward_without_a_training_forward_says_what_to_do():
    model = nb.Sequential([L.Dense(3, 2, "relu")], backend="numpy").eval()
    model.forward(np.zeros((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="needs a forward\\(\\) in training mode"):
        model.backward(np.zeros((1, 2), np.float32))


def test_dropout_backward_needs_its_forward_and_releases_the_mask():
    layer = nb.Sequential([L.Dense(3, 4), L.Dropout(0.5)], backend="numpy", seed=0).layers[1]
    with pytest.raises(RuntimeError, match="needs a forward\\(\\) in training mode"):
        layer.backward(np.ones((2, 4), np.float32))
    layer.forward(np.ones((2, 4), np.float32))
    layer.backward(np.ones((2, 4), np.float32))
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="needs a forward"):
        layer.backward(np.ones((2, 4), np.float32))
