"""The device-parity matrix: every component on every backend against the NumPy float64 reference.

One implementation serves the test suite (``tests/test_parity.py``) and the ``nnbackend parity`` command.

A *case* runs one component (a layer's forward and backward, a loss and its gradient, an optimizer for
10 steps, a short training run of an MLP or a CNN) from fixed host inputs on a given backend and returns its outputs as
host arrays. A *target* is a backend and dtype to check (``numpy/float32``, ``torch/float64``, ...).
A cell passes when the largest relative error of every output against the reference,
``max|out - ref| / max|ref|``, is within the tolerance for the cell's dtype and the case's kind.

Tolerance policy (the only place these numbers live): ``TOLERANCE_FACTORS[kind] * eps(dtype)``, with
``eps`` the machine epsilon (float32 1.19e-7, float64 2.22e-16). Single layers and losses get
``100 * eps``, ten optimizer steps ``300 * eps``, a training run ``1000 * eps`` (float32:
1.2e-5, 3.6e-5, 1.2e-4). Measured on NumPy, PyTorch CPU and array_api_strict the largest errors are
at most 6 eps (median under 1 eps in float32), so the bounds leave a wide margin for other summation
orders (BLAS, GPU reductions).

What the matrix catches is a *difference between backends*: the reference is this same engine on NumPy
float64, so a formula wrong everywhere is for the gradient checks and the comparisons with PyTorch in
``tests/`` to find. The float64 cells are the sensitive ones: a planted slip such as a dropped ``eps``
moves them by 1e5 of their tolerance but may stay inside a float32 cell's, so a backend checked only in
float32 is checked loosely.

Adding a case: one line in :data:`CASES` (names must be unique; they key the cached references). Layer
cases start from random parameters, so a dropped bias or BatchNorm scale cannot hide behind their
initial zeros and ones.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Iterable

import numpy as np

from . import __version__
from . import layers as L
from . import losses as losses_module
from . import optimizers as O
from .backend import Backend, BackendUnavailableError, available_backends, get_backend, machine, to_numpy
from .model import Sequential
from .random import Streams
from .training import Trainer

__all__ = [
    "CASES",
    "TARGETS",
    "TOLERANCE_FACTORS",
    "Cell",
    "MatrixResult",
    "ParityCase",
    "Target",
    "compare",
    "reference",
    "relative_error",
    "run_matrix",
    "select_targets",
    "tolerance",
]

TOLERANCE_FACTORS = {"layer": 100.0, "loss": 100.0, "optimizer": 300.0, "training": 1000.0}
DTYPES = ("float32", "float64")


def tolerance(dtype: str, kind: str) -> float:
    """The largest relative error a cell of ``dtype`` may show for a case of ``kind``."""
    return TOLERANCE_FACTORS[kind] * float(np.finfo(dtype).eps)


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """``max|out - ref| / max|ref|`` (absolute error where the reference is all zeros); inf on a shape
    mismatch or a non-finite output."""
    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape or not np.all(np.isfinite(out)):
        return float("inf")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(out - ref))) if ref.size else 0.0
    return err / scale if scale > 0 else err


# -- targets ----------------------------------------------------------------------------------------
class _ReadOnlyNumPy:
    """``array_api_compat.numpy`` whose created arrays are read-only copies.

    Data and parameters handed to the engine are then immutable, as JAX arrays are: code that writes
    into an array it does not own fails loudly.
    """

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._xp, name)
        if not callable(attr) or isinstance(attr, type) or name in ("isdtype",):
            return attr

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            out = attr(*args, **kwargs)
            if isinstance(out, np.ndarray):
                out = np.array(out, copy=True)
                out.flags.writeable = False
            return out

        return wrapper


@dataclasses.dataclass(frozen=True)
class Target:
    """One column of the matrix: a backend under a label (``"numpy_readonly"``) and a dtype."""

    label: str
    dtype: str

    @property
    def key(self) -> str:
        return f"{self.label}/{self.dtype}"

    def backend(self) -> Backend:
        """Make the backend; raises BackendUnavailableError when it cannot run here."""
        if self.label == "numpy_readonly":
            base = get_backend("numpy", dtype=self.dtype)
            return dataclasses.replace(base, xp=_ReadOnlyNumPy(base.xp))
        if self.label == "array_api_strict":
            return get_backend("array_api_strict", device="device1", dtype=self.dtype)
        if self.label == "torch":
            return get_backend("torch", device="cpu", dtype=self.dtype)
        if self.label == "torch_cuda":
            return get_backend("torch", device="cuda", dtype=self.dtype)
        return get_backend(self.label, dtype=self.dtype)


BACKEND_LABELS = ("numpy", "numpy_readonly", "array_api_strict", "torch", "cupy", "torch_cuda")
TARGETS = tuple(Target(label, dtype) for label in BACKEND_LABELS for dtype in DTYPES)


def select_targets(backends: Iterable[str] | None = None, dtypes: Iterable[str] | None = None) -> list[Target]:
    """The targets for the given backend labels and dtypes (``None``: all)."""
    labels = list(backends) if backends else list(BACKEND_LABELS)
    unknown = [b for b in labels if b not in BACKEND_LABELS]
    if unknown:
        raise ValueError(f"unknown parity backend(s) {unknown}; choose from {', '.join(BACKEND_LABELS)}")
    kinds = list(dtypes) if dtypes else list(DTYPES)
    bad = [d for d in kinds if d not in DTYPES]
    if bad:
        raise ValueError(f"unknown dtype(s) {bad}; choose from {', '.join(DTYPES)}")
    return [Target(label, dtype) for label in labels for dtype in kinds]


# -- cases ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ParityCase:
    """A component run from fixed host inputs; ``run(backend)`` returns its outputs by name."""

    name: str
    kind: str
    run: Callable[[Backend], dict[str, np.ndarray]]


def _host(seed: int, *shape: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _layer_case(name: str, make: Callable[[], L.Layer], input_shape: tuple[int, ...],
                positive: bool = False, *, evaluate: bool = False) -> ParityCase:
    """A layer's forward and backward on a batch of 8 inputs of per-sample ``input_shape`` (any rank);
    the outputs include the parameter gradients and the buffers after the forward.

    With ``evaluate``, one training-mode forward on other inputs comes first (updating buffers such as
    running statistics), then the layer switches to eval mode and only the forward is compared.
    """

    def run(backend: Backend) -> dict[str, np.ndarray]:
        layer = make()
        layer.build(input_shape, backend, Streams(0))
        for i, (key, value) in enumerate(sorted(layer.params.items())):  # not the initial zeros and ones
            layer.params[key] = backend.asarray(_host(20 + i, *value.shape, scale=0.5))
        if evaluate:
            layer.forward(backend.asarray(_host(3, 8, *input_shape)))
            layer.set_training(False)
        x = _host(1, 8, *input_shape)
        x = np.abs(x) + 0.1 if positive else x
        y = layer.forward(backend.asarray(x))
        outputs = {"forward": to_numpy(y)}
        if not evaluate:
            grad = _host(2, *((8,) + tuple(layer.output_shape)))
            outputs["input_grad"] = to_numpy(layer.backward(backend.asarray(grad)))
            outputs.update({f"grad_{k}": to_numpy(v) for k, v in layer.grads.items()})
        outputs.update({f"buffer_{k}": to_numpy(v) for k, v in layer.buffers.items()})
        return outputs

    return ParityCase(f"layer:{name}", "layer", run)


def _loss_case(name: str, make: Callable[[], losses_module.Loss], probabilities: bool,
               labels: bool = True) -> ParityCase:
    """A loss's value and gradient on 16 x 5 predictions: softmax probabilities when ``probabilities``
    (else raw scores), and integer labels when ``labels`` (else uniform float targets)."""

    def run(backend: Backend) -> dict[str, np.ndarray]:
        pred = _host(3, 16, 5, scale=2.0)
        if probabilities:
            pred = np.exp(pred) / np.exp(pred).sum(axis=1, keepdims=True)
        rng = np.random.default_rng(4)
        target = rng.integers(0, 5, 16) if labels else rng.uniform(size=(16, 5))
        value, grad = make().value_and_gradient(backend.asarray(pred), backend.asarray(target))
        return {"value": to_numpy(value), "gradient": to_numpy(grad)}

    return ParityCase(f"loss:{name}", "loss", run)


def _optimizer_case(name: str, make: Callable[[], O.Optimizer]) -> ParityCase:
    def run(backend: Backend) -> dict[str, np.ndarray]:
        optimizer = make()
        params = {"w": backend.asarray(_host(5, 6, 4)), "b": backend.asarray(_host(6, 4))}
        # A gradient that depends on the parameters, so every step sees a new one: d/dp of
        # sum(c * p^2 / 2 + s * p) = c * p + s, with fixed host c > 0 and s.
        curv = {k: backend.asarray(np.abs(_host(7 + i, *to_numpy(p).shape)) + 0.5) for i, (k, p) in enumerate(params.items())}
        shift = {k: backend.asarray(_host(9 + i, *to_numpy(p).shape)) for i, (k, p) in enumerate(params.items())}
        for _ in range(10):
            grads = {k: curv[k] * p + shift[k] for k, p in params.items()}
            params = optimizer.update(params, grads)
        return {k: to_numpy(v) for k, v in params.items()}

    return ParityCase(f"optimizer:{name}", "optimizer", run)


def _training_case(name: str, make_model: Callable[[Backend], Sequential],
                   data: Callable[[], tuple[np.ndarray, np.ndarray]], epochs: int, batch_size: int | None,
                   max_rows: int | None = None) -> ParityCase:
    """A short ``Trainer.fit`` with Adam(0.01) from fixed host data; outputs are the final parameters,
    buffers and the loss curve."""

    def run(backend: Backend) -> dict[str, np.ndarray]:
        x, y = data()
        model = make_model(backend)
        trainer = Trainer(model, losses_module.CrossEntropy(), O.Adam(0.01), max_rows=max_rows)
        history = trainer.fit(x, y, epochs=epochs, batch_size=batch_size, seed=0, verbose=0)
        outputs = {k: to_numpy(v) for k, v in {**model.parameters(), **model.buffers()}.items()}
        outputs["loss_curve"] = np.asarray(history.loss, dtype=model.backend.dtype_name)  # host floats
        return outputs

    return ParityCase(f"training:{name}", "training", run)


def _mlp_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((320, 20))
    y = (x[:, :3] @ rng.standard_normal(3) > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)
    return x, y


def _mlp(backend: Backend) -> Sequential:
    return Sequential([L.Dense(20, 16, "relu"), L.Dropout(0.1), L.Dense(16, 3)], backend=backend, seed=0)


def _image_data() -> tuple[np.ndarray, np.ndarray]:
    """48 random zero-mean 1x8x8 images; the label says which quadrant holds the largest sum.

    Zero-mean pixels keep the case well conditioned: the ReLU clips in every channel, so no parameter's
    gradient is zero in theory (rounding noise that Adam would scale up to full steps), and the batch
    statistics do not cancel digits.
    """
    x = np.random.default_rng(12).standard_normal((48, 1, 8, 8))
    quadrants = x.reshape(48, 2, 4, 2, 4).sum(axis=(2, 4)).reshape(48, 4)
    return x, np.argmax(quadrants, axis=1).astype(np.int64)


def _cnn(backend: Backend) -> Sequential:
    # BatchNorm anywhere after the convolution would leave its bias a gradient that is (nearly) zero in
    # theory: rounding noise, which Adam scales up to full steps.
    layers = [L.BatchNorm(1), L.Conv2D(1, 3, 3, padding="same", activation="relu"), L.MaxPool2D(2), L.Flatten(),
              L.Dense(48, 4)]
    return Sequential(layers, input_shape=(1, 8, 8), backend=backend, seed=0)


CASES: list[ParityCase] = [
    _layer_case("Dense", lambda: L.Dense(6, 5), (6,)),
    _layer_case("Dense(relu)", lambda: L.Dense(6, 5, "relu"), (6,)),
    _layer_case("Dense(softmax)", lambda: L.Dense(6, 5, "softmax"), (6,)),
    _layer_case("ReLU", L.ReLU, (7,)),
    _layer_case("LeakyReLU", lambda: L.LeakyReLU(0.1), (7,)),
    _layer_case("Sigmoid", L.Sigmoid, (7,)),
    _layer_case("Tanh", L.Tanh, (7,)),
    _layer_case("Softplus", L.Softplus, (7,)),
    _layer_case("Softmax", L.Softmax, (7,)),
    _layer_case("Identity", L.Identity, (7,)),
    _layer_case("Flatten", L.Flatten, (2, 3, 2)),
    _layer_case("Dropout", lambda: L.Dropout(0.3), (7,)),
    _layer_case("Conv2D(3x3, padding 1)", lambda: L.Conv2D(2, 3, 3, padding=1), (2, 6, 6)),
    _layer_case("Conv2D(3x2, stride 2)", lambda: L.Conv2D(2, 3, (3, 2), stride=2), (2, 7, 6)),
    _layer_case("Conv2D(same, relu)", lambda: L.Conv2D(2, 3, 3, padding="same", activation="relu"), (2, 5, 5)),
    _layer_case("Conv2D(1x1)", lambda: L.Conv2D(3, 2, 1), (3, 4, 4)),
    _layer_case("MaxPool2D(2)", L.MaxPool2D, (2, 6, 6)),
    _layer_case("MaxPool2D(3, stride 2)", lambda: L.MaxPool2D(3, stride=2), (2, 7, 7)),
    _layer_case("AvgPool2D(2)", L.AvgPool2D, (2, 6, 6)),
    _layer_case("AvgPool2D(2x3, stride 1)", lambda: L.AvgPool2D((2, 3), stride=1), (2, 5, 5)),
    _layer_case("BatchNorm(features)", lambda: L.BatchNorm(5), (5,)),
    _layer_case("BatchNorm(channels)", lambda: L.BatchNorm(3), (3, 4, 4)),
    _layer_case("BatchNorm(eval)", lambda: L.BatchNorm(3, momentum=0.3), (3, 4, 4), evaluate=True),
    _loss_case("CrossEntropy(logits)", losses_module.CrossEntropy, probabilities=False),
    _loss_case("CrossEntropy(probs)", lambda: losses_module.CrossEntropy(from_logits=False), probabilities=True),
    _loss_case("CrossEntropy(soft targets)", losses_module.CrossEntropy, probabilities=False, labels=False),
    _loss_case("BinaryCrossEntropy", losses_module.BinaryCrossEntropy, probabilities=True),
    _loss_case("BinaryCrossEntropy(logits)", lambda: losses_module.BinaryCrossEntropy(from_logits=True),
               probabilities=False),
    _loss_case("MSE", losses_module.MSE, probabilities=False),
    _optimizer_case("GD", lambda: O.GD(0.05)),
    _optimizer_case("GD(nesterov, weight decay)", lambda: O.GD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    _optimizer_case("Adam", lambda: O.Adam(0.05)),
    _optimizer_case("Adam(amsgrad)", lambda: O.Adam(0.05, amsgrad=True, weight_decay=0.01)),
    _optimizer_case("AdamW", lambda: O.AdamW(0.05)),
    _optimizer_case("RMSprop", lambda: O.RMSprop(0.01)),
    _optimizer_case("RMSprop(centered, momentum)", lambda: O.RMSprop(0.01, momentum=0.9, centered=True)),
    _optimizer_case("AdaGrad", lambda: O.AdaGrad(0.1, lr_decay=0.01)),
    _optimizer_case("AdaDelta", lambda: O.AdaDelta(1.0)),
    _training_case("mlp-200-steps", _mlp, _mlp_data, epochs=20, batch_size=32),
    _training_case("mlp-full-batch-in-slices", _mlp, _mlp_data, epochs=10, batch_size=None, max_rows=96),
    _training_case("cnn-9-steps", _cnn, _image_data, epochs=3, batch_size=16),
]


# -- running ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Cell:
    """One case on one target: the largest relative error, the output it came from, and the verdict."""

    case: str
    kind: str
    target: str
    error: float
    worst_output: str
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "kind": self.kind,
            "target": self.target,
            "max_relative_error": self.error,
            "worst_output": self.worst_output,
            "tolerance": self.tolerance,
            "passed": self.passed,
        }


_REFERENCES: dict[str, dict[str, np.ndarray]] = {}


def reference(case: ParityCase) -> dict[str, np.ndarray]:
    """The case's outputs on NumPy float64 (computed once per process)."""
    if case.name not in _REFERENCES:
        _REFERENCES[case.name] = case.run(get_backend("numpy", dtype="float64"))
    return _REFERENCES[case.name]


def compare(case: ParityCase, target: Target, backend: Backend | None = None) -> Cell:
    """Run ``case`` on ``target`` (or on an explicit ``backend``) and compare with the reference."""
    ref = reference(case)
    out = case.run(backend if backend is not None else target.backend())
    tol = tolerance(target.dtype, case.kind)
    for name, value in out.items():  # a float64 temporary leaking into float32 work is a defect too
        if value.dtype.kind == "f" and value.dtype != np.dtype(target.dtype):
            return Cell(case.name, case.kind, target.key, math.inf, f"{name} has dtype {value.dtype}", tol)
    worst, error = "", 0.0
    for name, expected in ref.items():
        err = relative_error(out[name], expected) if name in out else float("inf")
        if err > error or not worst:
            worst, error = name, err
    return Cell(case.name, case.kind, target.key, error, worst, tol)


@dataclasses.dataclass
class MatrixResult:
    """A whole run: cells, unusable targets with reasons, and the machine."""

    cells: list[Cell]
    unavailable: dict[str, str]
    machine: dict[str, Any]
    missing: list[str] = dataclasses.field(default_factory=list)  # backends asked for by name, unusable

    @property
    def passed(self) -> bool:
        return bool(self.cells) and all(cell.passed for cell in self.cells) and not self.missing

    @property
    def failures(self) -> list[Cell]:
        return [cell for cell in self.cells if not cell.passed]

    def summary(self) -> str:
        """One line: ``"84 cells, all passed"`` or ``"2 of 84 failed: layer:Tanh on numpy/float32 ..."``."""
        if not self.cells:
            return "no cell ran: none of the selected backends is usable here"
        missing = f"; requested but not usable here: {', '.join(self.missing)}" if self.missing else ""
        if not self.failures:
            return f"{len(self.cells)} cell{'s' if len(self.cells) != 1 else ''}, all passed{missing}"
        details = ", ".join(
            f"{c.case} on {c.target} ({c.error:.2g} > {c.tolerance:.2g} in {c.worst_output})" for c in self.failures
        )
        return f"{len(self.failures)} of {len(self.cells)} failed: {details}{missing}"

    def _grid(self) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
        cases = list(dict.fromkeys(cell.case for cell in self.cells))
        targets = list(dict.fromkeys(cell.target for cell in self.cells))
        return cases, targets, {(cell.case, cell.target): cell for cell in self.cells}

    @staticmethod
    def _mark(cell: Cell | None) -> str:
        if cell is None:
            return "-"
        return f"{cell.error:.1e} {'ok' if cell.passed else 'FAIL'}"

    def to_table(self) -> str:
        """The matrix as plain text: a row per component, a column per backend/dtype, each cell the largest
        relative error and ``ok`` / ``FAIL`` against its tolerance; then the tolerances."""
        cases, targets, cells = self._grid()
        rows = [["component", *targets]]
        rows += [[case, *(self._mark(cells.get((case, t))) for t in targets)] for case in cases]
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                           enumerate(zip(row, widths))).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines + ["", self.tolerance_note()]) + "\n"

    def to_markdown(self) -> str:
        """The matrix, summary, tolerances, unusable backends and machine as a Markdown document."""
        cases, targets, cells = self._grid()
        lines = ["# nnbackend parity matrix", "", f"**{self.summary()}**", ""]
        if cases:
            lines += ["| component | " + " | ".join(targets) + " |", "|---|" + "---:|" * len(targets)]
            lines += [f"| {case} | " + " | ".join(self._mark(cells.get((case, t))) for t in targets) + " |"
                      for case in cases]
            lines += ["", self.tolerance_note(), ""]
        if self.unavailable:
            lines += ["Not usable here:", ""] + [f"- {key}: {why}" for key, why in self.unavailable.items()] + [""]
        lines += ["Machine:", ""] + [f"- {line}" for line in self.machine_lines()]
        return "\n".join(lines) + "\n"

    @staticmethod
    def tolerance_note() -> str:
        parts = ", ".join(
            f"{kind} {factor:g} eps ({tolerance('float32', kind):.1e} / {tolerance('float64', kind):.1e})"
            for kind, factor in TOLERANCE_FACTORS.items()
        )
        return f"error = max|out - ref| / max|ref| against NumPy float64; tolerance (float32 / float64): {parts}"

    def machine_lines(self) -> list[str]:
        """Python, platform, and each backend's version and devices (GPU models where there are GPUs)."""
        m = self.machine
        lines = [f"python {m['python']} on {m['platform']} ({m['processor']})"]
        for name, info in m["backends"].items():
            state = ", ".join(info["devices"]) if info["usable"] else "not usable"
            lines.append(f"{name} {info['version'] or '(not installed)'}: {state}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "nnbackend": __version__,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": self.machine,
            "missing": self.missing,
            "unavailable": self.unavailable,
            "tolerance_factors": TOLERANCE_FACTORS,
            "cells": [cell.to_dict() for cell in self.cells],
        }


def machine_info() -> dict[str, Any]:
    """Library versions and devices, for the report."""
    return {
        **machine(),
        "backends": {
            info.name: {"version": info.version, "devices": list(info.devices), "usable": info.usable}
            for info in available_backends()
        },
    }


def run_matrix(targets: Iterable[Target], cases: Iterable[ParityCase] = CASES,
               on_cell: Callable[[Cell], None] | None = None, required: Iterable[str] = ()) -> MatrixResult:
    """Every case on every usable target; unusable targets are listed with the reason, and those of the
    ``required`` backends make the result fail."""
    cases = list(cases)
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"parity case names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
    cells, unavailable = [], {}
    for target in targets:
        try:
            backend = target.backend()
        except BackendUnavailableError as exc:
            unavailable[target.key] = str(exc)
            continue
        for case in cases:
            try:
                cell = compare(case, target, backend)
            except Exception as exc:  # noqa: BLE001 - one broken case must not hide the rest of the matrix
                cell = Cell(case.name, case.kind, target.key, math.inf, f"raised {type(exc).__name__}: {exc}",
                            tolerance(target.dtype, case.kind))
            cells.append(cell)
            if on_cell is not None:
                on_cell(cell)
    missing = sorted({key.split("/")[0] for key in unavailable} & set(required))
    return MatrixResult(cells, unavailable, machine_info(), missing)
