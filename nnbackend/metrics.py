"""Evaluation metrics: accuracy, confusion matrix and a per-class precision / recall / F1 report.

Inputs may live on any backend (NumPy, CuPy, PyTorch, ``array_api_strict`` on any device). The work that
scales with the number of samples runs in the inputs' own namespace and on their device; only the
(C, C) confusion matrix and scalars come back to the host, where the per-class figures are derived.

Every function accepts, for ``y_true`` and ``y_pred`` alike, either integer class labels of shape (N,) or
scores of shape (N, C) (logits, probabilities or one-hot rows), which are reduced to labels by an argmax
over the last axis. Python sequences are taken as NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from nnbackend.arrays import one_hot
from nnbackend.files import check_file_path, write_text
from nnbackend.backend import namespace_of, to_numpy

__all__ = ["ClassificationReport", "accuracy", "bootstrap_interval", "bootstrap_values", "classification_report",
           "confusion_matrix"]

# float32 represents every integer up to 2**24 exactly, so a one-hot product over at most this many
# samples yields exact counts on any device (float64 is not available everywhere).
_EXACT_FLOAT32_COUNT = 2**24
# The most elements of one chunk's one-hot arrays (256 MiB each in float32).
_ONE_HOT_ELEMENTS = 2**26

MAX_CLASSES = 2**14
"""The most classes the metrics count: a (C, C) confusion matrix of int64 takes 8 C**2 bytes (2 GiB here)."""

_AVERAGE_KEYS = ("precision", "recall", "f1")


@dataclasses.dataclass(frozen=True)
class _Labels:
    """Validated inputs: two 1-D integer label arrays of equal length in one namespace and device."""

    xp: ModuleType
    true: Any
    pred: Any
    n_columns: int | None  # the C of any (N, C) score input


def _as_array(x: Any) -> Any:
    return x if array_api_compat.is_array_api_obj(x) else np.asarray(x)


def _to_labels(x: Any, name: str, xp: ModuleType) -> tuple[Any, int | None]:
    """``x`` as 1-D integer labels, and the number of score columns when ``x`` was (N, C) scores."""
    if x.ndim == 2:
        if x.shape[1] == 0:
            raise ValueError(f"{name} as scores must have shape (N, C) with C >= 1, got {tuple(x.shape)}")
        if x.shape[1] == 1:
            raise ValueError(
                f"{name} has one score column (shape {tuple(x.shape)}), so there is no arg-max to take; "
                "threshold it into 0/1 labels first, e.g. (scores[:, 0] > 0.5) for probabilities"
            )
        return xp.argmax(x, axis=1), int(x.shape[1])
    if x.ndim != 1:
        raise ValueError(
            f"{name} must be labels of shape (N,) or scores of shape (N, C), got {tuple(x.shape)}"
        )
    if not xp.isdtype(x.dtype, "integral"):
        raise ValueError(f"{name} must hold integer class labels, got dtype {x.dtype}")
    # Narrow label dtypes (uint8, int16) could not index as many classes as n_classes may ask for.
    return xp.astype(x, xp.int64), None


def _validate(y_true: Any, y_pred: Any) -> _Labels:
    y_true, y_pred = _as_array(y_true), _as_array(y_pred)
    xp = namespace_of(y_true)
    xp_pred = namespace_of(y_pred)
    if xp is not xp_pred:
        raise ValueError(
            f"y_true and y_pred come from different array libraries ({xp.__name__} and {xp_pred.__name__}); "
            "move both to one backend first"
        )
    device_true, device_pred = array_api_compat.device(y_true), array_api_compat.device(y_pred)
    if device_true != device_pred:
        raise ValueError(f"y_true and y_pred are on different devices ({device_true} and {device_pred})")
    true, true_columns = _to_labels(y_true, "y_true", xp)
    pred, pred_columns = _to_labels(y_pred, "y_pred", xp)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {true.shape[0]} (y_true) and "
            f"{pred.shape[0]} (y_pred)"
        )
    if true.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty; at least one sample is needed")
    if None not in (true_columns, pred_columns) and true_columns != pred_columns:
        raise ValueError(f"y_true has scores for {true_columns} classes but y_pred for {pred_columns}")
    return _Labels(xp, true, pred, true_columns if true_columns is not None else pred_columns)


def _label_range(x: Any, xp: ModuleType) -> tuple[int, int]:
    """The smallest and largest label of the (N,) integer array ``x``, as Python ints."""
    return int(to_numpy(xp.min(x))), int(to_numpy(xp.max(x)))


def _resolve_n_classes(labels: _Labels, n_classes: int | None, source: str | None = None) -> int:
    """The number of classes, checking that it is at most :data:`MAX_CLASSES` and that every label lies
    in [0, n_classes). ``source`` says where a given ``n_classes`` came from, for messages
    (default ``"n_classes is C"``)."""
    if n_classes is not None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
        n_classes = int(n_classes)
        source = source or f"n_classes is {n_classes}"
        if n_classes > MAX_CLASSES:
            raise ValueError(f"{source}, more than the {MAX_CLASSES} classes a (C, C) confusion matrix may have")
    if n_classes is not None and labels.n_columns is not None and n_classes != labels.n_columns:
        raise ValueError(f"{source} but the scores have {labels.n_columns} columns")
    if n_classes is None and labels.n_columns is not None:
        n_classes = labels.n_columns
        source = f"the scores have {n_classes} columns"
        if n_classes > MAX_CLASSES:
            raise ValueError(f"{source}, more than the {MAX_CLASSES} classes a (C, C) confusion matrix may have")
    ranges = {"y_true": _label_range(labels.true, labels.xp), "y_pred": _label_range(labels.pred, labels.xp)}
    if n_classes is None:
        name, high = max(((name, high) for name, (_, high) in ranges.items()), key=lambda item: item[1])
        if high >= MAX_CLASSES:
            raise ValueError(
                f"{name} holds the label {high}, which would make {high + 1} classes (at most {MAX_CLASSES}); "
                "labels must be class indices in [0, n_classes): pass n_classes (or class_names) to check them"
            )
        n_classes = high + 1
    for name, (low, high) in ranges.items():
        for value in (low, high):
            if not 0 <= value < n_classes:
                where = f"; {source}" if source else ""
                raise ValueError(f"{name} holds the label {value}, outside the class range [0, {n_classes}){where}")
    return n_classes


def _count_pairs(labels: _Labels, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 host counts of (true, predicted) pairs, via one-hot matmuls."""
    xp, n = labels.xp, labels.true.shape[0]
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    chunk = max(1, min(_EXACT_FLOAT32_COUNT, _ONE_HOT_ELEMENTS // n_classes))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        true = one_hot(labels.true[start:stop], n_classes, xp.float32)
        pred = one_hot(labels.pred[start:stop], n_classes, xp.float32)
        counts += to_numpy(true.T @ pred).astype(np.int64)
    return counts


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of samples whose predicted class equals the true class.

    Args:
        y_true: (N,) integer labels or (N, C) scores / one-hot rows (argmax taken), any backend.
        y_pred: the same kinds, same library and device as ``y_true``.

    Returns:
        A Python float in [0, 1].

    Raises:
        ValueError: the inputs differ in length, library or device, are empty, or 1-D and not integers.
    """
    labels = _validate(y_true, y_pred)
    xp = labels.xp
    hits = xp.sum(xp.astype(labels.true == labels.pred, xp.int64))
    return int(to_numpy(hits)) / labels.true.shape[0]


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        y_true: (N,) integer labels or (N, C) scores / one-hot rows (argmax taken), any backend.
        y_pred: the same kinds, same library and device as ``y_true``.
        n_classes: the number of classes C. Defaults to the number of score columns when an input is
            (N, C) scores, else to the largest label in either array plus one.

    Returns:
        (C, C) int64 NumPy array on the host: row ``i`` is the true class, column ``j`` the predicted one.

    Raises:
        ValueError: as :func:`accuracy`, and for labels outside [0, n_classes), a bad ``n_classes``, or
            more than :data:`MAX_CLASSES` classes (a label of :data:`MAX_CLASSES` or more when
            ``n_classes`` is inferred), all before anything is counted.
    """
    labels = _validate(y_true, y_pred)
    return _count_pairs(labels, _resolve_n_classes(labels, n_classes))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator`` in float64, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Per-class precision, recall, F1 and support, with accuracy and macro / weighted averages.

    The definitions are scikit-learn's ``precision_recall_fscore_support`` with ``zero_division=0``:
    precision = TP / predicted, recall = TP / support, F1 = 2 TP / (predicted + support), each 0 where its
    denominator is 0 (a class never predicted, or with no support), so no NaN and no warnings. The macro
    average is the plain mean over all C classes, classes absent from both inputs included (scikit-learn's
    with ``labels=range(C)``; without ``labels`` it averages only the classes that occur); the weighted
    average weights each class by its support.

    Attributes:
        class_names: C names, one per class index.
        precision, recall, f1: (C,) float64 read-only NumPy arrays.
        support: (C,) int64 read-only NumPy array, the number of true samples per class.
        accuracy: the fraction of correct predictions.
        macro, weighted: ``{"precision": float, "recall": float, "f1": float}``.
        confusion: (C, C) int64 read-only NumPy array, rows true class, columns predicted class.
    """

    class_names: tuple[str, ...]
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    macro: dict[str, float]
    weighted: dict[str, float]
    confusion: np.ndarray

    @classmethod
    def from_confusion(cls, confusion: Any, class_names: Sequence[str] | None = None) -> ClassificationReport:
        """Build the report from a (C, C) confusion matrix of counts (rows true, columns predicted).

        Args:
            confusion: (C, C) non-negative integer counts, any backend, with at least one sample.
            class_names: C names; defaults to ``"0"``, ``"1"``, ...

        Raises:
            ValueError: the matrix is not square, not integer, negative or all zero, or the number of
                names differs from C.
            TypeError: ``class_names`` is not a sequence of names.
        """
        matrix = np.array(to_numpy(_as_array(confusion)))
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValueError(f"confusion must be a non-empty square (C, C) matrix, got shape {matrix.shape}")
        if matrix.dtype.kind not in "iu" or (matrix < 0).any() or matrix.sum() == 0:
            raise ValueError("confusion must hold non-negative integer counts with at least one sample")
        names = _class_names(class_names, matrix.shape[0])
        matrix = matrix.astype(np.int64)
        tp = np.diagonal(matrix)
        support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
        per_class = {
            "precision": _ratio(tp, predicted),
            "recall": _ratio(tp, support),
            "f1": _ratio(2 * tp, predicted + support),
        }
        return cls(
            class_names=names,
            precision=_frozen(per_class["precision"]),
            recall=_frozen(per_class["recall"]),
            f1=_frozen(per_class["f1"]),
            support=_frozen(support),
            accuracy=float(tp.sum() / matrix.sum()),
            macro={key: float(np.mean(values)) for key, values in per_class.items()},
            weighted={key: float(np.average(values, weights=support)) for key, values in per_class.items()},
            confusion=_frozen(matrix),
        )

    @property
    def n_samples(self) -> int:
        """The number of samples, N."""
        return int(self.support.sum())

    def _rows(self) -> list[tuple[str, float | None, float | None, float, int]]:
        """(name, precision, recall, f1, support) per class, then accuracy, macro and weighted rows."""
        rows: list[tuple[str, float | None, float | None, float, int]] = [
            (name, float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(self.class_names, self.precision, self.recall, self.f1, self.support)
        ]
        rows.append(("accuracy", None, None, self.accuracy, self.n_samples))
        for label, average in (("macro avg", self.macro), ("weighted avg", self.weighted)):
            rows.append((label, average["precision"], average["recall"], average["f1"], self.n_samples))
        return rows

    def to_table(self) -> str:
        """A plain-text table like the paper's Table 7 (and scikit-learn's report), 4 decimals."""
        width = max(len("weighted avg"), *(len(name) for name in self.class_names))
        lines = [f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}", ""]
        for i, (name, p, r, f, s) in enumerate(self._rows()):
            if i == len(self.class_names):
                lines.append("")
            cells = ["" if v is None else f"{v:.4f}" for v in (p, r, f)]
            lines.append(f"{name:>{width}}  {cells[0]:>9}  {cells[1]:>9}  {cells[2]:>9}  {s:>9d}")
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """The same table as GitHub-flavoured Markdown; summary rows in bold."""
        lines = ["| class | precision | recall | f1-score | support |", "|---|---:|---:|---:|---:|"]
        for i, (name, p, r, f, s) in enumerate(self._rows()):
            label = name.replace("|", "\\|")
            if i >= len(self.class_names):
                label = f"**{label}**"
            cells = ["" if v is None else f"{v:.4f}" for v in (p, r, f)]
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {s} |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field as plain Python lists, floats, ints and strings."""
        return {
            "class_names": list(self.class_names),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "f1": self.f1.tolist(),
            "support": self.support.tolist(),
            "accuracy": self.accuracy,
            "macro": dict(self.macro),
            "weighted": dict(self.weighted),
            "confusion": self.confusion.tolist(),
        }

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as indented JSON to ``path``, creating parent folders.

        Raises:
            ValueError: ``path`` is a folder.
        """
        write_text(check_file_path(path, "metrics.json"), json.dumps(self.to_dict(), indent=2) + "\n")

    def __str__(self) -> str:
        return self.to_table()


def _name_tuple(class_names: Sequence[str]) -> tuple[str, ...]:
    """``class_names`` as a tuple of strings; a ``TypeError`` for a single string or a non-iterable."""
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Iterable):
        raise TypeError(f"class_names must be a sequence of names such as ['cat', 'dog'], "
                        f"got {type(class_names).__name__} {class_names!r}")
    return tuple(str(name) for name in class_names)


def _class_names(class_names: Sequence[str] | None, n_classes: int) -> tuple[str, ...]:
    if class_names is None:
        return tuple(str(i) for i in range(n_classes))
    names = _name_tuple(class_names)
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names but there are {n_classes} classes")
    return names


def classification_report(
    y_true: Any, y_pred: Any, *, class_names: Sequence[str] | None = None, n_classes: int | None = None
) -> ClassificationReport:
    """Per-class precision, recall, F1 and support, accuracy and averages (the paper's Tables 7 and 8).

    Args:
        y_true: (N,) integer labels or (N, C) scores / one-hot rows (argmax taken), any backend.
        y_pred: the same kinds, same library and device as ``y_true``.
        class_names: C names, one per class index. Defaults to ``"0"``, ``"1"``, ...
        n_classes: the number of classes C. Defaults to ``len(class_names)`` when names are given, else
            as in :func:`confusion_matrix`.

    Returns:
        A :class:`ClassificationReport` on the host.

    Raises:
        ValueError: as :func:`confusion_matrix` (labels outside the classes that ``class_names`` names
            included), or ``class_names`` empty or of the wrong length; all before anything is counted.
        TypeError: ``class_names`` is not a sequence of names.
    """
    labels = _validate(y_true, y_pred)
    names = None if class_names is None else _name_tuple(class_names)
    if names is not None and not names:
        raise ValueError("class_names is empty; give one name per class")
    if names is not None and n_classes is None:
        source = f"class_names gives {len(names)} name{'' if len(names) == 1 else 's'}"
        n_classes = _resolve_n_classes(labels, len(names), source)
    else:
        n_classes = _resolve_n_classes(labels, n_classes)
    names = _class_names(names, n_classes)
    return ClassificationReport.from_confusion(_count_pairs(labels, n_classes), names)


BOOTSTRAP_METRICS = ("accuracy", "precision", "recall", "f1")
BOOTSTRAP_AVERAGES = ("weighted", "macro")


def bootstrap_values(
    confusion: Any, *, metric: str = "f1", average: str = "weighted", n_resamples: int = 20000, seed: int = 0,
) -> np.ndarray:
    """A report figure on ``n_resamples`` bootstrap resamples of the test set: how it would move on another
    test set of the same size drawn from the same distribution.

    Each resample draws the N test samples with replacement, which is a multinomial draw of N over the
    cells of the confusion matrix, so the matrix alone is enough (a stored ``metrics.json`` holds it).
    The figure is computed for each resample as :class:`ClassificationReport` computes it.

    Args:
        confusion: (C, C) non-negative integer counts (rows true, columns predicted), any backend.
        metric: ``"accuracy"``, ``"precision"``, ``"recall"`` or ``"f1"``.
        average: ``"weighted"`` (by support) or ``"macro"``; ignored for accuracy.
        n_resamples: the number of bootstrap resamples.
        seed: seeds the resampling (the same seed gives the same values).

    Returns:
        (n_resamples,) float64 NumPy array.

    Raises:
        ValueError: an invalid confusion matrix (as :meth:`ClassificationReport.from_confusion`), an
            unknown metric or average, or ``n_resamples`` < 1.
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(BOOTSTRAP_METRICS)}, got {metric!r}")
    if average not in BOOTSTRAP_AVERAGES:
        raise ValueError(f"average must be one of {', '.join(BOOTSTRAP_AVERAGES)}, got {average!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, numbers.Integral) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    matrix = ClassificationReport.from_confusion(confusion).confusion
    n, classes = int(matrix.sum()), matrix.shape[0]
    draws = np.random.default_rng(seed).multinomial(n, matrix.ravel() / n, size=int(n_resamples))
    return _averaged_figure(draws.reshape(-1, classes, classes), metric, average)


def _averaged_figure(confusions: np.ndarray, metric: str, average: str) -> np.ndarray:
    """``metric`` with ``average`` of each of a stack of (..., C, C) confusion matrices, as
    :class:`ClassificationReport` defines it; shape (...,), float64."""
    tp = np.diagonal(confusions, axis1=-2, axis2=-1)
    support, predicted = confusions.sum(axis=-1), confusions.sum(axis=-2)
    n = support.sum(axis=-1)
    if metric == "accuracy":
        return tp.sum(axis=-1) / n
    numerator, denominator = {"precision": (tp, predicted), "recall": (tp, support),
                              "f1": (2 * tp, predicted + support)}[metric]
    per_class = _ratio(numerator, denominator)
    return (per_class * support).sum(axis=-1) / n if average == "weighted" else per_class.mean(axis=-1)


def bootstrap_interval(
    confusion: Any, *, metric: str = "f1", average: str = "weighted", level: float = 0.95,
    n_resamples: int = 20000, seed: int = 0,
) -> tuple[float, float]:
    """The percentile bootstrap interval of a report figure: the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles of :func:`bootstrap_values` (same arguments), as ``(low, high)`` Python floats.

    Raises:
        ValueError: as :func:`bootstrap_values`, or ``level`` outside (0, 1).
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    values = bootstrap_values(confusion, metric=metric, average=average, n_resamples=n_resamples, seed=seed)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
