"""Trainer.fit: determinism, plain gradient descent, evaluation schedule, early stopping, divergence."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L
from nnbackend import optimizers as O


def blobs(n=300, seed=0, classes=3, features=8):
    centers = np.random.default_rng(100).standard_normal((classes, features)) * 2
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, features))
    return x.astype(np.float32), y


def mlp(seed=0, backend="numpy", dtype=None):
    return nb.Sequential([L.Dense(8, 16, "relu"), L.Dense(16, 3)], backend=backend, dtype=dtype, seed=seed)


def test_learns_a_separable_problem():
    x, y = blobs()
    trainer = nb.Trainer(mlp(), "cross_entropy", O.Adam(0.01))
    history = trainer.fit(x, y, validation=blobs(seed=1), epochs=30, batch_size=32, verbose=0)
    assert history.val_accuracy[-1] >= 0.95
    assert history.loss[-1] < history.loss[0] / 3
    assert trainer.evaluate(*blobs(seed=1))["accuracy"] == pytest.approx(history.val_accuracy[-1])
    assert (trainer.predict(x) == y).mean() >= 0.95


def test_runs_are_bit_identical_on_numpy():
    x, y = blobs()
    runs = []
    for _ in range(2):
        model = nb.Sequential([L.Dense(8, 16, "relu"), L.Dropout(0.2), L.Dense(16, 3)], backend="numpy", seed=5)
        nb.Trainer(model, "cross_entropy", O.Adam(0.01)).fit(x, y, epochs=3, batch_size=50, seed=9, verbose=0)
        runs.append(model.state_dict())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_a_different_shuffle_seed_gives_a_different_run():
    x, y = blobs()
    a, b = mlp(), mlp()
    nb.Trainer(a, optimizer=O.GD(0.1)).fit(x, y, epochs=1, batch_size=30, seed=1, verbose=0)
    nb.Trainer(b, optimizer=O.GD(0.1)).fit(x, y, epochs=1, batch_size=30, seed=2, verbose=0)
    assert not np.array_equal(a.state_dict()["0.weight"], b.state_dict()["0.weight"])


def test_full_batch_epoch_is_one_plain_gradient_descent_step():
    x, y = blobs(n=64)
    reference = mlp(dtype="float64")
    loss = nb.losses.CrossEntropy()
    reference.backward(loss.gradient(reference.forward(x.astype(np.float64)), y))
    expected = {k: p - 0.5 * reference.gradients()[k] for k, p in reference.parameters().items()}
    model = mlp(dtype="float64")
    history = nb.Trainer(model, loss, O.GD(0.5)).fit(x.astype(np.float64), y, epochs=1, verbose=0)
    for name, value in expected.items():
        np.testing.assert_allclose(model.parameters()[name], value, rtol=1e-12)
    assert history.loss[0] == pytest.approx(float(loss(reference.forward(x.astype(np.float64)), y)))


def test_validation_runs_every_n_epochs_and_after_the_last():
    x, y = blobs()
    history = nb.Trainer(mlp()).fit(x, y, validation=(x, y), epochs=5, eval_every=2, verbose=0)
    assert history.epoch == [1, 2, 3, 4, 5] and history.val_epoch == [2, 4, 5]
    assert len(history.time) == 5 and history.time == sorted(history.time)


def test_early_stopping_stops_and_restores_the_best_parameters():
    x, y = blobs(n=60)
    rng = np.random.default_rng(3)
    noise_x, noise_y = rng.standard_normal((200, 8)).astype(np.float32), rng.integers(0, 3, 200)
    # BatchNorm's running statistics are buffers: restoring the best epoch must restore them too.
    model = nb.Sequential([L.Dense(8, 64, "relu"), L.BatchNorm(64), L.Dense(64, 3)], backend="numpy", seed=0)
    trainer = nb.Trainer(model, optimizer=O.Adam(0.05))
    history = trainer.fit(noise_x, noise_y, validation=(x, y), epochs=200, batch_size=20, verbose=0,
                          early_stopping=nb.EarlyStopping(patience=3, min_delta=1e-4))
    assert history.stopped_epoch is not None and history.stopped_epoch < 200
    best = history.val_epoch.index(history.best_epoch)
    assert history.val_loss[best] == min(history.val_loss)
    assert history.stopped_epoch - history.best_epoch == 3
    assert trainer.evaluate(x, y)["loss"] == pytest.approx(history.val_loss[best], rel=1e-6)


def test_early_stopping_counts_only_improvements_beyond_min_delta():
    from nnbackend.training import _Monitor

    monitor, model = _Monitor(nb.EarlyStopping(patience=2, min_delta=0.1)), mlp()
    stops = [monitor.update(epoch, {"val_loss": value}, model) for epoch, value in enumerate([1.0, 0.95, 0.94], 1)]
    assert stops == [False, False, True] and monitor.best_epoch == 1  # 0.05 and 0.06 better: not enough


def test_early_stopping_on_validation_accuracy_keeps_the_highest():
    x, y = blobs(n=60)
    noise_x, noise_y = np.random.default_rng(3).standard_normal((200, 8)).astype(np.float32), blobs(200)[1]
    trainer = nb.Trainer(mlp(), optimizer=O.Adam(0.05))
    history = trainer.fit(noise_x, noise_y, validation=(x, y), epochs=100, batch_size=20, verbose=0,
                          early_stopping=nb.EarlyStopping(monitor="val_accuracy", patience=3))
    assert history.stopped_epoch is not None
    best = history.val_epoch.index(history.best_epoch)
    assert history.val_accuracy[best] == max(history.val_accuracy)
    assert trainer.evaluate(x, y)["accuracy"] == history.val_accuracy[best]


def test_a_diverging_run_stops_and_keeps_finite_parameters(capsys):
    x, y = blobs()
    model = mlp()
    history = nb.Trainer(model, "mse", O.GD(1e4)).fit(x, y, epochs=50, verbose=1)
    assert history.diverged and history.diverged_epoch < 50
    assert len(history.epoch) == history.diverged_epoch
    assert all(np.all(np.isfinite(v)) for v in model.state_dict().values())
    out = capsys.readouterr()
    assert f"epoch {history.diverged_epoch}: the training loss became" in out.out + out.err
    assert json.loads(json.dumps(history.to_dict()))["diverged_epoch"] == history.diverged_epoch


def test_after_a_divergence_training_goes_on_with_a_smaller_learning_rate():
    # The optimizer goes back with the model: momentum from the diverged epoch would poison every
    # later step.
    x, y = blobs()
    trainer = nb.Trainer(mlp(), "mse", O.GD(1e4, momentum=0.9))
    assert trainer.fit(x, y, epochs=50, batch_size=30, verbose=0).diverged
    steps = trainer.optimizer.steps
    assert steps % 10 == 0  # the steps of the diverged epoch are undone too
    for slots in trainer.optimizer.state.values():
        assert all(np.all(np.isfinite(value)) for value in slots.values())
    trainer.optimizer.lr = 1e-3
    history = trainer.fit(x, y, epochs=2, batch_size=30, verbose=0)
    assert not history.diverged and all(np.isfinite(history.loss))


def test_after_a_divergence_early_stopping_still_restores_the_best_epoch():
    # With full batches the "last finite" parameters are those that produced the infinite loss; the
    # best epoch's are what early stopping promises.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype(np.float32) * 100, rng.integers(0, 3, 32)
    model = nb.Sequential([L.Dense(4, 8, "relu"), L.Dense(8, 3)], backend="numpy", seed=0)
    trainer = nb.Trainer(model, "mse", O.GD(50.0))
    history = trainer.fit(x, y, validation=(x, y), epochs=30, verbose=0, early_stopping=nb.EarlyStopping(patience=50))
    assert history.diverged
    assert np.isfinite(trainer.evaluate(x, y)["loss"])
    best = history.val_epoch.index(history.best_epoch)
    assert trainer.evaluate(x, y)["loss"] == pytest.approx(history.val_loss[best], rel=1e-6)


def test_verbose_output(capsys):
    x, y = blobs()
    nb.Trainer(mlp()).fit(x, y, validation=(x, y), epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "val_acc" in out
    nb.Trainer(mlp()).fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_history_exports(tmp_path):
    x, y = blobs()
    history = nb.Trainer(mlp()).fit(x, y, validation=(x, y), epochs=3, eval_every=2, verbose=0)
    history.to_json(tmp_path / "h.json")
    assert nb.History.from_dict(json.loads((tmp_path / "h.json").read_text())) == history
    history.to_csv(tmp_path / "h.csv")
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0] == "epoch,time_s,loss,accuracy,val_loss,val_accuracy"
    assert len(rows) == 4 and rows[1].endswith(",,") and not rows[2].endswith(",,")


def test_one_hot_and_regression_targets():
    x, y = blobs()
    onehot = np.eye(3, dtype=np.float32)[y]
    history = nb.Trainer(mlp(), "mse", O.Adam(0.01)).fit(x, onehot, epochs=5, batch_size=32, verbose=0)
    assert history.accuracy[-1] > 0.8
    model = nb.Sequential([L.Dense(8, 1)], backend="numpy")
    target = (x @ np.arange(8, dtype=np.float32))[:, None]
    history = nb.Trainer(model, "mse", O.Adam(0.1)).fit(x, target, epochs=50, batch_size=32, verbose=0)
    assert history.accuracy[-1] is None and history.loss[-1] < 0.05 * history.loss[0]


def test_a_softmax_model_with_a_logits_loss_is_refused():
    model = nb.Sequential([L.Dense(8, 3, "softmax")], backend="numpy")
    with pytest.raises(ValueError, match="ends with a Softmax but CrossEntropy"):
        nb.Trainer(model, nb.losses.CrossEntropy())
    nb.Trainer(model, nb.losses.CrossEntropy(from_logits=False))
    nb.Trainer(model, nb.losses.BinaryCrossEntropy())


def test_learning_rate_decay_multiplies_after_every_epoch():
    x, y = blobs()
    trainer = nb.Trainer(mlp(), optimizer=O.Adam(0.01))
    trainer.fit(x, y, epochs=3, batch_size=100, verbose=0, callbacks=[nb.LearningRateDecay(0.5)])
    assert trainer.optimizer.lr == pytest.approx(0.01 * 0.5**3)
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\]"):
        nb.LearningRateDecay(1.5)


@pytest.mark.parametrize("optimizer", [lambda: O.GD(0.5), lambda: O.Adam(0.01)], ids=["GD", "Adam"])
@pytest.mark.parametrize("batch_size", [None, 100])
def test_a_batch_over_max_rows_runs_in_slices_with_the_same_step(optimizer, batch_size):
    x, y = blobs(n=300)
    x = x.astype(np.float64)
    whole, sliced = mlp(dtype="float64"), mlp(dtype="float64")
    expected = nb.Trainer(whole, optimizer=optimizer(), max_rows=None).fit(
        x, y, epochs=3, batch_size=batch_size, verbose=0)
    history = nb.Trainer(sliced, optimizer=optimizer(), max_rows=7).fit(x, y, epochs=3, batch_size=batch_size,
                                                                          verbose=0)
    for name, value in whole.parameters().items():
        np.testing.assert_allclose(sliced.parameters()[name], value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-12)
    assert history.accuracy == expected.accuracy


def test_slices_draw_each_dropout_layers_masks_as_the_whole_batch_would():
    # Each Dropout layer has its own stream: slicing a batch must not interleave two layers' draws.
    x, y = blobs(n=120)

    def net():
        return nb.Sequential([L.Dense(8, 16, "relu"), L.Dropout(0.3), L.Dense(16, 16, "relu"), L.Dropout(0.3),
                              L.Dense(16, 3)], dtype="float64", seed=0)

    whole, sliced = net(), net()
    expected = nb.Trainer(whole, optimizer=O.GD(0.5), max_rows=None).fit(x, y, epochs=2, verbose=0)
    history = nb.Trainer(sliced, optimizer=O.GD(0.5), max_rows=16).fit(x, y, epochs=2, verbose=0)
    for name, value in whole.parameters().items():
        np.testing.assert_allclose(sliced.parameters()[name], value, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(history.loss, expected.loss, rtol=1e-12)


def test_slices_do_not_hold_the_whole_batch():
    x, y = blobs(n=300)
    model = mlp()
    rows = []
    forward = model.forward
    model.forward = lambda xb: rows.append(xb.shape[0]) or forward(xb)
    nb.Trainer(model, max_rows=128).fit(x, y, epochs=1, verbose=0)
    assert rows == [128, 128, 44]


def test_auto_slices_cpu_batches_and_leaves_cuda_batches_whole(monkeypatch):
    x, y = blobs(n=nb.training.CPU_MAX_ROWS * 2 + 100)
    model = mlp()
    trainer = nb.Trainer(model)
    assert trainer.max_rows == "auto" and trainer.slice_rows == nb.training.CPU_MAX_ROWS
    rows = []
    forward = model.forward
    model.forward = lambda xb: rows.append(xb.shape[0]) or forward(xb)
    trainer.fit(x, y, epochs=1, verbose=0)
    assert rows == [nb.training.CPU_MAX_ROWS, nb.training.CPU_MAX_ROWS, 100]
    monkeypatch.setattr(type(model.backend), "device_name", property(lambda self: "cuda:0"))
    assert trainer.slice_rows is None
    assert nb.Trainer(model, max_rows=64).slice_rows == 64


def test_a_model_with_batch_statistics_is_never_split():
    x, y = blobs(n=300)
    models = [nb.Sequential([L.Dense(8, 16), L.BatchNorm(16), L.ReLU(), L.Dense(16, 3)], seed=0) for _ in range(2)]
    assert models[0].mixes_rows and not mlp().mixes_rows
    nb.Trainer(models[0], max_rows=None).fit(x, y, epochs=2, verbose=0)
    nb.Trainer(models[1], max_rows=50).fit(x, y, epochs=2, verbose=0)
    for name, value in models[0].state_dict().items():
        np.testing.assert_array_equal(models[1].state_dict()[name], value)


@pytest.mark.parametrize("max_rows", [0, -3, 2.5, True, "all"])
def test_max_rows_must_be_a_positive_integer(max_rows):
    with pytest.raises(ValueError, match="max_rows must be a positive integer, None or .auto."):
        nb.Trainer(mlp(), max_rows=max_rows)


# -- the sample order -----------------------------------------------------------------------------
def indexed(n=40, classes=3):
    """Inputs whose first feature is the row's index (exact in float32), so a spy on the model's input
    sees which rows each batch holds, and in which order."""
    x = np.random.default_rng(7).standard_normal((n, 4)).astype(np.float32)
    x[:, 0] = np.arange(n)
    return x, np.arange(n) % classes


def rows_seen_per_epoch(shuffle, seed=0, epochs=3, n=40, batch_size=8):
    """Fit with a spy on model.forward and return, per epoch, the row indices in the order they reached
    the model."""
    x, y = indexed(n)
    model = nb.Sequential([L.Dense(4, 3)], backend="numpy", seed=0)
    seen = []
    forward = model.forward
    model.forward = lambda xb: seen.extend(np.asarray(xb)[:, 0].astype(int).tolist()) or forward(xb)
    nb.Trainer(model, optimizer=O.GD(0.01)).fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                                               seed=seed, verbose=0)
    assert len(seen) == epochs * n  # no validation: forward runs on training batches only
    return [seen[i * n:(i + 1) * n] for i in range(epochs)]


def test_shuffle_draws_a_new_sample_order_every_epoch():
    orders = rows_seen_per_epoch(shuffle=True, epochs=3)
    for order in orders:
        assert sorted(order) == list(range(40))  # every row once per epoch
        assert order != list(range(40))
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    assert rows_seen_per_epoch(shuffle=True, epochs=3) == orders  # the seed fixes the orders
    assert rows_seen_per_epoch(shuffle=True, epochs=3, seed=1)[0] != orders[0]


def test_without_shuffle_every_epoch_takes_the_rows_in_order():
    assert rows_seen_per_epoch(shuffle=False, epochs=3) == [list(range(40))] * 3


# -- early stopping: restore_best=False, and no validation data -----------------------------------
class Snapshots(nb.Callback):
    """Copies of the model's state after every epoch, by epoch."""

    def __init__(self):
        self.states = {}

    def on_epoch_end(self, trainer, epoch, logs):
        self.states[epoch] = {k: np.array(v, copy=True) for k, v in trainer.model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def noisy_early_stopping_run(early_stopping, validation=True, epochs=200):
    """Train on noise (so the monitored figure soon stops improving) with per-epoch state snapshots."""
    rng = np.random.default_rng(3)
    noise_x, noise_y = rng.standard_normal((200, 8)).astype(np.float32), rng.integers(0, 3, 200)
    trainer = nb.Trainer(mlp(), optimizer=O.Adam(0.05))
    snapshots = Snapshots()
    history = trainer.fit(noise_x, noise_y, validation=blobs(n=60) if validation else None, epochs=epochs,
                          batch_size=20, verbose=0, early_stopping=early_stopping, callbacks=[snapshots])
    return trainer, history, snapshots.states


def test_early_stopping_without_restore_best_keeps_the_last_parameters():
    trainer, history, states = noisy_early_stopping_run(nb.EarlyStopping(patience=3, restore_best=False))
    assert history.stopped_epoch is not None and history.stopped_epoch == history.epoch[-1]
    assert history.stopped_epoch - history.best_epoch == 3
    final = trainer.model.state_dict()
    assert same_state(final, states[history.stopped_epoch])
    assert not same_state(final, states[history.best_epoch])  # restoring would have changed them
    # The same run with restore_best=True ends on the best epoch's parameters instead.
    trainer, restored, states = noisy_early_stopping_run(nb.EarlyStopping(patience=3, restore_best=True))
    assert (restored.stopped_epoch, restored.best_epoch) == (history.stopped_epoch, history.best_epoch)
    assert same_state(trainer.model.state_dict(), states[history.best_epoch])


def expected_stop(values, patience, higher_is_better=False, min_delta=0.0):
    """(best_epoch, stopped_epoch) for per-epoch ``values`` by EarlyStopping's documented rule."""
    sign = 1.0 if higher_is_better else -1.0
    best = best_epoch = None
    waited = 0
    for epoch, value in enumerate(values, 1):
        if best is None or sign * (value - best) > min_delta:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return best_epoch, epoch
    return best_epoch, None


@pytest.mark.parametrize("monitor,figure", [("loss", "loss"), ("val_loss", "loss"), ("accuracy", "accuracy"),
                                            ("val_accuracy", "accuracy")])
def test_early_stopping_without_validation_data_watches_the_training_figures(monitor, figure):
    # EarlyStopping: "Without validation data the val_ figures fall back to the training ones."
    stopper = nb.EarlyStopping(patience=2, monitor=monitor)
    trainer, history, states = noisy_early_stopping_run(stopper, validation=False, epochs=100)
    assert history.val_epoch == []
    values = getattr(history, figure)
    best_epoch, stopped_epoch = expected_stop(values, 2, higher_is_better=figure == "accuracy")
    assert stopped_epoch is not None and stopped_epoch < 100  # it did stop, on the training figure
    assert (history.best_epoch, history.stopped_epoch) == (best_epoch, stopped_epoch)
    assert history.epoch[-1] == stopped_epoch
    assert same_state(trainer.model.state_dict(), states[best_epoch])  # restore_best holds here too


def test_fit_twice_with_the_same_seed_goes_on_with_the_shuffle_stream():
    x, y = blobs(n=60)
    once, twice = mlp(), mlp()
    nb.Trainer(once, optimizer=O.GD(0.1)).fit(x, y, epochs=2, batch_size=20, verbose=0)
    trainer = nb.Trainer(twice, optimizer=O.GD(0.1))
    for _ in range(2):
        trainer.fit(x, y, epochs=1, batch_size=20, verbose=0)
    for name, value in once.parameters().items():
        np.testing.assert_array_equal(twice.parameters()[name], value)


@pytest.mark.parametrize("call,message", [
    (lambda t, x, y: t.fit(x, y, early_stopping=5, verbose=0), r"early_stopping must be an nnbackend.EarlyStopping"),
    (lambda t, x, y: t.fit(x, y, callbacks=[nb.EarlyStopping()], verbose=0), r"fit\(early_stopping=...\)"),
    (lambda t, x, y: t.fit(x, y, callbacks=nb.LearningRateDecay(0.5), verbose=0), "callbacks must be a list"),
    (lambda t, x, y: t.fit(x, y, callbacks=[object()], verbose=0), "callbacks must be nnbackend.Callback objects"),
    (lambda t, x, y: nb.Trainer(t.model, O.Adam(), nb.losses.CrossEntropy()), r"takes the loss second"),
], ids=["early_stopping-int", "early_stopping-in-callbacks", "one-callback", "not-a-callback", "keras-order"])
def test_arguments_of_the_wrong_kind_say_what_is_expected(call, message):
    x, y = blobs(n=30)
    with pytest.raises(TypeError, match=message):
        call(nb.Trainer(mlp()), x, y)
