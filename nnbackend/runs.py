"""One training run from a configuration to a run folder: used by ``nnbackend train`` and by every run of
``nnbackend reproduce``.

A run folder holds:

============== ==================================================================================
config.json    every option of the run, the backend it ran on, library versions and the machine
history.csv    one row per epoch (validation columns filled at evaluations); history.json likewise
metrics.json   final figures, test accuracy / loss / per-class report, wall time; written last, so
               its presence means the run finished
model.npz      the trained model (:func:`nnbackend.save_model`)
curves.png     loss and accuracy, training vs validation (:func:`nnbackend.plots.plot_history`)
confusion.png  the test confusion matrix (:func:`nnbackend.plots.plot_confusion_matrix`)
report.md      a short human-readable summary
============== ==================================================================================

``python -m nnbackend.runs --config JSON --out DIR`` trains one run silently: ``reproduce`` starts its
runs this way, in child processes whose BLAS thread count is set before NumPy is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__, models
from .arrays import is_count
from .backend import FLOAT_DTYPES, Backend, get_backend, machine
from .data import DataError, load, official_split, paper_split, part_indices, subset
from .data.registry import get_spec
from .history import History
from .files import write_text
from .io import save_model
from .layers import ACTIVATIONS
from .losses import BinaryCrossEntropy, CrossEntropy, Loss, MSE
from .metrics import ClassificationReport, classification_report
from .model import Sequential
from .optimizers import Optimizer, get_optimizer
from .training import Callback, EarlyStopping, LearningRateDecay, Trainer, check_decay_factor, check_max_rows

__all__ = ["LOSS_CHOICES", "RUN_FILES", "RunConfig", "RunResult", "at_chance", "command_for", "evaluate_model",
           "load_split", "train_run"]

#: The files a run folder may hold (see above); ``nnbackend train`` writes into no folder holding one.
RUN_FILES = ("config.json", "history.csv", "history.json", "metrics.json", "model.npz", "checkpoint.npz",
             "curves.png", "confusion.png", "report.md")

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class LossChoice:
    """A loss as the command line names it: what the model's output layer is, and the loss on it."""

    output_activation: str | None
    make: Callable[[], Loss]
    description: str


LOSS_CHOICES: dict[str, LossChoice] = {
    "cross_entropy": LossChoice(None, CrossEntropy, "categorical cross-entropy on raw scores (softmax fused in)"),
    "paper": LossChoice("softmax", lambda: BinaryCrossEntropy(paper_gradient=True),
                        "the paper's: Softmax output, element-wise binary cross-entropy against one-hot targets, "
                        "gradient divided by the batch size only, as the paper's code did"),
    "mse": LossChoice("softmax", MSE, "mean squared error of the Softmax output against one-hot targets"),
    "binary_cross_entropy": LossChoice(None, lambda: BinaryCrossEntropy(from_logits=True),
                                       "element-wise binary cross-entropy on sigmoid scores (one-vs-rest)"),
}

SPLITS = ("paper", "official")
MODELS = ("mlp", "cnn")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run. ``None`` means "the library's default" where noted.

    Attributes:
        data: a registered data set name.
        data_dir: a folder searched first for the data set's files.
        split: ``"paper"`` (pool train + test, 80/10/10) or ``"official"`` (official test set, 10% of
            train as validation).
        split_seed: the seed of the split's shuffle (the paper's 42).
        subset: ``(train, val, test)`` sample counts taken from the start of each part; ``None``: all.
        model: ``"mlp"`` (Dense layers of ``layers`` with ``activation``) or ``"cnn"``
            (:func:`nnbackend.models.cnn`, which ignores ``layers`` and ``activation``).
        layers: hidden layer sizes; the output layer (one unit per class) is added.
        activation: the hidden layers' activation.
        loss: a key of :data:`LOSS_CHOICES`.
        optimizer: an optimizer name (``"gd"``, ``"adam"``, ...).
        lr: the learning rate; ``None``: the optimizer's default.
        hyperparameters: other optimizer arguments (``{"momentum": 0.9}``).
        epochs, batch_size, eval_every: as :meth:`nnbackend.Trainer.fit` (``batch_size`` ``None``: full batch).
        max_rows: as :class:`nnbackend.Trainer` (rows per forward/backward slice of a bigger batch).
        lr_factor: multiply the learning rate by this after every epoch (:class:`nnbackend.LearningRateDecay`);
            ``1``: a constant rate.
        early_stopping: the patience in evaluations, or ``None`` for none; ``min_delta`` its threshold.
        backend, dtype, seed: where to run, the float dtype, and the seed of weights and batch order.
    """

    data: str = "mnist-sample"
    data_dir: str | None = None
    split: str = "paper"
    split_seed: int = 42
    subset: tuple[int, int, int] | None = None
    model: str = "mlp"
    layers: tuple[int, ...] = (128,)
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float | None = None
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 10
    batch_size: int | None = 64
    max_rows: int | str | None = "auto"
    lr_factor: float = 1.0
    eval_every: int = 1
    early_stopping: int | None = None
    min_delta: float = 0.0
    backend: str = "auto"
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSS_CHOICES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSS_CHOICES)}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose one of {', '.join(SPLITS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        check_max_rows(self.max_rows)
        check_decay_factor(self.lr_factor)
        get_spec(self.data)  # an unknown name raises DataError, listing the known ones
        if self.subset is not None and (len(self.subset) != 3 or not all(is_count(n, 1) for n in self.subset)):
            raise ValueError(f"subset must be three positive sample counts (train, val, test), got {self.subset!r}")
        if not all(is_count(n, 1) for n in self.layers):
            raise ValueError(f"layers must be positive layer sizes, got {self.layers!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        for name, value, least in (("epochs", self.epochs, 1), ("eval_every", self.eval_every, 1),
                                   ("seed", self.seed, 0), ("split_seed", self.split_seed, 0)):
            if not is_count(value, least):
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.batch_size is not None and not is_count(self.batch_size, 1):
            raise ValueError(f"batch_size must be a positive integer or None (full batch), got {self.batch_size!r}")
        if self.early_stopping is not None and not is_count(self.early_stopping, 1):
            raise ValueError(f"early_stopping must be a positive patience or None, got {self.early_stopping!r}")
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.min_delta, (int, float)) or not 0 <= self.min_delta < math.inf:
            raise ValueError(f"min_delta must be a number >= 0, got {self.min_delta!r}")
        try:
            make_optimizer(self)  # the optimizer's own checks: lr, betas, momentum, ...
        except TypeError as exc:  # a hyperparameter the optimizer does not take
            raise ValueError(f"optimizer {self.optimizer}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["layers"] = list(self.layers)
        out["subset"] = None if self.subset is None else list(self.subset)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The inverse of :meth:`to_dict`. Raises ValueError (DataError for an unknown data set) on
        unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ValueError(f"a run configuration is a JSON object, got {type(data).__name__}")
        unknown = set(data) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown configuration keys {sorted(unknown)}")
        data = dict(data)
        try:
            data["layers"] = tuple(data.get("layers", ()))
            if data.get("subset") is not None:
                data["subset"] = tuple(data["subset"])
        except TypeError as exc:
            raise ValueError(f"layers and subset must be lists of sizes: {exc}") from None
        return cls(**data)


def command_for(config: RunConfig) -> list[str]:
    """The ``nnbackend train`` command line that trains ``config`` (what ``reproduce`` records for each of
    its runs)."""
    argv = ["nnbackend", "train", "--data", config.data]
    if config.data_dir:
        argv += ["--data-dir", config.data_dir]
    if config.split != "paper":
        argv += ["--split", config.split]
    if config.split_seed != 42:
        argv += ["--split-seed", str(config.split_seed)]
    if config.subset:
        argv += ["--subset", ",".join(map(str, config.subset))]
    if config.model == "mlp":
        argv += ["--layers", ",".join(map(str, config.layers)), "--activation", config.activation]
    else:
        argv += ["--model", config.model]
    argv += ["--loss", config.loss, "--optimizer", config.optimizer]
    if config.lr is not None:
        argv += ["--lr", repr(config.lr)]
    for name, value in config.hyperparameters.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []
        else:
            argv += [flag, ",".join(map(repr, value)) if isinstance(value, (list, tuple)) else repr(value)]
    argv += ["--epochs", str(config.epochs), "--batch-size", "full" if config.batch_size is None else str(config.batch_size)]
    if config.max_rows != "auto":
        argv += ["--max-rows", "none" if config.max_rows is None else str(config.max_rows)]
    if config.lr_factor != 1:
        argv += ["--lr-factor", repr(config.lr_factor)]
    if config.eval_every != 1:
        argv += ["--eval-every", str(config.eval_every)]
    if config.early_stopping:
        argv += ["--early-stopping", str(config.early_stopping)]
        if config.min_delta:
            argv += ["--min-delta", repr(config.min_delta)]
    if config.backend != "auto":
        argv += ["--backend", config.backend]
    if config.dtype != "float32":
        argv += ["--dtype", config.dtype]
    if config.seed != 0:
        argv += ["--seed", str(config.seed)]
    return argv


def read_record(folder: str | Path) -> tuple[dict[str, Any], RunConfig]:
    """A run folder's config.json: the whole record and its :class:`RunConfig`.

    Raises:
        FileNotFoundError: the folder has no config.json.
        ValueError: the file is not valid JSON or not a run record (the message names the file).
    """
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (not a run folder written by 'nnbackend train')")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is damaged, not valid JSON ({type(exc).__name__}); re-run the training, or pass the "
                         "model file with --data") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ValueError(f"{path} is not a run record (no \"config\" object); re-run the training, or pass the "
                         "model file with --data")
    try:
        return record, RunConfig.from_dict(record["config"])
    except (ValueError, TypeError, DataError) as exc:
        raise ValueError(f"{path}: {exc}") from None


# -- building blocks ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _split(data: str, data_dir: str | None, split: str, seed: int, dtype: str, flatten: bool) -> Any:
    dataset = load(data, data_dir=data_dir)
    if split == "paper":
        return paper_split(dataset, seed=seed, flatten=flatten, dtype=dtype)
    return official_split(dataset, seed=seed, flatten=flatten, dtype=dtype)


def load_split(config: RunConfig, *, flatten: bool = True) -> Any:
    """The run's :class:`~nnbackend.data.Split` (cached per process), cut to ``config.subset``."""
    split = _split(config.data, config.data_dir, config.split, config.split_seed, config.dtype, flatten)
    return split if config.subset is None else subset(split, *config.subset)


def test_images_seen_in_training(trained: RunConfig, evaluated: RunConfig) -> int:
    """How many test images of ``evaluated``'s split (cut to its subset) are training images of the run
    ``trained``: 0 for the same split, or another data set; more when the splits differ (the paper split
    pools the official test images into training, and another split seed reshuffles the pool)."""
    if trained.data != evaluated.data:
        return 0
    data = load(evaluated.data, data_dir=evaluated.data_dir)
    sizes = (len(data.train_labels), len(data.test_labels))
    train = part_indices(trained.split, *sizes, seed=trained.split_seed)["train"]
    test = part_indices(evaluated.split, *sizes, seed=evaluated.split_seed)["test"]
    if trained.subset:
        train = train[: trained.subset[0]]
    if evaluated.subset:
        test = test[: evaluated.subset[2]]
    return int(np.isin(test, train).sum())


def build_model(config: RunConfig, input_shape: tuple[int, ...], n_classes: int, backend: Backend) -> Sequential:
    """The run's network for per-sample ``input_shape``, ending in the output the loss needs (raw scores,
    or a Softmax for the paper's loss and MSE): ``models.cnn``, or hidden Dense layers of
    ``config.layers`` with ``config.activation``."""
    output = LOSS_CHOICES[config.loss].output_activation
    if config.model == "cnn":
        return models.cnn(input_shape, n_classes, output_activation=output, backend=backend, seed=config.seed)
    layers_config = [{"units": units, "activation": config.activation} for units in config.layers]
    layers_config.append({"units": n_classes, "activation": output})
    return Sequential.from_layers_config(layers_config, input_shape=input_shape, backend=backend, seed=config.seed)


def make_optimizer(config: RunConfig) -> Optimizer:
    """The optimizer with ``config.lr`` (when given) and the other hyperparameters."""
    kwargs = dict(config.hyperparameters)
    if config.lr is not None:
        kwargs["lr"] = config.lr
    return get_optimizer(config.optimizer, **kwargs)


def reported_losses(model: Sequential, loss_name: str) -> dict[str, Loss]:
    """The losses a run reports: the one it trains with, and categorical cross-entropy beside it."""
    losses = {loss_name: LOSS_CHOICES[loss_name].make()}
    if loss_name != "cross_entropy":
        losses["cross_entropy"] = CrossEntropy(from_logits=not model.ends_with_softmax)
    return losses


def evaluate_model(model: Sequential, x: Any, y: Any, losses: dict[str, Loss],
                   class_names: tuple[str, ...]) -> tuple[dict[str, float], ClassificationReport]:
    """Accuracy, each loss, and the per-class report of ``model`` on ``(x, y)``."""
    figures: dict[str, float] = {}
    for name, loss in losses.items():
        result = Trainer(model, loss).evaluate(x, y)
        figures["accuracy"] = result["accuracy"]
        figures[f"loss:{name}"] = result["loss"]
    report = classification_report(np.asarray(y), model.predict_classes(x), class_names=class_names)
    return figures, report


class ValidationLosses(Callback):
    """Records further losses on the validation data at every evaluation (the same predictions the
    trainer's own validation loss was computed from)."""

    def __init__(self, x_val: Any, y_val: Any, losses: dict[str, Loss]) -> None:
        self.x_val, self.y_val, self.losses = x_val, y_val, losses
        self.epochs: list[int] = []
        self.values: dict[str, list[float]] = {name: [] for name in losses}

    def on_fit_start(self, trainer: Trainer) -> None:
        backend = trainer.model.backend  # moved once, not at every evaluation
        self.x_val, self.y_val = backend.asarray(self.x_val), backend.asarray(self.y_val)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if "val_loss" not in logs:
            return
        self.epochs.append(epoch)
        for name, loss in self.losses.items():
            self.values[name].append(Trainer(trainer.model, loss).evaluate(self.x_val, self.y_val)["loss"])

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "values": {name: list(v) for name, v in self.values.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epochs, values = state["epochs"], state["values"]
        if (not all(isinstance(e, int) for e in epochs) or set(values) != set(self.losses)
                or any(len(v) != len(epochs) or not all(isinstance(x, (int, float)) for x in v)
                       for v in values.values())):
            raise ValueError(f"the saved validation losses do not fit this run's {sorted(self.losses)}")
        self.epochs, self.values = list(epochs), {name: [float(x) for x in v] for name, v in values.items()}


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """``git describe --always --dirty`` of the checkout nnbackend runs from (``None`` for an installed
    package, or without git): which engine made a run."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        found = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                               text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None


def environment(backend: Backend) -> dict[str, Any]:
    """Versions and machine, for the record."""
    return {
        "nnbackend": __version__,
        "commit": source_commit(),
        **machine(),
        "backend": backend.describe(),
        "backend_note": backend.note,
        "blas_threads": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as the strings ``"nan"`` / ``"inf"`` (strict JSON), tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n")


# -- the run ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunResult:
    """What :func:`train_run` produced; ``metrics`` is what metrics.json holds."""

    folder: Path
    history: History
    report: ClassificationReport
    metrics: dict[str, Any]


def train_run(config: RunConfig, out: str | Path, *, verbose: int = 1, figures: bool = True,
              log: Log | None = print, command: list[str] | None = None, resume: bool = False) -> RunResult:
    """Train ``config`` and write its run folder ``out`` (created; see the module docstring).

    Training keeps ``checkpoint.npz`` in the folder (written at every evaluation and when interrupted);
    with ``resume`` a run continues from it, bit-identically on NumPy.

    Args:
        verbose: the trainer's progress (0 silent, 1 bar and evaluation lines, 2 a line per epoch).
        figures: write curves.png and confusion.png (skipped with a note when matplotlib is missing).
        log: where the run's messages go (``None``: nowhere).
        command: the command line, recorded in config.json.
    """
    say = log or (lambda text: None)
    started = time.perf_counter()
    backend = get_backend(config.backend, dtype=config.dtype)
    say(f"backend: {backend.describe()}" + (f" ({backend.note})" if backend.note else ""))
    split = load_split(config, flatten=config.model == "mlp")
    say(split.summary())
    model = build_model(config, tuple(split.x_train.shape[1:]), split.n_classes, backend)
    say(model.summary())
    loss = LOSS_CHOICES[config.loss].make()
    optimizer = make_optimizer(config)
    say(f"loss: {config.loss} ({LOSS_CHOICES[config.loss].description}); optimizer: {optimizer!r}")

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command,
        "config": config.to_dict(),
        "optimizer": {"name": type(optimizer).__name__, **optimizer.get_config()},
        "loss": repr(loss),
        "model": model.get_config(),
        "data": {"description": split.description, "class_names": list(split.class_names),
                 "samples": {p: len(getattr(split, f"y_{p}")) for p in ("train", "val", "test")}},
        "environment": environment(backend),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if resume and (folder / "config.json").is_file():
        earlier = read_record(folder)[0]
        record["started"] = earlier.get("started", record["started"])
        record["resumed"] = [*earlier.get("resumed", []), time.strftime("%Y-%m-%d %H:%M:%S")]
    write_json(folder / "config.json", record)

    extra = {name: l for name, l in reported_losses(model, config.loss).items() if name != config.loss}
    tracker = ValidationLosses(split.x_val, split.y_val, extra)
    callbacks: list[Callback] = [tracker] if extra else []
    if config.lr_factor != 1:
        callbacks.append(LearningRateDecay(config.lr_factor))
    trainer = Trainer(model, loss, optimizer, max_rows=config.max_rows)
    stopper = (EarlyStopping(patience=config.early_stopping, min_delta=config.min_delta)
               if config.early_stopping else None)
    fit_start = time.perf_counter()
    history = trainer.fit(split.x_train, split.y_train, validation=(split.x_val, split.y_val),
                          epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
                          eval_every=config.eval_every, early_stopping=stopper,
                          callbacks=callbacks, verbose=verbose,
                          checkpoint=folder / "checkpoint.npz", checkpoint_every=config.eval_every,
                          resume=resume)
    fit_time = time.perf_counter() - fit_start + trainer.resumed_time  # with the sessions before a resume

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverged model is reported as such
        figures_test, report = evaluate_model(model, split.x_test, split.y_test,
                                              reported_losses(model, config.loss), split.class_names)
    history.to_csv(folder / "history.csv")
    history.to_json(folder / "history.json")
    save_model(model, folder / "model.npz")
    final = history.last()
    for name, values in tracker.values.items():
        final[f"val_loss:{name}"] = values[-1] if values else None
    metrics = {
        "data": split.description,
        "loss": config.loss,
        "epochs_run": history.epochs_run,
        "diverged_epoch": history.diverged_epoch,
        "stopped_epoch": history.stopped_epoch,
        "best_epoch": history.best_epoch,
        "final": final,
        "validation_losses": validation_losses(history, config.loss, tracker),
        "test": {
            "samples": len(split.y_test),
            "accuracy": report.accuracy,
            "loss": figures_test[f"loss:{config.loss}"],
            "losses": {k.removeprefix("loss:"): v for k, v in figures_test.items() if k.startswith("loss:")},
            "weighted": report.weighted,
            "macro": report.macro,
            "report": report.to_dict(),
        },
        "fit_time_s": fit_time,
    }
    if figures:
        _figures(folder, history, report, config, record["optimizer"]["lr"], say)
    metrics["wall_time_s"] = time.perf_counter() - started + trainer.resumed_time
    write_text(folder / "report.md",
               run_report(record, metrics, report, history, figures=(folder / "curves.png").is_file()))
    write_json(folder / "metrics.json", metrics)
    return RunResult(folder, history, report, metrics)


def validation_losses(history: History, loss: str, tracker: ValidationLosses) -> dict[str, list[Any]]:
    """Every reported loss at every evaluation: ``{"epoch": [...], loss: [...], other_loss: [...]}``."""
    # A run resumed from a checkpoint older than callback states lacks the other losses before it.
    missing = len(history.val_epoch) - len(tracker.epochs)
    return {"epoch": list(history.val_epoch), loss: list(history.val_loss),
            **{name: [None] * missing + values for name, values in tracker.values.items()}}


def _figures(folder: Path, history: History, report: ClassificationReport, config: RunConfig, lr: float,
             say: Log) -> None:
    from . import plots

    try:
        shape = "cnn" if config.model == "cnn" else f"hidden {', '.join(map(str, config.layers)) or 'none'}"
        plots.plot_history(history, folder / "curves.png",
                           title=f"{config.data}: {config.optimizer} lr {lr:g}, {shape}, loss {config.loss}")
        plots.plot_confusion_matrix(report.confusion, report.class_names, folder / "confusion.png",
                                    title=f"{config.data}: test confusion matrix")
    except ImportError as exc:
        say(f"figures skipped: {exc}")


def at_chance(metrics: dict[str, Any]) -> bool:
    """True when the final validation accuracy is below 1.5 / classes: the run collapsed (the paper calls
    such runs diverged, with a finite loss; ours are marked diverged only when the loss became non-finite)."""
    accuracy = metrics["final"]["val_accuracy"]
    classes = len(metrics["test"]["report"]["class_names"])
    return isinstance(accuracy, float) and accuracy < 1.5 / classes


def _fmt(value: Any, digits: int = 4) -> str:
    """A figure for a report: 4 decimals, scientific beyond a million, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}e}" if abs(value) >= 1e6 else f"{value:.{digits}f}"
    return str(value)


def run_report(record: dict[str, Any], metrics: dict[str, Any], report: ClassificationReport,
               history: History, figures: bool = True) -> str:
    """report.md of a run folder: what ran, how it ended, the test report and the figures."""
    config, final, test = record["config"], metrics["final"], metrics["test"]
    lines = [f"# Run: {config['data']}, {record['optimizer']['name']} lr {record['optimizer']['lr']:g}", ""]
    if record.get("command"):
        lines += ["```", shlex.join(record["command"]), "```", ""]
    lines += [
        f"- data: {metrics['data']}",
        "- model: " + ("models.cnn()" if config.get("model") == "cnn"
                        else f"hidden {', '.join(map(str, config['layers'])) or 'none'} ({config['activation']})")
        + f", loss {config['loss']}" + (f", learning rate x{config['lr_factor']:g} per epoch"
                                         if config.get("lr_factor", 1) != 1 else ""),
        f"- training: {config['epochs']} epochs, batch {config['batch_size'] or 'full'}, "
        + ("evaluation every epoch" if config["eval_every"] == 1 else f"evaluation every {config['eval_every']} epochs")
        + (f", early stopping after {config['early_stopping']} evaluations without improvement"
           if config.get("early_stopping") else ""),
        f"- backend: {record['environment']['backend']}",
        f"- wall time: {metrics['wall_time_s']:.1f} s (training {metrics['fit_time_s']:.1f} s)",
    ]
    tested = "the final weights"
    if history.best_epoch is not None:
        tested = f"the weights of epoch {history.best_epoch}, the best validation loss"
        lines.append(f"- {'early stopping at epoch ' + str(history.stopped_epoch) + '; ' if history.stopped_epoch else ''}"
                     f"kept {tested}")
    if history.diverged:
        lines.append(f"- **diverged at epoch {history.diverged_epoch}** (the loss became non-finite)"
                     + ("" if history.best_epoch is not None
                        else f"; kept the weights from before epoch {history.diverged_epoch}"))
        if history.best_epoch is None:
            tested = f"the weights from before epoch {history.diverged_epoch}"
    classes = len(report.class_names)
    if at_chance(metrics):
        lines.append(f"- **at chance level**: validation accuracy {final['val_accuracy']:.4f} with {classes} classes "
                     "(the learning rate is probably too large)")
    not_evaluated = "not evaluated"
    rows = [("training", final["epoch"], final["loss"], final["accuracy"])]
    rows.append(("validation", final["val_epoch"], final["val_loss"], final["val_accuracy"])
                if final.get("val_epoch") is not None else ("validation", not_evaluated, None, None))
    if history.best_epoch is not None and history.best_epoch in history.val_epoch:
        at = history.val_epoch.index(history.best_epoch)
        rows.append(("validation, best epoch (kept)", history.best_epoch, history.val_loss[at], history.val_accuracy[at]))
    rows.append((f"test ({tested})", "", test["loss"], test["accuracy"]))
    lines += [
        "",
        f"| | epoch | loss ({config['loss']}) | accuracy |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {epoch} | {_fmt(loss)} | {_fmt(accuracy)} |" for name, epoch, loss, accuracy in rows),
        "",
        "## Test report",
        "",
        report.to_markdown(),
    ]
    if figures:
        lines += ["![curves](curves.png)", "", "![confusion matrix](confusion.png)", ""]
    return "\n".join(lines)


def rerender(folder: str | Path, *, figures: bool = True, log: Log | None = print) -> None:
    """Rewrite a finished run's report.md (and its figures) from the files it stored: config.json,
    history.json and metrics.json, which hold everything they show. For run folders written before the
    report or the figures changed; the training itself is not repeated."""
    folder = Path(folder)
    record, config = read_record(folder)
    metrics = read_metrics(folder)
    if metrics is None:
        raise ValueError(f"{folder} holds no finished run (no readable metrics.json)")
    history = History.from_dict(json.loads((folder / "history.json").read_text(encoding="utf-8")))
    test = metrics["test"]["report"]
    report = ClassificationReport.from_confusion(np.asarray(test["confusion"], dtype=np.int64), test["class_names"])
    if figures:
        _figures(folder, history, report, config, record["optimizer"]["lr"], log or (lambda text: None))
    write_text(folder / "report.md",
               run_report(record, metrics, report, history, figures=(folder / "curves.png").is_file()))


def read_metrics(folder: str | Path) -> dict[str, Any] | None:
    """A finished run's metrics.json, or ``None`` when the run did not finish."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _child_main(argv: list[str] | None = None) -> int:
    """``python -m nnbackend.runs --config JSON --out DIR``: one silent run (used by ``reproduce``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nnbackend.runs")
    parser.add_argument("--config", required=True, help="the RunConfig as JSON")
    parser.add_argument("--out", required=True)
    parser.add_argument("--figures", action="store_true")
    args = parser.parse_args(argv)
    config = RunConfig.from_dict(json.loads(args.config))
    try:
        train_run(config, args.out, verbose=0, figures=args.figures, log=None, resume=True,
                  command=command_for(config))
    except DataError as exc:
        print(f"nnbackend: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
