"""Every public entry point refuses bad input with a message naming the argument, what was expected and
what arrived, before any state changes (the table below is the specification)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend import losses

RNG = np.random.default_rng(0)
X = RNG.standard_normal((30, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 30)


def model():
    return nb.Sequential([L.Dense(4, 5, "relu"), L.Dense(5, 3)], backend="numpy", seed=0)


def fit(**kwargs):
    args = {"x": X, "y": Y, "epochs": 1, "verbose": 0, **kwargs}
    return nb.Trainer(model()).fit(args.pop("x"), args.pop("y"), **args)


def bn_model():
    return nb.Sequential([L.Dense(4, 5), L.BatchNorm(5), L.ReLU(), L.Dense(5, 3)], backend="numpy", seed=0)


def regressor():
    return nb.Sequential([L.Dense(4, 1)], backend="numpy", seed=0)


def torch_array(shape):
    torch = pytest.importorskip("torch")
    return torch.zeros(shape)


def strict_array(shape, device):
    xs = pytest.importorskip("array_api_strict")
    return xs.zeros(shape, device=xs.Device(device))


nan_x = X.copy()
nan_x[3, 1] = np.nan
inf_x = X.copy()
inf_x[0, 0] = np.inf

CASES = [
    # (entry point, call, error type, message)
    ("fit: wrong feature count", lambda: fit(x=X[:, :3]), ValueError, r"train x must have shape \(N, 4\) for this model, got \(30, 3\)"),
    ("fit: wrong rank", lambda: fit(x=X[:, :, None]), ValueError, r"train x must have shape \(N, 4\) for this model, got \(30, 4, 1\); the same numbers per sample: x.reshape\(len\(x\), 4\)"),
    ("predict: one sample", lambda: model().predict(X[0]), ValueError, r"x must have shape \(N, 4\) for this model, got \(4,\); for one sample, add the batch axis: x\[None\]"),
    ("predict: images into a CNN", lambda: nb.Sequential([L.Conv2D(1, 2, 3)], input_shape=(1, 5, 5), backend="numpy").predict(np.zeros((3, 5, 5), np.float32)), ValueError, r"got \(3, 5, 5\); the same numbers per sample: x.reshape\(len\(x\), 1, 5, 5\)"),
    ("fit: sample counts", lambda: fit(y=Y[:20]), ValueError, "train x and train y must have the same number of samples, got 30 and 20"),
    ("fit: integer images", lambda: fit(x=(X * 255).astype(np.uint8)), ValueError, r"train x must be a floating-point array, got dtype uint8 \(scale images to floats first"),
    ("fit: NaN", lambda: fit(x=nan_x), ValueError, "train x contains 1 NaN or infinite value"),
    ("fit: infinity", lambda: fit(x=inf_x), ValueError, "train x contains 1 NaN or infinite value"),
    ("fit: beyond float32", lambda: fit(x=np.where(X == X[0, 0], 1e39, X.astype(np.float64))), ValueError, r"train x holds 1 value\(s\) beyond the range of float32, the model's precision \(largest 3.4e\+38\)"),
    ("predict: beyond float32", lambda: model().predict(np.full((2, 4), -1e39)), ValueError, r"x holds 8 value\(s\) beyond the range of float32"),
    ("fit: labels in a column", lambda: fit(y=Y[:, None]), ValueError, r"train y must have shape \(N, 3\) to match the model's outputs, got \(30, 1\) \(class labels in a column: y.ravel\(\)\)"),
    ("fit: targets beyond float32", lambda: nb.Trainer(model(), "mse").fit(X, np.full((30, 3), 1e39), verbose=0), ValueError, r"train y holds 90 value\(s\) beyond the range of float32"),
    ("fit: label too large", lambda: fit(y=np.where(Y == 0, 3, Y)), ValueError, r"train y holds label 3, outside \[0, 3\) for 3 classes"),
    ("fit: negative label", lambda: fit(y=np.where(Y == 0, -1, Y)), ValueError, r"train y holds label -1, outside \[0, 3\)"),
    ("fit: float labels", lambda: fit(y=Y.astype(np.float32)), ValueError, r"train y must be integer class labels \(N,\) or targets \(N, 3\), got dtype float32 with shape \(30,\) \(whole-number labels stored as floats: y.astype\(int\)\)"),
    ("fit: empty", lambda: fit(x=X[:0], y=Y[:0]), ValueError, r"train x is empty \(shape \(0, 4\)\)"),
    ("fit: batch size 0", lambda: fit(batch_size=0), ValueError, "batch_size must be a positive integer, 'full' or None, got 0"),
    ("fit: negative batch size", lambda: fit(batch_size=-5), ValueError, "batch_size must be a positive integer, 'full' or None, got -5"),
    ("fit: epochs 0", lambda: fit(epochs=0), ValueError, "epochs must be a positive integer, got 0"),
    ("fit: validation counts", lambda: fit(validation=(X, Y[:5])), ValueError, "validation x and validation y must have the same number of samples, got 30 and 5"),
    ("fit: validation NaN", lambda: fit(validation=(nan_x, Y)), ValueError, "validation x contains 1 NaN"),
    ("fit: torch data into a numpy model", lambda: fit(x=torch_array((30, 4))), ValueError, r"train x is a torch array of shape \(30, 4\) and dtype torch.float32, but the model lives on numpy"),
    ("fit: not an array", lambda: fit(x={"pixels": 1}), TypeError, "train x must be an array, got dict"),
    ("fit: class labels for one output", lambda: nb.Trainer(nb.Sequential([L.Dense(4, 1, "sigmoid")], backend="numpy"), "bce").fit(X, Y % 2, verbose=0), ValueError, r"this model has one output, so it takes float targets of shape \(N, 1\)"),
    ("trainer: cross-entropy over one output", lambda: nb.Trainer(nb.Sequential([L.Dense(4, 1)], backend="numpy")), ValueError, r"CrossEntropy needs 2 or more outputs: over one output the softmax is always 1.*BinaryCrossEntropy\(from_logits=True\)"),
    ("loss: cross-entropy over one output", lambda: nb.losses.CrossEntropy()(np.zeros((3, 1), np.float32), np.ones((3, 1), np.float32)), ValueError, "CrossEntropy needs 2 or more outputs"),
    ("fit: BatchNorm with a last batch of one", lambda: nb.Trainer(bn_model()).fit(X[:5], Y[:5], batch_size=2, verbose=0), ValueError, "leave a last batch of 1, too few for BatchNorm"),
    ("fit: accuracy monitored without labels", lambda: nb.Trainer(regressor(), "mse").fit(X, X[:, :1], early_stopping=nb.EarlyStopping(monitor="accuracy"), verbose=0), ValueError, "early stopping monitors accuracy, but these targets have no class labels"),
    ("fit: validation without labels", lambda: fit(validation=(X,)), ValueError, r"validation must be a pair \(x_val, y_val\)"),
    ("evaluate: batch size 0", lambda: nb.Trainer(model()).evaluate(X, Y, batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    ("layer: BatchNorm as an activation", lambda: L.Dense(4, 3, activation=L.BatchNorm(3)), ValueError, "BatchNorm is not an activation; choose one of relu,"),
    ("layer: Dropout as an activation", lambda: L.Conv2D(1, 2, 3, activation=L.Dropout(0.5)), ValueError, "Dropout is not an activation; .* or put it in the model as a layer of its own"),
    ("layer: not built", lambda: L.Dense(4, 3)(X), RuntimeError, "Dense must be built before it runs: put it in a Sequential"),
    ("optimizer: betas not a pair", lambda: nb.optimizers.Adam(betas=0.9), ValueError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
    ("early stopping: patience True", lambda: nb.EarlyStopping(patience=True), ValueError, "patience must be a positive integer, got True"),
    ("predict: wrong feature count", lambda: model().predict(X[:, :2]), ValueError, r"x must have shape \(N, 4\) for this model, got \(30, 2\)"),
    ("predict: integer data", lambda: model().predict(X.astype(np.int32)), ValueError, "x must be a floating-point array, got dtype int32"),
    ("predict: NaN", lambda: model().predict(nan_x), ValueError, "x contains 1 NaN or infinite value"),
    ("predict: empty", lambda: model().predict(X[:0]), ValueError, "x is empty"),
    ("predict: batch size 0", lambda: model().predict(X, batch_size=0), ValueError, "batch_size must be a positive integer or None, got 0"),
    ("predict: another backend", lambda: model().predict(torch_array((2, 4))), ValueError, "but the model lives on numpy"),
    ("evaluate: label range", lambda: nb.Trainer(model()).evaluate(X, Y + 3), ValueError, r"evaluation y holds label \d, outside \[0, 3\)"),
    ("evaluate: counts", lambda: nb.Trainer(model()).evaluate(X, Y[:2]), ValueError, "evaluation x and evaluation y must have the same number of samples, got 30 and 2"),
    ("loss: label range", lambda: losses.CrossEntropy()(X[:, :3], Y + 1), ValueError, r"target holds label 3, outside \[0, 3\)"),
    ("loss: counts", lambda: losses.MSE()(X[:, :3], Y[:4]), ValueError, "pred and target must have the same number of samples, got 30 and 4"),
    ("loss: target shape", lambda: losses.BinaryCrossEntropy()(X[:, :3], X), ValueError, r"target must be integer labels of shape \(30,\) or a float array of shape \(30, 3\)"),
    ("loss: integer pred", lambda: losses.CrossEntropy()(Y[:, None].repeat(3, 1), Y), ValueError, "pred must be a floating-point array, got dtype int64"),
    ("loss: pred rank", lambda: losses.CrossEntropy()(X[:, 0], Y), ValueError, r"pred must have 2 dimensions, got shape \(30,\)"),
    ("loss: empty", lambda: losses.CrossEntropy()(X[:0, :3], Y[:0]), ValueError, "pred is empty"),
    ("loss: mixed backends", lambda: losses.CrossEntropy()(X[:, :3], torch_array((30, 3))), ValueError, "target is a torch array .* but pred is a numpy array .*; arrays of two backends cannot be mixed"),
    ("loss: mixed devices", lambda: losses.MSE()(strict_array((2, 3), "device1"), strict_array((2, 3), "CPU_DEVICE")), ValueError, "target is on device .*CPU_DEVICE.* but pred is on .*device1"),
    ("layer: wrong width", lambda: model().layers[0](X[:, :3]), ValueError, r"Dense input must have shape \(batch, 4\), got \(30, 3\)"),
    ("layer: integer input", lambda: L.ReLU()(Y), ValueError, "ReLU input must be a floating-point array, got dtype int64"),
    ("layer: another backend", lambda: model().layers[0](torch_array((2, 4))), ValueError, "Dense input is a torch array .* but Dense's parameters is a numpy array"),
    ("metrics: one score column", lambda: nb.metrics.accuracy(Y % 2, X[:, :1]), ValueError, r"y_pred has one score column .* threshold it into 0/1 labels"),
    ("loader: unknown data set", lambda: nb.data.load("cifar-10", download=False), nb.data.DataError, "unknown data set 'cifar-10'"),
    ("metrics: fewer class names than labels", lambda: nb.metrics.classification_report(Y, Y, class_names=["a", "b"]), ValueError, r"label 2, outside the class range \[0, 2\); class_names gives 2 names"),
    ("loss: integer targets", lambda: losses.MSE()(X[:, :1], Y[:, None]), ValueError, r"target must be a floating-point array, got dtype int64$"),
    ("loader: missing data folder", lambda: nb.data.load("mnist", data_dir="/nonexistent/data"), nb.data.DataError, f"data_dir {re.escape(str(Path('/nonexistent/data')))}: no such folder"),
    ("model file: a folder", lambda: nb.save_model(model(), Path(__file__).parent), ValueError, "is a folder; pass a file name such as"),
    ("loader: missing file", lambda: nb.data.read_idx("/nonexistent/train-images-idx3-ubyte"), (nb.data.DataError, FileNotFoundError), "nonexistent"),
    ("model file: missing", lambda: nb.load_model("/nonexistent/model.npz"), nb.CheckpointError, "no such file"),
]


@pytest.mark.parametrize("entry,call,error,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(entry, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_refused_fit_changes_nothing():
    m = model()
    trainer = nb.Trainer(m, optimizer=nb.optimizers.Adam(0.01))
    before = m.state_dict()
    for bad in ({"x": nan_x}, {"y": Y + 3}, {"batch_size": 0}, {"validation": (X, Y[:3])}):
        args = {"x": X, "y": Y, **bad}
        with pytest.raises(ValueError):
            trainer.fit(args.pop("x"), args.pop("y"), epochs=1, verbose=0, **args)
    for name, value in m.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert trainer.optimizer.steps == 0 and trainer.optimizer.state == {}


@pytest.mark.parametrize("case", ["batchnorm last batch of one", "accuracy monitored on regression targets"])
def test_a_fit_refused_for_its_settings_takes_no_step(case):
    # These settings only fail once the loop reaches them (the last batch, the first evaluation); fit
    # must see that before the first step.
    if case == "batchnorm last batch of one":
        m, x, y, kwargs = bn_model(), X[:5], Y[:5], {"batch_size": 2}
        trainer = nb.Trainer(m, optimizer=nb.optimizers.Adam(0.01))
    else:
        m, x, y, kwargs = regressor(), X, X[:, :1], {"early_stopping": nb.EarlyStopping(monitor="accuracy")}
        trainer = nb.Trainer(m, "mse", optimizer=nb.optimizers.Adam(0.01))
    before = m.state_dict()
    with pytest.raises(ValueError):
        trainer.fit(x, y, epochs=2, verbose=0, **kwargs)
    assert trainer.optimizer.steps == 0
    for name, value in m.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_batchnorm_on_images_trains_on_a_last_batch_of_one():
    # Per channel the variance comes from height x width values, so one image is enough.
    m = nb.Sequential([L.Conv2D(1, 2, 3, padding=1), L.BatchNorm(2), L.Flatten(), L.Dense(2 * 4 * 4, 3)],
                      input_shape=(1, 4, 4), backend="numpy", seed=0)
    x = RNG.standard_normal((5, 1, 4, 4)).astype(np.float32)
    history = nb.Trainer(m).fit(x, Y[:5], batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.loss[-1])


def test_numpy_integers_are_sizes_like_python_ones():
    m = nb.Sequential([L.Conv2D(np.int64(1), np.int32(2), np.int64(3)), L.Flatten(), L.Dense(None, np.int64(3))],
                      input_shape=(1, 5, 5), backend="numpy")
    assert m.output_shape == (3,) and isinstance(m.layers[2].out_features, int)


def test_inputs_on_autograds_tape_do_not_chain_the_steps():
    torch = pytest.importorskip("torch")
    m = nb.Sequential([L.Dense(4, 3)], backend="torch", seed=0)
    nb.Trainer(m).fit(torch.randn(8, 4, requires_grad=True), torch.tensor(Y[:8]), epochs=3, verbose=0)
    weight = m.parameters()["0.weight"]
    assert not weight.requires_grad and weight.grad_fn is None
