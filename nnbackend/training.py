"""Training: the fit loop, evaluation, early stopping."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import array_api_compat
import numpy as np

from .arrays import check_array, check_labels, check_same_length, is_count, is_integer, one_hot
from .backend import namespace_of, to_numpy
from .checkpoint import Position, load_checkpoint, save_checkpoint
from .history import History
from .io import npz_path
from .hostmem import keep_freed_memory
from .inplace import add_into
from .losses import CrossEntropy, Loss, get_loss
from .model import PREDICT_BATCH_SIZE, Sequential, to_model_dtype
from .optimizers import Optimizer, get_optimizer
from .progress import Progress
from .random import generator

__all__ = [
    "CPU_MAX_ROWS", "Callback", "EarlyStopping", "LearningRateDecay", "Trainer", "TrainingInterrupted",
    "check_decay_factor", "check_max_rows",
]

#: Rows per forward/backward slice of a big batch on a CPU (``Trainer(max_rows="auto")``): a 2048 x 512
#: float32 activation is 4 MiB, so the element-wise passes between the matrix products run in cache.
CPU_MAX_ROWS = 2048


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` after Ctrl-C: the current step finished and the checkpoint (if any)
    was written; the message says how to resume."""


class Callback:
    """Hooks into :meth:`Trainer.fit`. Return ``True`` from :meth:`on_epoch_end` to stop training."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> bool | None:
        """Called after every epoch with that epoch's figures (validation ones when it evaluated)."""
        return None

    def on_fit_end(self, trainer: Trainer) -> None:
        """Called once when training ends, however it ends."""

    def state_dict(self) -> dict[str, Any] | None:
        """What the callback has gathered so far, JSON-ready, kept in training checkpoints so that a
        resumed fit continues it; ``None`` (the default) when it keeps nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back :meth:`state_dict`'s output when a fit resumes (raise ValueError if it is not)."""


def check_max_rows(max_rows: Any) -> int | str | None:
    """``max_rows`` as :class:`Trainer` takes it (a positive integer, ``None`` or ``"auto"``), else ValueError."""
    if max_rows is None or max_rows == "auto":
        return max_rows
    if not is_count(max_rows):
        raise ValueError(f"max_rows must be a positive integer, None or 'auto', got {max_rows!r}")
    return int(max_rows)


def check_decay_factor(factor: float) -> float:
    """A learning-rate factor for :class:`LearningRateDecay` (in (0, 1]) as a float, else ValueError."""
    if not 0 < factor <= 1:
        raise ValueError(f"the learning-rate factor must be in (0, 1], got {factor!r}")
    return float(factor)


class LearningRateDecay(Callback):
    """Multiply the optimizer's learning rate by ``factor`` after every epoch (exponential decay).

    The learning rate lives on the optimizer, so checkpoints keep the decayed value and a resumed run
    continues the schedule exactly.

    Args:
        factor: the multiplier, in (0, 1]. ``0.8`` shrinks the rate to about 11% over 10 epochs.
    """

    def __init__(self, factor: float) -> None:
        self.factor = check_decay_factor(factor)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        trainer.optimizer.lr *= self.factor


@dataclasses.dataclass
class EarlyStopping:
    """Stop when the monitored figure has not improved for ``patience`` evaluations.

    Args:
        patience: evaluations without an improvement of more than ``min_delta`` before stopping.
            Defaults to ``5``.
        min_delta: the smallest change that counts as an improvement. Defaults to ``0``.
        monitor: ``"val_loss"`` (default), ``"val_accuracy"``, ``"loss"`` or ``"accuracy"``. Without
            validation data the ``val_`` figures fall back to the training ones.
        restore_best: put back the parameters of the best evaluation when training ends. Defaults to
            ``True``.
    """

    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True

    def __post_init__(self) -> None:
        if not is_count(self.patience):
            raise ValueError(f"patience must be a positive integer, got {self.patience!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta!r}")
        if self.monitor not in ("val_loss", "val_accuracy", "loss", "accuracy"):
            raise ValueError(f"monitor must be val_loss, val_accuracy, loss or accuracy, got {self.monitor!r}")

    @property
    def higher_is_better(self) -> bool:
        return self.monitor.endswith("accuracy")


class Trainer:
    """Trains a :class:`~nnbackend.Sequential` model with a loss and an optimizer.

    Args:
        model: the model; its backend decides where everything runs.
        loss: a :class:`~nnbackend.losses.Loss` or its name. Defaults to ``"cross_entropy"`` (from logits).
        optimizer: an :class:`~nnbackend.optimizers.Optimizer` or its name (default hyperparameters).
            Defaults to ``"adam"``.
        max_rows: the most rows one forward and backward pass holds. A larger batch (a full batch of
            56,000 images, say) runs in slices of ``max_rows`` whose gradients add up to the batch's, and
            takes one optimizer step on the sum: the same step up to float rounding, with one slice's
            activations in memory instead of the whole batch's. ``None`` never splits. A model with a
            layer that mixes rows (BatchNorm in training mode) is never split. Defaults to ``"auto"``:
            :data:`CPU_MAX_ROWS` rows on a CPU (a slice's activations stay in the processor's cache),
            no slicing on a CUDA device (big products keep a GPU busy; pass a number to bound memory).

    :meth:`fit` asks glibc's malloc to keep freed memory for the next step's temporaries
    (:mod:`nnbackend.hostmem`; ``NNBACKEND_KEEP_FREED_MEMORY=0`` turns that off).
    """

    def __init__(self, model: Sequential, loss: str | Loss = "cross_entropy",
                 optimizer: str | Optimizer = "adam", *, max_rows: int | str | None = "auto") -> None:
        if not isinstance(model, Sequential):
            raise TypeError(f"model must be an nnbackend Sequential, got {type(model).__name__}")
        self.max_rows = check_max_rows(max_rows)
        self.model = model
        if isinstance(loss, Optimizer) or isinstance(optimizer, Loss):
            raise TypeError(f"Trainer(model, loss, optimizer) takes the loss second, got {loss!r} and {optimizer!r}; "
                            "or name them: Trainer(model, loss=..., optimizer=...)")
        self.loss = get_loss(loss)
        self.optimizer = get_optimizer(optimizer)
        if self.loss.expects_logits and model.ends_with_softmax:
            raise ValueError(
                f"the model ends with a Softmax but {self.loss!r} expects raw scores (logits); drop the "
                "final softmax, or use CrossEntropy(from_logits=False) / BinaryCrossEntropy()"
            )
        if isinstance(self.loss, CrossEntropy) and tuple(model.output_shape) == (1,):
            raise ValueError(CrossEntropy.ONE_OUTPUT)
        self.history = History()
        #: Seconds of training before this fit resumed from a checkpoint (0 for a fresh fit); the
        #: history's times go on from there.
        self.resumed_time = 0.0
        self._shuffle: tuple[int | None, np.random.Generator] | None = None  # (seed, its stream) of the last fit
        self._interrupt_requested = False

    @property
    def slice_rows(self) -> int | None:
        """``max_rows`` with ``"auto"`` resolved for the model's device (None: batches are never split)."""
        if self.max_rows != "auto":
            return self.max_rows
        return None if self.model.backend.device_name.startswith("cuda") else CPU_MAX_ROWS

    # -- data -----------------------------------------------------------------------------------
    def _prepare(self, x: Any, y: Any, name: str) -> tuple[Any, Any, Any]:
        """Check ``(x, y)`` and move them to the device: (inputs, dense targets, labels or None)."""
        model = self.model
        x = model.check_input(x, f"{name} x")
        y = check_array(y, f"{name} y", ndim=(1, 2), backend=model.backend)
        check_same_length(x, f"{name} x", y, f"{name} y")
        (outputs,) = model.output_shape
        backend = model.backend
        if y.ndim == 1:
            if not is_integer(y):
                raise ValueError(f"{name} y must be integer class labels (N,) or targets (N, {outputs}), "
                                 f"got dtype {y.dtype} with shape {tuple(y.shape)} (whole-number labels stored "
                                 "as floats: y.astype(int))")
            if outputs == 1:
                raise ValueError(f"{name} y: this model has one output, so it takes float targets of shape "
                                 "(N, 1), not class labels (for 0/1 labels: y[:, None].astype('float32'), with "
                                 "BinaryCrossEntropy(from_logits=True) or MSE)")
            labels = backend.asarray(check_labels(y, outputs, f"{name} y"))
            targets = one_hot(labels, outputs, backend.dtype)
        else:
            if tuple(y.shape[1:]) != (outputs,):
                column = " (class labels in a column: y.ravel())" if y.shape[1] == 1 and is_integer(y) else ""
                raise ValueError(f"{name} y must have shape (N, {outputs}) to match the model's outputs, "
                                 f"got {tuple(y.shape)}{column}")
            check_array(y, f"{name} y", float_only=True, finite=True)
            targets = to_model_dtype(backend, y, f"{name} y")
            labels = namespace_of(targets).argmax(targets, axis=1) if outputs > 1 else None
        return x, targets, labels

    # -- the loop -------------------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any,
        *,
        validation: tuple[Any, Any] | None = None,
        epochs: int = 10,
        batch_size: int | str | None = None,
        shuffle: bool = True,
        seed: int | None = 0,
        eval_every: int = 1,
        early_stopping: EarlyStopping | None = None,
        callbacks: Iterable[Callback] = (),
        checkpoint: str | Path | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        verbose: int = 1,
    ) -> History:
        """Train for ``epochs`` epochs and return the :class:`~nnbackend.History`.

        Args:
            x: inputs (N, *input_shape), float, host NumPy or on the model's device.
            y: integer labels (N,) in ``[0, outputs)``, or float targets (N, outputs).
            validation: ``(x_val, y_val)``, evaluated every ``eval_every`` epochs and after the last.
            epochs: how many passes over the data, in total (a resumed run counts the epochs before).
                Defaults to ``10``.
            batch_size: samples per step; ``None`` or ``"full"`` (default) uses all samples in one step:
                plain gradient descent.
            shuffle: draw a new sample order every epoch (from the ``shuffle`` stream of ``seed``).
            seed: seeds the batch order. Defaults to ``0``.
            eval_every: evaluate every this many epochs. Defaults to ``1``.
            early_stopping: an :class:`EarlyStopping`, or ``None``.
            callbacks: :class:`Callback` objects.
            checkpoint: a file to keep a training checkpoint in (see :mod:`nnbackend.checkpoint`), written
                atomically every ``checkpoint_every`` epochs, at the end, and when interrupted.
            checkpoint_every: epochs between checkpoints. Defaults to ``1``.
            resume: continue from ``checkpoint`` if it exists (else start afresh). On NumPy the result
                is bit-identical to an uninterrupted run.
            verbose: ``0`` silent, ``1`` progress bar and evaluation lines, ``2`` a line per epoch.

        A NaN or infinite training loss stops the run: ``History.diverged_epoch`` records the epoch, and
        the model and the optimizer go back to the state they had at the start of that epoch (the last
        finite one), so training can go on from there, e.g. with a smaller learning rate.

        Ctrl-C (or :meth:`interrupt`) finishes the current step, writes the checkpoint and raises
        :class:`TrainingInterrupted`, whose message says how to resume.

        Raises:
            ValueError: bad data or settings (checked before anything changes).
            CheckpointError: ``resume`` with a damaged checkpoint or one from another model or setting.
        """
        for label, value in (("epochs", epochs), ("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs checkpoint=PATH (the file to resume from)")
        if checkpoint is not None:
            checkpoint = npz_path(checkpoint)  # where save_checkpoint writes it
        if validation is not None and (not isinstance(validation, (tuple, list)) or len(validation) != 2):
            raise ValueError("validation must be a pair (x_val, y_val)")
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"early_stopping must be an nnbackend.EarlyStopping, e.g. EarlyStopping(patience=5), "
                            f"got {early_stopping!r}")
        if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable):
            raise TypeError(f"callbacks must be a list of nnbackend.Callback objects, got {callbacks!r}")
        callbacks = list(callbacks)
        for callback in callbacks:
            if isinstance(callback, EarlyStopping):
                raise TypeError("EarlyStopping goes to fit(early_stopping=...), not into callbacks")
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be nnbackend.Callback objects (subclass it), got {callback!r}")
        keep_freed_memory()  # every step allocates the same temporaries: see nnbackend.hostmem
        xd, td, ld = self._prepare(x, y, "train")
        n = xd.shape[0]
        if batch_size in (None, "full"):
            batch_size = n
        if not is_count(batch_size):
            raise ValueError(f"batch_size must be a positive integer, 'full' or None, got {batch_size!r}")
        batch_size = min(int(batch_size), n)
        smallest = n % batch_size or batch_size
        too_few_for = self.model.layers_needing(smallest)
        if too_few_for:
            raise ValueError(
                f"{n} samples in batches of {batch_size} leave a last batch of {smallest}, too few for "
                f"{', '.join(too_few_for)} in training mode (a variance needs two "
                "values); choose a batch size that leaves a last batch of 2 or more"
            )
        val = self._prepare(*validation, "validation") if validation is not None else None
        if early_stopping is not None and early_stopping.higher_is_better:
            watched = val[2] if val is not None and early_stopping.monitor.startswith("val_") else ld
            if watched is None:
                raise ValueError(
                    f"early stopping monitors {early_stopping.monitor}, but these targets have no class "
                    "labels to score (a one-output model); monitor val_loss or loss instead"
                )

        model = self.model
        # Another fit with the same seed goes on with the same stream: fit(epochs=1) twice is fit(epochs=2).
        if seed is None or self._shuffle is None or self._shuffle[0] != seed:
            self._shuffle = (seed, generator(seed, "shuffle"))
        rng = self._shuffle[1]
        monitor = _Monitor(early_stopping) if early_stopping is not None else None
        settings = {"n_samples": n, "batch_size": batch_size, "shuffle": bool(shuffle), "seed": seed,
                    "data": _fingerprint(xd, td), "optimizer_given": self.optimizer.get_config()}
        self.history = History()
        position = Position()
        if resume and Path(checkpoint).exists():
            given = self.optimizer.get_config()
            position = load_checkpoint(checkpoint, self, rng, monitor, settings, callbacks)
            if position.begin == 0:
                position.loss_sum = position.correct = 0
            self._say_what_resume_overrides(checkpoint, given, position, callbacks, epochs)
            settings["optimizer_given"] = (position.saved_settings or {}).get("optimizer_given", given)
        history = self.history
        progress = Progress(epochs, math.ceil(n / batch_size), verbose, first_epoch=position.epoch)
        if position.epoch > 1 or position.begin > 0:
            progress.message(f"resuming from {checkpoint} at epoch {position.epoch}, row {position.begin}")

        def save(at: Position) -> None:
            if checkpoint is not None:
                save_checkpoint(checkpoint, self, at, rng, monitor, settings, callbacks)

        time_offset = history.time[-1] if history.time else 0.0
        self.resumed_time = time_offset
        start = time.perf_counter() - time_offset
        model.train()
        self._interrupt_requested = False
        for callback in callbacks:
            callback.on_fit_start(self)
        # A diverging run is detected and reported below; NumPy's overflow warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), _InterruptGuard(self):
            try:
                while position.epoch <= epochs and not history.diverged and history.stopped_epoch is None:
                    epoch = position.epoch
                    finite_model, finite_optimizer = model.snapshot(), self.optimizer.snapshot()
                    if position.begin == 0 and position.order is None:  # a resumed epoch keeps its order
                        position.order = rng.permutation(n) if shuffle and batch_size < n else None
                    if not self._train_epoch((xd, td, ld), batch_size, position, progress):
                        save(position)
                        raise TrainingInterrupted(self._interrupt_message(checkpoint, position))
                    logs: dict[str, Any] = {
                        "loss": float(position.loss_sum) / n,
                        "accuracy": int(position.correct) / n if ld is not None else None,
                        "time": time.perf_counter() - start,
                    }
                    history.add_train(epoch, logs["loss"], logs["accuracy"], logs["time"])
                    position = Position(epoch + 1)
                    if not math.isfinite(logs["loss"]):
                        history.diverged_epoch = epoch
                        model.restore(finite_model)
                        self.optimizer.restore(finite_optimizer)  # its moments are not finite either
                        progress.message(
                            f"epoch {epoch}: the training loss became {logs['loss']} - the run diverged "
                            f"(try a smaller learning rate); keeping the parameters from before epoch {epoch}"
                        )
                        save(position)
                        break
                    if val is not None and (epoch % eval_every == 0 or epoch == epochs):
                        logs["val_loss"], logs["val_accuracy"] = self._evaluate(*val)
                        history.add_validation(epoch, logs["val_loss"], logs["val_accuracy"])
                    progress.epoch_end(epoch, logs)
                    stop = False
                    if monitor is not None and (val is None or "val_loss" in logs):
                        stop = monitor.update(epoch, logs, model)
                        if stop:
                            progress.message(f"early stopping at epoch {epoch}: no improvement in "
                                             f"{early_stopping.monitor} for {early_stopping.patience} evaluations")
                    for callback in callbacks:
                        stop = bool(callback.on_epoch_end(self, epoch, logs)) or stop
                    if stop:
                        history.stopped_epoch = epoch
                    if stop or epoch % checkpoint_every == 0 or epoch == epochs:
                        save(position)
            finally:
                progress.close()
                for callback in callbacks:
                    callback.on_fit_end(self)
        if monitor is not None:
            history.best_epoch = monitor.best_epoch
            if early_stopping.restore_best and monitor.best_params is not None:
                model.restore(monitor.best_params)  # after a divergence too: the best beats the last finite
        return history

    def _say_what_resume_overrides(self, checkpoint: Path, given: dict[str, Any], position: Position,
                                   callbacks: list[Callback], epochs: int) -> None:
        """Warn when resuming replaced optimizer settings the caller gave, or leaves nothing to train."""
        # What the run started with (a schedule may have changed the learning rate since); checkpoints
        # older than that record compare with the saved optimizer, a decaying learning rate left out.
        started = (position.saved_settings or {}).get("optimizer_given")
        if started is None:
            started = self.optimizer.get_config()
            if any(isinstance(callback, LearningRateDecay) for callback in callbacks):
                given, started = {**given, "lr": None}, {**started, "lr": None}
        epoch = position.epoch
        if started != given:  # get_config() is JSON-ready: lists, as the checkpoint reads back
            warnings.warn(f"resuming from {checkpoint}: the optimizer goes on as saved, {self.optimizer!r}; the "
                          "settings given to this Trainer are not used", UserWarning, stacklevel=3)
        if epoch > epochs:
            warnings.warn(f"{checkpoint} is past epoch {epochs} already (next: epoch {epoch}), so nothing trains; "
                          "epochs counts every epoch of the run, so pass a larger epochs to go on",
                          UserWarning, stacklevel=3)

    def interrupt(self) -> None:
        """Ask a running :meth:`fit` to stop after the current step (what Ctrl-C does)."""
        self._interrupt_requested = True

    @staticmethod
    def _interrupt_message(checkpoint: str | Path | None, position: Position) -> str:
        where = f"epoch {position.epoch}, row {position.begin}"
        if checkpoint is None:
            return (f"training interrupted at {where}; no checkpoint was kept (pass checkpoint=PATH to fit, or "
                    "--checkpoint on the command line, to be able to resume)")
        return (f"training interrupted at {where}; checkpoint written to {checkpoint}. Resume with "
                f"fit(..., checkpoint={str(checkpoint)!r}, resume=True) or `nnbackend train ... --resume`")

    def _train_epoch(self, data: tuple[Any, Any, Any], batch_size: int, position: Position,
                     progress: Progress) -> bool:
        """Run the rest of epoch ``position.epoch`` on ``data`` = (inputs, dense targets, labels or None),
        advancing ``position``; only the two sums stay on the device. False when interrupted."""
        xd = data[0]
        n = xd.shape[0]
        order = position.order
        idx_all = None if order is None else self.model.backend.xp.asarray(order, device=array_api_compat.device(xd))
        for begin in range(position.begin, n, batch_size):
            if self._interrupt_requested:
                return False
            end = min(begin + batch_size, n)  # the Array API leaves out-of-range slice stops undefined
            self._step(data, idx_all, begin, end, position)
            position.begin = end
            progress.step()
        return True

    def _step(self, data: tuple[Any, Any, Any], idx_all: Any, begin: int, end: int, position: Position) -> None:
        """One optimizer step on the batch of rows ``begin:end`` of ``data`` (in the order ``idx_all``).

        A batch of more than ``max_rows`` rows runs forward and backward in slices; each slice's
        mean-loss gradient is weighted by its share of the batch, so the weighted gradients sum to the
        batch's. They are summed in copies: the next slice's backward pass may write into the layers'
        gradient arrays.
        """
        model = self.model
        rows = end - begin
        max_rows = self.slice_rows
        if max_rows is None or rows <= max_rows or model.mixes_rows:
            self._forward_backward(_batch(data, idx_all, begin, end), 1.0, position)
            self.optimizer.step(model)
            return
        summed: dict[str, Any] = {}
        for lo in range(begin, end, max_rows):
            hi = min(lo + max_rows, end)
            self._forward_backward(_batch(data, idx_all, lo, hi), (hi - lo) / rows, position)
            for name, grad in model.gradients().items():
                summed[name] = (model.backend.xp.asarray(grad, copy=True) if name not in summed
                                else add_into(summed[name], grad))
        self.optimizer.step(model, summed)

    def _forward_backward(self, batch: tuple[Any, Any, Any], weight: float, position: Position) -> None:
        """Forward and backward ``batch`` = (inputs, targets, labels or None) with the loss gradient
        scaled by ``weight``; add its loss and hits to ``position``'s sums."""
        xb, tb, lb = batch
        out = self.model.forward(xb)
        value, grad = self.loss._value_and_gradient(out, tb)
        self.model.backward(grad if weight == 1.0 else grad * weight)
        position.loss_sum = position.loss_sum + value * xb.shape[0]
        if lb is not None:
            position.correct = position.correct + _hits(out, lb)

    # -- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, x: Any, targets: Any, labels: Any, batch_size: int = PREDICT_BATCH_SIZE) -> tuple[float, float | None]:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            n = x.shape[0]
            loss_sum = correct = 0
            for begin in range(0, n, batch_size):
                end = min(begin + batch_size, n)
                out = model.forward(x[begin:end, ...])
                value, _ = self.loss._value_and_gradient(out, targets[begin:end, ...])
                loss_sum = loss_sum + value * out.shape[0]
                if labels is not None:
                    correct = correct + _hits(out, labels[begin:end, ...])
        finally:
            if was_training:
                model.train()
        return float(loss_sum) / n, (int(correct) / n if labels is not None else None)

    def evaluate(self, x: Any, y: Any, *, batch_size: int = PREDICT_BATCH_SIZE) -> dict[str, float | None]:
        """Loss and accuracy of the model on ``(x, y)`` in eval mode: ``{"loss": ..., "accuracy": ...}``.

        ``x`` (N, *input_shape) float and ``y`` (N,) integer labels or (N, outputs) float targets, as for
        :meth:`fit`; accuracy is None for one-output models."""
        if not is_count(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        loss, accuracy = self._evaluate(*self._prepare(x, y, "evaluation"), batch_size=int(batch_size))
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, x: Any, *, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Predicted class labels (N,) int64 on the host."""
        return self.model.predict_classes(x, batch_size=batch_size)


def _fingerprint(x: Any, targets: Any) -> str:
    """A short digest of the training data (64 evenly spaced rows of ``x``, every target), so that a
    checkpoint is not resumed on other data of the same size."""
    n = x.shape[0]
    rows = np.linspace(0, n - 1, min(n, 64)).astype(np.int64)
    sample = to_numpy(_rows(x, namespace_of(x).asarray(rows, device=array_api_compat.device(x)), 0, n))
    digest = hashlib.sha256(np.ascontiguousarray(sample).tobytes())
    digest.update(np.ascontiguousarray(to_numpy(targets)).tobytes())
    return digest.hexdigest()[:16]


def _hits(out: Any, labels: Any) -> Any:
    """How many rows of scores ``out`` (B, C) have their largest score at ``labels`` (B,): a 0-d int64
    array on the device (summed there; read on the host once per epoch)."""
    xp = namespace_of(out)
    return xp.sum(xp.astype(xp.argmax(out, axis=1) == labels, xp.int64))


def _batch(data: tuple[Any, Any, Any], idx_all: Any, begin: int, end: int) -> tuple[Any, Any, Any]:
    """Rows ``begin:end`` of each array in ``data`` (None stays None), taken in the order ``idx_all``
    when it is not None; all of ``data`` as it is for the whole of it in stored order."""
    if idx_all is None and begin == 0 and end == data[0].shape[0]:
        return data
    idx = None if idx_all is None else idx_all[begin:end]
    return tuple(_rows(a, idx, begin, end) for a in data)


def _rows(a: Any, idx: Any, begin: int, end: int) -> Any:
    """Rows ``idx`` of ``a`` (or rows ``begin:end`` when not shuffling)."""
    if a is None:
        return None
    if idx is None:
        return a[begin:end, ...]
    return namespace_of(a).take(a, idx, axis=0)


class _Monitor:
    """Early-stopping bookkeeping: the best value so far, its epoch and parameters."""

    def __init__(self, config: EarlyStopping) -> None:
        self.config = config
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_params: dict[str, Any] | None = None
        self.waited = 0
        self.stopped = False

    def update(self, epoch: int, logs: dict[str, Any], model: Sequential) -> bool:
        key = self.config.monitor
        value = logs.get(key, logs.get(key.removeprefix("val_")))
        if value is None:
            raise ValueError(f"early stopping monitors {key}, which this run does not measure")
        sign = 1.0 if self.config.higher_is_better else -1.0
        if self.best is None or sign * (value - self.best) > self.config.min_delta:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            self.best_params = model.snapshot()
            return False
        self.waited += 1
        self.stopped = self.waited >= self.config.patience
        return self.stopped


class _InterruptGuard:
    """While active, the first Ctrl-C asks the trainer to stop after the current step; a second one
    interrupts at once. Only the main thread can own signal handlers; elsewhere this does nothing."""

    _NOT_INSTALLED = object()

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: Any = self._NOT_INSTALLED

    def _handle(self, signum: int, frame: Any) -> None:
        if self.trainer._interrupt_requested:
            raise KeyboardInterrupt
        self.trainer.interrupt()

    def __enter__(self) -> _InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not self._NOT_INSTALLED:
            # None: a handler installed from C, which Python cannot put back; the default is the nearest.
            signal.signal(signal.SIGINT, signal.default_int_handler if self.previous is None else self.previous)
