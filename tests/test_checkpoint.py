"""Model files and training checkpoints: round trips, atomic writes, refusal of bad files, exact resume."""

from __future__ import annotations

import json
import os
import signal
import sys
import zipfile

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L, optimizers as O, parity

# ru_maxrss counts KiB on Linux, bytes on macOS.
KIB = 1024 if sys.platform == "darwin" else 1


def model(backend="numpy", seed=0, dtype=None):
    return nb.Sequential([L.Dense(6, 8, "relu"), L.Dropout(0.2), L.Dense(8, 3)], backend=backend, seed=seed,
                         dtype=dtype)


def two_dropout_model(seed=0):
    return nb.Sequential([L.Dense(6, 8, "relu"), L.Dropout(0.2), L.Dense(8, 8, "relu"), L.Dropout(0.3),
                          L.Dense(8, 3)], seed=seed)


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)


@pytest.mark.parametrize("target", parity.select_targets(), ids=lambda t: t.key)
def test_model_round_trip_on_every_backend(target, tmp_path):
    try:
        backend = target.backend()
    except nb.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    original = model(backend=backend, seed=3)
    path = nb.save_model(original, tmp_path / "m")
    assert path.name == "m.npz"
    for where in (backend, "numpy"):
        loaded = nb.load_model(path, backend=where)
        assert loaded.get_config() == original.get_config()
        for name, value in original.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[name], value)


def test_cross_backend_load_gives_the_same_function(tmp_path):
    pytest.importorskip("torch")
    x, _ = data()
    trained = model(backend="torch")
    nb.Trainer(trained).fit(x, data()[1], epochs=2, batch_size=32, verbose=0)
    nb.save_model(trained, tmp_path / "t.npz")
    on_numpy = nb.load_model(tmp_path / "t.npz", backend="numpy")
    np.testing.assert_allclose(on_numpy.predict(x), trained.predict(x), rtol=1e-5, atol=1e-6)


def test_a_crash_between_write_and_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    path = nb.save_model(model(seed=1), tmp_path / "m.npz")
    before = path.read_bytes()

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        nb.save_model(model(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def _rewrite(path, mutate):
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    mutate(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)


def test_a_pickle_payload_is_refused(tmp_path):
    path = nb.save_model(model(), tmp_path / "m.npz")
    evil = tmp_path / "evil.npz"
    with np.load(path) as good:
        arrays = {k: good[k] for k in good.files}
    arrays["model/0.weight"] = np.array([object()], dtype=object)  # np.savez pickles object arrays
    np.savez(evil, **arrays)
    with pytest.raises(nb.CheckpointError, match="refusing to load pickled objects"):
        nb.load_model(evil)


def test_tampered_truncated_and_foreign_files_are_refused(tmp_path):
    path = nb.save_model(model(), tmp_path / "m.npz")

    tampered = tmp_path / "tampered.npz"
    tampered.write_bytes(path.read_bytes())

    def flip(members):
        import io as _io
        arr = np.load(_io.BytesIO(members["model/2.bias.npy"]))
        buf = _io.BytesIO()
        np.save(buf, arr + 1)
        members["model/2.bias.npy"] = buf.getvalue()

    _rewrite(tampered, flip)
    with pytest.raises(nb.CheckpointError, match="checksum mismatch in 'model/2.bias'"):
        nb.load_model(tampered)

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(nb.CheckpointError, match="truncated, corrupt or not an .npz file"):
        nb.load_model(truncated)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(nb.CheckpointError, match="not an nnbackend file"):
        nb.load_model(foreign)

    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(nb.CheckpointError, match="not an nnbackend file: not a .npz archive"):
        nb.load_model(text)

    with pytest.raises(nb.CheckpointError, match="no such file"):
        nb.load_model(tmp_path / "missing.npz")


def test_metadata_that_does_not_fit_is_refused(tmp_path):
    path = nb.save_model(model(), tmp_path / "m.npz")

    def widen(members):
        import io as _io
        meta = json.loads(np.load(_io.BytesIO(members["__meta__.npy"])).tobytes())
        meta["model"]["layers"][2]["out_features"] = 4
        buf = _io.BytesIO()
        np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
        members["__meta__.npy"] = buf.getvalue()

    _rewrite(path, widen)
    with pytest.raises(nb.CheckpointError, match="weights do not fit its architecture"):
        nb.load_model(path)


# -- resume ---------------------------------------------------------------------------------------
def fit(trainer, checkpoint=None, resume=False, epochs=6, early_stopping=None, **kwargs):
    x, y = data()
    xv, yv = data(40, seed=1)
    return trainer.fit(x, y, validation=(xv, yv), epochs=epochs, batch_size=20, seed=4, verbose=0,
                       early_stopping=early_stopping or nb.EarlyStopping(patience=50), checkpoint=checkpoint,
                       resume=resume, **kwargs)


def uninterrupted(make=model):
    trainer = nb.Trainer(make(), optimizer=O.Adam(0.01))
    history = fit(trainer)
    return trainer.model.state_dict(), history


def assert_same_state(model, expected) -> None:
    """Every array of ``model``'s state equals ``expected``'s, bit for bit."""
    for name, value in expected.items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)


def interrupt_after(trainer, steps):
    """Make the optimizer request an interrupt after its ``steps``-th step (instance patch: the
    optimizer's type, which checkpoints record, stays Adam)."""
    original = trainer.optimizer.step

    def step(m):
        original(m)
        if trainer.optimizer.steps == steps:
            trainer.interrupt()

    trainer.optimizer.step = step


def interrupted_run(checkpoint, steps, make=model, **fit_kwargs):
    """Fit a fresh Trainer (Adam 0.01) on ``make()`` until its ``steps``-th step, which writes ``checkpoint``."""
    first = nb.Trainer(make(), optimizer=O.Adam(0.01))
    interrupt_after(first, steps)
    with pytest.raises(nb.TrainingInterrupted):
        fit(first, checkpoint=checkpoint, **fit_kwargs)


@pytest.mark.parametrize("make", [model, two_dropout_model], ids=["one-dropout", "two-dropout"])
@pytest.mark.parametrize("steps", [5, 10, 16, 29])  # 5 batches per epoch: mid-epoch and on boundaries
def test_an_interrupted_run_resumes_bit_identically(tmp_path, steps, make):
    expected, expected_history = uninterrupted(make)
    ckpt = tmp_path / "ckpt.npz"
    first = nb.Trainer(make(), optimizer=O.Adam(0.01))
    interrupt_after(first, steps)
    with pytest.raises(nb.TrainingInterrupted, match="resume=True"):
        fit(first, checkpoint=ckpt)
    assert ckpt.exists()
    second = nb.Trainer(make(seed=99), optimizer=O.Adam(0.5))  # everything comes from the checkpoint
    with pytest.warns(UserWarning, match=r"the optimizer goes on as saved, Adam\(lr=0.01.*not used"):
        history = fit(second, checkpoint=ckpt, resume=True)
    assert_same_state(second.model, expected)
    assert history.epoch == expected_history.epoch
    assert history.val_loss == expected_history.val_loss
    assert second.optimizer.lr == 0.01 and second.optimizer.steps == 30


class EpochLog(nb.Callback):
    """A callback that gathers something: the epochs it saw, kept across a resume by its state."""

    def __init__(self):
        self.epochs = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.epochs.append(epoch)

    def state_dict(self):
        return {"epochs": self.epochs}

    def load_state_dict(self, state):
        self.epochs = list(state["epochs"])


def test_a_callbacks_state_resumes_with_the_run(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    interrupted_run(ckpt, 12, callbacks=[EpochLog()])  # in epoch 3
    log = EpochLog()
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, resume=True, callbacks=[log])
    assert log.epochs == [1, 2, 3, 4, 5, 6]


def test_resuming_says_when_nothing_is_left_to_train(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=3)
    with pytest.warns(UserWarning, match="past epoch 1 already .next: epoch 4., so nothing trains"):
        fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, resume=True, epochs=1)


def test_a_model_sharing_a_dropout_layer_resumes_exactly(tmp_path):
    def pair():
        base = nb.Sequential([L.Dense(6, 8, "relu"), L.Dropout(0.5), L.Dense(8, 3)], seed=0)
        return nb.Sequential([*base.layers, L.Identity()])  # its Dropout layer and stream come from base

    expected = nb.Trainer(pair(), optimizer=O.Adam(0.01))
    fit(expected)
    interrupted_run(tmp_path / "ckpt.npz", 12, make=pair)
    second = nb.Trainer(pair(), optimizer=O.Adam(0.01))
    fit(second, checkpoint=tmp_path / "ckpt.npz", resume=True)
    assert_same_state(second.model, expected.model.state_dict())


class Halving(nb.Callback):
    """A user's own learning-rate schedule."""

    def on_epoch_end(self, trainer, epoch, logs):
        trainer.optimizer.lr /= 2


def test_resuming_a_run_with_its_own_schedule_warns_of_nothing(tmp_path, recwarn):
    ckpt = tmp_path / "ckpt.npz"
    interrupted_run(ckpt, 12, callbacks=[Halving()])
    second = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(second, checkpoint=ckpt, resume=True, callbacks=[Halving()])
    assert not [w for w in recwarn if "optimizer goes on as saved" in str(w.message)]
    assert second.optimizer.lr == pytest.approx(0.01 / 2**6)


class Refusing(nb.Callback):
    def state_dict(self):
        return {"seen": 1}

    def load_state_dict(self, state):
        raise ValueError("not my state")


def test_a_callback_refusing_its_state_leaves_the_trainer_unchanged(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    interrupted_run(ckpt, 7, callbacks=[Refusing()])
    trainer = nb.Trainer(model(seed=3), optimizer=O.Adam(0.01))
    before = trainer.model.state_dict()
    with pytest.raises(nb.CheckpointError, match="not my state"):
        fit(trainer, checkpoint=ckpt, resume=True, callbacks=[Refusing()])
    assert trainer.optimizer.steps == 0 and not trainer.history.epoch
    assert_same_state(trainer.model, before)


def test_a_resumed_run_stops_early_where_the_uninterrupted_one_did(tmp_path):
    # min_delta so large that nothing after epoch 1 counts as better: the patience runs out at epoch 3.
    # Interrupted in epoch 3, the checkpoint must carry the evaluation it had already waited.
    stopper = lambda: nb.EarlyStopping(patience=2, min_delta=10.0)  # noqa: E731
    expected = fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), early_stopping=stopper())
    assert (expected.stopped_epoch, expected.best_epoch) == (3, 1)
    ckpt = tmp_path / "ckpt.npz"
    interrupted_run(ckpt, 12, early_stopping=stopper())  # 5 steps per epoch: step 12 is in epoch 3
    resumed = fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, resume=True,
                  early_stopping=stopper())
    assert (resumed.stopped_epoch, resumed.best_epoch) == (3, 1)


def test_a_checkpoint_named_without_npz_resumes(tmp_path):
    expected, _ = uninterrupted()
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=tmp_path / "ckpt", epochs=2)
    assert (tmp_path / "ckpt.npz").exists()
    trainer = nb.Trainer(model(seed=99), optimizer=O.Adam(0.01))
    fit(trainer, checkpoint=tmp_path / "ckpt", resume=True)
    assert_same_state(trainer.model, expected)


def test_resuming_with_other_data_or_early_stopping_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=2)
    x, y = data()
    with pytest.raises(nb.CheckpointError, match="made with other training data"):
        nb.Trainer(model(), optimizer=O.Adam(0.01)).fit(x[::-1].copy(), y[::-1].copy(), epochs=4, batch_size=20,
                                                       seed=4, verbose=0, checkpoint=ckpt, resume=True,
                                                       early_stopping=nb.EarlyStopping(patience=50))
    with pytest.raises(nb.CheckpointError, match="made with early stopping on val_loss, but this fit has early "
                                                 "stopping on val_accuracy"):
        fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, resume=True,
            early_stopping=nb.EarlyStopping(monitor="val_accuracy"))


def test_stopping_at_an_epoch_and_resuming_for_more_epochs_is_exact(tmp_path):
    expected, _ = uninterrupted()
    ckpt = tmp_path / "ckpt.npz"
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=2)
    trainer = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(trainer, checkpoint=ckpt, resume=True, epochs=6)
    assert_same_state(trainer.model, expected)


def test_ctrl_c_finishes_the_step_and_writes_a_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    trainer = nb.Trainer(model(), optimizer=O.Adam(0.01))
    original = trainer.optimizer.step

    def step(m):
        original(m)
        if trainer.optimizer.steps == 7:
            signal.raise_signal(signal.SIGINT)  # (os.kill would terminate the process on Windows)

    trainer.optimizer.step = step
    with pytest.raises(nb.TrainingInterrupted, match=r"interrupted at epoch 2, row 40; checkpoint written"):
        fit(trainer, checkpoint=ckpt)
    assert trainer.optimizer.steps == 7
    resumed = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(resumed, checkpoint=ckpt, resume=True)
    expected, _ = uninterrupted()
    assert_same_state(resumed.model, expected)


def test_resume_refuses_a_checkpoint_from_other_settings(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=1)
    x, y = data()
    with pytest.raises(nb.CheckpointError, match="batch_size=20, but this fit has 32"):
        nb.Trainer(model(), optimizer=O.Adam(0.01)).fit(x, y, batch_size=32, checkpoint=ckpt, resume=True,
                                                        verbose=0)
    with pytest.raises(nb.CheckpointError, match="made with Adam, not GD"):
        fit(nb.Trainer(model(), optimizer=O.GD(0.1)), checkpoint=ckpt, resume=True)
    other = nb.Sequential([L.Dense(6, 4, "relu"), L.Dense(4, 3)], backend="numpy")
    with pytest.raises(nb.CheckpointError, match="another model architecture"):
        fit(nb.Trainer(other, optimizer=O.Adam(0.01)), checkpoint=ckpt, resume=True)


def test_resume_without_a_checkpoint_file_starts_afresh(tmp_path):
    expected, _ = uninterrupted()
    trainer = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(trainer, checkpoint=tmp_path / "new.npz", resume=True)
    assert_same_state(trainer.model, expected)
    with pytest.raises(ValueError, match="resume=True needs checkpoint=PATH"):
        fit(trainer, resume=True)


def test_a_checkpoint_is_also_a_model_file(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    trainer = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(trainer, checkpoint=ckpt, epochs=1)
    loaded = nb.load_model(ckpt)
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)


# -- untrusted files ------------------------------------------------------------------------------
def _tamper_meta(path, change):
    def rewrite(members):
        import io as _io
        meta = json.loads(np.load(_io.BytesIO(members["__meta__.npy"])).tobytes())
        change(meta)
        buf = _io.BytesIO()
        np.save(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
        members["__meta__.npy"] = buf.getvalue()

    _rewrite(path, rewrite)


@pytest.mark.parametrize("change,message", [
    (lambda m: m["optimizer"]["config"].update(__dict__={}), "unknown Adam settings"),
    (lambda m: m["optimizer"]["config"].update(lr=-1.0), "lr must be > 0"),
    (lambda m: m["optimizer"].update(steps=-7), "step count must be an integer >= 0"),
    (lambda m: m["position"].update(epoch=-5), "its position .* is impossible"),
    (lambda m: m["position"].update(begin=10**9), "its position .* is impossible"),
    (lambda m: m.pop("history"), "damaged or tampered checkpoint"),
    (lambda m: m["rng"]["dropout"].append(m["rng"]["dropout"][0]), "dropout streams do not fit"),
])
def test_a_tampered_checkpoint_is_refused_before_anything_changes(tmp_path, change, message):
    ckpt = tmp_path / "ckpt.npz"
    interrupted_run(ckpt, 7)
    _tamper_meta(ckpt, change)
    trainer = nb.Trainer(model(seed=3), optimizer=O.Adam(0.01))
    before = trainer.model.state_dict()
    with pytest.raises(nb.CheckpointError, match=message):
        fit(trainer, checkpoint=ckpt, resume=True)
    assert trainer.optimizer.lr == 0.01 and trainer.optimizer.steps == 0
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_a_checkpoint_with_one_shared_dropout_stream_resumes_only_where_that_is_exact(tmp_path):
    # Checkpoints written before each Dropout layer had a stream hold one state, not a list.
    def old_format(meta):
        meta["rng"]["dropout"] = meta["rng"]["dropout"][0]

    expected, _ = uninterrupted()
    for make, exact in ((model, True), (two_dropout_model, False)):
        ckpt = tmp_path / f"{make.__name__}.npz"
        interrupted_run(ckpt, 7, make=make)
        _tamper_meta(ckpt, old_format)
        second = nb.Trainer(make(seed=5), optimizer=O.Adam(0.01))
        if exact:
            fit(second, checkpoint=ckpt, resume=True)
            assert_same_state(second.model, expected)
        else:
            with pytest.raises(nb.CheckpointError, match="older nnbackend whose 2 Dropout layers shared one"):
                fit(second, checkpoint=ckpt, resume=True)


def test_a_compressed_member_is_refused_unread(tmp_path):
    # np.savez stores members uncompressed; a compressed one could inflate far beyond the file (zip bomb).
    import zipfile

    path = nb.save_model(model(), tmp_path / "m.npz")
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    with pytest.raises(nb.CheckpointError, match="is not one nnbackend writes"):
        nb.load_model(bomb)


def test_an_array_header_announcing_more_than_the_member_holds_is_refused(tmp_path):
    def huge(members):
        header = members["model/0.weight.npy"]
        members["model/0.weight.npy"] = header.replace(b"(6, 8)", b"(600000, 800000)")

    path = nb.save_model(model(), tmp_path / "m.npz")
    _rewrite(path, huge)
    with pytest.raises(nb.CheckpointError, match="announces .* but holds"):
        nb.load_model(path)


def test_deeply_nested_metadata_is_refused(tmp_path):
    def nested(members):
        import io as _io
        buf = _io.BytesIO()
        np.save(buf, np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8))
        members["__meta__.npy"] = buf.getvalue()

    path = nb.save_model(model(), tmp_path / "m.npz")
    _rewrite(path, nested)
    with pytest.raises(nb.CheckpointError, match="metadata is not valid JSON"):
        nb.load_model(path)


def test_a_layer_smuggled_in_as_an_activation_is_refused(tmp_path):
    path = nb.save_model(model(), tmp_path / "m.npz")
    _tamper_meta(path, lambda m: m["model"]["layers"][0].update(activation={"type": "BatchNorm", "num_features": 8}))
    with pytest.raises(nb.CheckpointError, match="'BatchNorm' is not an activation"):
        nb.load_model(path)


class Square(L.Layer):
    """A user's own activation: not in the package's registry."""

    def forward(self, x):
        self._remember(x)
        return x * x

    def backward(self, grad, *, input_grad=True):
        return 2 * self._recall() * grad


def test_a_model_with_a_layer_of_ones_own_trains_resumes_but_is_not_saved_as_a_model(tmp_path):
    def make(seed=0):
        return nb.Sequential([L.Dense(6, 8, Square()), L.Dense(8, 3)], seed=seed)

    assert "Dense (Square)" in make().summary()
    ckpt = tmp_path / "ckpt.npz"
    expected = nb.Trainer(make(), optimizer=O.Adam(0.01))
    fit(expected)
    interrupted_run(ckpt, 7, make=make)
    second = nb.Trainer(make(seed=3), optimizer=O.Adam(0.01))
    fit(second, checkpoint=ckpt, resume=True)
    assert_same_state(second.model, expected.model.state_dict())
    for model in (make(), nb.Sequential([L.Dense(6, 8), Square(), L.Dense(8, 3)])):
        with pytest.raises(ValueError, match=r"cannot save this model: layer \d \(Square\) is not one of nnbackend's"):
            nb.save_model(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_a_file_declaring_a_giant_layer_is_refused_before_it_is_built(tmp_path):
    resource = pytest.importorskip("resource", reason="no resource module (Windows)")

    path = nb.save_model(model(), tmp_path / "m.npz")
    _tamper_meta(path, lambda m: m["model"]["layers"][2].update(in_features=20000, out_features=20000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(nb.CheckpointError, match=r"2.weight should be \(20000, 20000\), stored as \(8, 3\)"):
        nb.load_model(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000 * KIB  # no 3 GB of weights


# -- when checkpoints are written -----------------------------------------------------------------
def spy_on_checkpoint_writes(monkeypatch):
    """Record, for every checkpoint fit writes, (epochs finished, position epoch, position row); the
    file is still written."""
    from nnbackend import training

    writes = []
    real = training.save_checkpoint

    def save(path, trainer, position, *args, **kwargs):
        writes.append((len(trainer.history.epoch), position.epoch, position.begin))
        return real(path, trainer, position, *args, **kwargs)

    monkeypatch.setattr(training, "save_checkpoint", save)
    return writes


def saved_position(path):
    from nnbackend.io import read_file

    where = read_file(path, kind="checkpoint")[0]["position"]
    return where["epoch"], where["begin"]


def test_checkpoints_are_written_every_k_epochs_and_at_the_end(tmp_path, monkeypatch):
    writes = spy_on_checkpoint_writes(monkeypatch)
    ckpt = tmp_path / "ckpt.npz"
    fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=7, checkpoint_every=3)
    assert writes == [(3, 4, 0), (6, 7, 0), (7, 8, 0)]
    assert saved_position(ckpt) == (8, 0)


def test_an_interrupt_between_periodic_checkpoints_writes_one(tmp_path, monkeypatch):
    writes = spy_on_checkpoint_writes(monkeypatch)
    ckpt = tmp_path / "ckpt.npz"
    first = nb.Trainer(model(), optimizer=O.Adam(0.01))
    interrupt_after(first, 22)  # 5 steps per epoch: step 22 ends at row 40 of epoch 5
    with pytest.raises(nb.TrainingInterrupted, match="interrupted at epoch 5, row 40"):
        fit(first, checkpoint=ckpt, epochs=7, checkpoint_every=3)
    assert writes == [(3, 4, 0), (4, 5, 40)]
    assert saved_position(ckpt) == (5, 40)


class CrashAt(nb.Callback):
    """A failure that is not an interrupt (nothing is written for it) at the end of one epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            raise RuntimeError("crash")


def test_after_a_crash_the_file_holds_the_last_periodic_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(RuntimeError, match="crash"):
        fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=7, checkpoint_every=3,
            callbacks=[CrashAt(5)])
    assert saved_position(ckpt) == (4, 0)  # written after epoch 3, not after epoch 4
    expected = nb.Trainer(model(), optimizer=O.Adam(0.01))
    fit(expected, epochs=7)
    resumed = nb.Trainer(model(seed=99), optimizer=O.Adam(0.01))
    history = fit(resumed, checkpoint=ckpt, resume=True, epochs=7, checkpoint_every=3)
    assert history.epoch == list(range(1, 8))
    assert_same_state(resumed.model, expected.model.state_dict())


def test_an_early_stop_between_periodic_checkpoints_writes_one(tmp_path, monkeypatch):
    writes = spy_on_checkpoint_writes(monkeypatch)
    ckpt = tmp_path / "ckpt.npz"
    stopper = nb.EarlyStopping(patience=2, min_delta=10.0)  # nothing after epoch 1 counts: stops at 3
    history = fit(nb.Trainer(model(), optimizer=O.Adam(0.01)), checkpoint=ckpt, epochs=7, checkpoint_every=5,
                  early_stopping=stopper)
    assert history.stopped_epoch == 3
    assert writes == [(3, 4, 0)]
