"""Training checkpoints: everything a fit needs to continue exactly where it stopped.

A checkpoint is an :mod:`nnbackend.io` file of kind ``"checkpoint"`` holding the model (architecture and
state), the optimizer (hyperparameters, step count, state arrays), the random streams (batch order, and
each Dropout layer's masks), the position in the run (epoch, next batch, that epoch's sample order and
partial sums), the history so far, early-stopping bookkeeping and the fit settings it was made with. Resuming from it on
NumPy gives parameters bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backend import to_numpy
from .history import History
from .io import CheckpointError, model_record, read_file, write_file
from .layers import Dropout
from .random import get_state, set_state

__all__ = ["Position", "load_checkpoint", "save_checkpoint"]


@dataclasses.dataclass
class Position:
    """Where a fit stands: the epoch under way, the first row of its next batch, the epoch's sample order
    (host indices, ``None`` when not shuffling) and the loss/correct sums of its finished batches."""

    epoch: int = 1
    begin: int = 0
    order: np.ndarray | None = None
    loss_sum: Any = 0
    correct: Any = 0
    #: The fit settings the checkpoint was written with (when loaded from one).
    saved_settings: dict[str, Any] | None = None


def save_checkpoint(path: str | Path, trainer: Any, position: Position, shuffle_rng: np.random.Generator,
                    monitor: Any, settings: dict[str, Any], callbacks: Sequence[Any] = ()) -> Path:
    """Write ``trainer``'s full state at ``position`` to ``path`` atomically, with the state of each of
    ``callbacks`` that keeps one."""
    model, optimizer = trainer.model, trainer.optimizer
    meta, arrays = model_record(model)
    opt_state = optimizer.state_dict()
    for name, slots in opt_state["state"].items():
        for key, value in slots.items():
            arrays[f"optimizer/{name}/{key}"] = value
    meta.update(
        optimizer={"type": opt_state["type"], "config": opt_state["config"], "steps": opt_state["steps"]},
        rng={"shuffle": get_state(shuffle_rng), "dropout": [get_state(rng) for rng in _dropout_streams(model)]},
        position={"epoch": position.epoch, "begin": position.begin, "shuffled": position.order is not None},
        history=trainer.history.to_dict(),
        settings=settings,
        monitor=None,
        callbacks=[{"type": type(callback).__name__, "state": callback.state_dict()} for callback in callbacks],
    )
    arrays["position/loss_sum"] = to_numpy(position.loss_sum)
    arrays["position/correct"] = to_numpy(position.correct)
    if position.order is not None:
        arrays["position/order"] = position.order
    if monitor is not None:
        meta["monitor"] = {"monitor": monitor.config.monitor, "best": monitor.best,
                           "best_epoch": monitor.best_epoch, "waited": monitor.waited}
        for name, value in (monitor.best_params or {}).items():
            arrays[f"monitor/{name}"] = to_numpy(value)
    return write_file(path, "checkpoint", meta, arrays)


def load_checkpoint(path: str | Path, trainer: Any, shuffle_rng: np.random.Generator, monitor: Any,
                    settings: dict[str, Any], callbacks: Sequence[Any] = ()) -> Position:
    """Restore ``trainer`` (model, optimizer, history, random streams, ``monitor``) and the state of
    ``callbacks`` (each given the state saved for a callback of its type at its place) from ``path``.

    Raises:
        CheckpointError: the file is damaged or not a checkpoint, or it belongs to another model,
            optimizer or data/batch setting.
    """
    meta, arrays = read_file(path, kind="checkpoint")
    try:
        return _restore(path, meta, arrays, trainer, shuffle_rng, monitor, settings, callbacks)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{path}: damaged or tampered checkpoint ({type(exc).__name__}: {exc})") from exc


def _restore(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], trainer: Any,
             shuffle_rng: np.random.Generator, monitor: Any, settings: dict[str, Any],
             callbacks: Sequence[Any]) -> Position:
    """:func:`load_checkpoint` after reading: every part is checked before anything changes."""
    model, optimizer = trainer.model, trainer.optimizer
    ours, theirs = model.get_config(), meta["model"]
    if (ours["layers"], ours["input_shape"], ours["dtype"]) != (theirs["layers"], theirs["input_shape"], theirs["dtype"]):
        raise CheckpointError(f"{path}: this checkpoint belongs to another model architecture or dtype")
    if meta["optimizer"]["type"] != type(optimizer).__name__:
        raise CheckpointError(
            f"{path}: this checkpoint was made with {meta['optimizer']['type']}, not {type(optimizer).__name__}"
        )
    for key in ("n_samples", "batch_size", "shuffle", "data"):
        if key in meta["settings"] and meta["settings"][key] != settings[key]:
            what = "other training data" if key == "data" else f"{key}={meta['settings'][key]!r}"
            now = "this fit's data differs" if key == "data" else f"this fit has {settings[key]!r}"
            raise CheckpointError(
                f"{path}: it was made with {what}, but {now}; resume with the same data and batch settings, "
                "or start a new run without resume"
            )
    ours_monitor = None if monitor is None else monitor.config.monitor
    # (checkpoints written before they named the monitor are taken to match)
    theirs_monitor = None if meta["monitor"] is None else meta["monitor"].get("monitor", ours_monitor)
    if theirs_monitor != ours_monitor:
        def describe(name: str | None) -> str:
            return "no early stopping" if name is None else f"early stopping on {name}"

        raise CheckpointError(f"{path}: it was made with {describe(theirs_monitor)}, but this fit has "
                              f"{describe(ours_monitor)}; resume with the same early stopping")

    # Check every part, then change anything.
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    model_state = {k.removeprefix("model/"): v for k, v in arrays.items() if k.startswith("model/")}
    _check_arrays(path, "model state", model_state, shapes, exact_names=True)
    state: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            name, slot = key.removeprefix("optimizer/").rsplit("/", 1)
            state.setdefault(name, {})[slot] = value
    params = {name: shapes[name] for name in model.parameters()}
    for name, slots in state.items():
        _check_arrays(path, f"optimizer state of {name}", slots, dict.fromkeys(slots, params.get(name)))
    best = {k.removeprefix("monitor/"): v for k, v in arrays.items() if k.startswith("monitor/")}
    _check_arrays(path, "best parameters", best, shapes, exact_names=bool(best))
    history = History.from_dict(meta["history"])
    dropout_streams = _dropout_streams(model)
    dropout_states = _dropout_states(path, meta["rng"]["dropout"], len(dropout_streams))
    for rng, saved in ((shuffle_rng, meta["rng"]["shuffle"]), *zip(dropout_streams, dropout_states)):
        set_state(np.random.Generator(type(rng.bit_generator)()), saved)
    where = meta["position"]
    epoch, begin, shuffled = where["epoch"], where["begin"], where["shuffled"]
    n = settings["n_samples"]
    if not (isinstance(epoch, int) and epoch >= 1 and isinstance(begin, int) and 0 <= begin < n):
        raise CheckpointError(f"{path}: its position (epoch {epoch!r}, row {begin!r}) is impossible for {n} samples")
    order = arrays.get("position/order") if shuffled else None
    if shuffled and (order is None or order.shape != (n,) or order.dtype.kind not in "iu"
                     or not np.array_equal(np.sort(order), np.arange(n))):
        raise CheckpointError(f"{path}: its sample order is not an order of the {n} samples")

    saved_callbacks = meta.get("callbacks", [])  # (absent from checkpoints older than callback states)
    resumed_callbacks = [(callback, saved["state"]) for callback, saved in zip(callbacks, saved_callbacks)
                         if saved["type"] == type(callback).__name__ and saved["state"] is not None]

    # Callbacks first: one of the user's may refuse its state, and then nothing else has changed yet.
    earlier = [(callback, callback.state_dict()) for callback, _ in resumed_callbacks]
    try:
        for callback, saved in resumed_callbacks:
            callback.load_state_dict(saved)
        optimizer.load_state_dict({**meta["optimizer"], "state": state}, model.backend)  # checks before it changes
    except Exception:
        for callback, before in earlier:
            if before is not None:
                callback.load_state_dict(before)
        raise
    model.load_state_dict(model_state)
    set_state(shuffle_rng, meta["rng"]["shuffle"])
    for rng, saved in zip(dropout_streams, dropout_states):
        set_state(rng, saved)
    trainer.history = history
    if monitor is not None and meta["monitor"] is not None:
        monitor.best = meta["monitor"]["best"]
        monitor.best_epoch = meta["monitor"]["best_epoch"]
        monitor.waited = meta["monitor"]["waited"]
        monitor.best_params = {k: model.backend.asarray(v) for k, v in best.items()} or None
    backend = model.backend
    return Position(
        epoch=epoch,
        begin=begin,
        order=order,
        loss_sum=backend.asarray(arrays["position/loss_sum"]),
        correct=backend.asarray(arrays["position/correct"]),
        saved_settings=meta["settings"],
    )


def _dropout_streams(model: Any) -> list[np.random.Generator]:
    """The random stream of each Dropout layer of ``model``, in layer order (a layer shared with another
    model keeps the stream it was built with)."""
    return [part.rng for layer in model.layers for part in (layer, *layer.children()) if isinstance(part, Dropout)]


def _dropout_states(path: str | Path, saved: Any, layers: int) -> list[dict[str, Any]]:
    """The saved states of the model's ``layers`` Dropout streams, one per layer in build order."""
    if isinstance(saved, dict):
        # Written before each Dropout layer had a stream: one shared stream, the first layer's now.
        if layers > 1:
            raise CheckpointError(f"{path}: it was written by an older nnbackend whose {layers} Dropout layers "
                                  "shared one random stream, so it cannot be resumed exactly; start a new run")
        return [saved] * layers
    if not isinstance(saved, list) or len(saved) != layers:
        raise CheckpointError(f"{path}: its dropout streams do not fit this model's {layers} Dropout layer(s)")
    return saved


def _check_arrays(path: str | Path, what: str, arrays: dict[str, np.ndarray], shapes: dict[str, Any],
                  exact_names: bool = False) -> None:
    """``arrays`` must be floating point with the ``shapes`` of the same names (all of them with
    ``exact_names``)."""
    if exact_names and set(arrays) != set(shapes) or not set(arrays) <= set(shapes):
        raise CheckpointError(f"{path}: its {what} does not fit this model (names differ)")
    for name, value in arrays.items():
        if value.dtype.kind != "f" or tuple(value.shape) != shapes[name]:
            raise CheckpointError(f"{path}: its {what} has {name} of shape {tuple(value.shape)} and dtype "
                                  f"{value.dtype}; this model needs {shapes[name]} floats")
