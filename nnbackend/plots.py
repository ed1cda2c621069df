"""Figures of a training run and of a confusion matrix (the paper's Figs. 2-5).

matplotlib is an optional extra (``pip install "nnbackend[plot]"``) imported only when a figure is made.
Figures are built on matplotlib's non-interactive Agg canvas without pyplot, so nothing global changes
(no backend switch, no open-figure registry to close): a figure is freed once the caller drops it, and
displays inline in Jupyter as any matplotlib figure does.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np

from nnbackend.backend import to_numpy
from nnbackend.files import atomic_file, check_file_path
from nnbackend.history import History

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_confusion_matrix", "plot_history"]

INSTALL_HINT = 'pip install "nnbackend[plot]"'
DPI = 120
# Beyond this many classes the cell labels would be unreadable (and slow to draw): colours only.
MAX_ANNOTATED_CLASSES = 40
# A loss curve spanning more than this factor (a run blowing up before it diverges) is drawn on a log axis.
LOG_SCALE_SPAN = 1e3


def _new_figure(width: float, height: float) -> Figure:
    """An empty figure on its own Agg canvas (no pyplot), or an ImportError naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: {INSTALL_HINT}") from exc
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path | None) -> None:
    """Write ``figure`` to ``path`` (PNG unless the suffix names another format), creating folders."""
    if path is None:
        return
    path = Path(path)
    with atomic_file(path) as fh:
        figure.savefig(fh, dpi=DPI, format=path.suffix.lstrip(".").lower() or "png")


def _finite_points(epochs: Sequence[int], values: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """The (epoch, value) pairs whose value is a finite number, as two float64 arrays."""
    pairs = [(e, v) for e, v in zip(epochs, values) if v is not None and np.isfinite(v)]
    if not pairs:
        return np.empty(0), np.empty(0)
    x, y = zip(*pairs)
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


def _plot_curves(
    axes: Axes,
    train: tuple[Sequence[int], Sequence[float | None]],
    validation: tuple[Sequence[int], Sequence[float | None]],
) -> np.ndarray:
    """Draw the training line and the validation points; return every value drawn (empty: nothing)."""
    x, y = _finite_points(*train)
    val_x, val_y = _finite_points(*validation)
    if x.size:
        axes.plot(x, y, color="C0", label="training")
    if val_x.size:
        axes.plot(val_x, val_y, color="C1", marker="o", markersize=4, label="validation")
    return np.concatenate([y, val_y])


def _mark_events(axes: Axes, history: History, validation: Sequence[float | None]) -> None:
    """Vertical lines for divergence, early stop and the best epoch (with a star on its validation point)."""
    if history.diverged_epoch is not None:
        axes.axvline(history.diverged_epoch, color="C3", linestyle="--",
                     label=f"diverged (epoch {history.diverged_epoch})")
    if history.stopped_epoch is not None:
        axes.axvline(history.stopped_epoch, color="0.4", linestyle=":",
                     label=f"early stop (epoch {history.stopped_epoch})")
    if history.best_epoch is not None:
        axes.axvline(history.best_epoch, color="C2", linestyle="-.", linewidth=1,
                     label=f"best (epoch {history.best_epoch})")
        best_x, best_y = _finite_points(history.val_epoch, validation)
        at_best = best_x == history.best_epoch
        axes.plot(best_x[at_best], best_y[at_best], color="C2", marker="*", markersize=12, linestyle="none")


def _note(axes: Axes, text: str) -> None:
    """Replace an empty panel's contents with a centred explanation."""
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="0.35")
    axes.set_xticks([])
    axes.set_yticks([])


def _finish_panel(axes: Axes, name: str) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.set_xlabel("epoch")
    axes.set_ylabel(name)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")


def plot_history(history: History, path: str | Path | None = None, *, title: str | None = None) -> Figure:
    """Loss and accuracy over epochs, training vs validation (the paper's Figs. 2 and 4).

    The training curve is a line over ``history.epoch``; validation values are points with markers at
    ``history.val_epoch``. Dashed / dotted / dash-dot vertical lines mark ``diverged_epoch``,
    ``stopped_epoch`` and ``best_epoch`` when set. Non-finite losses (a diverged run) are left out; a loss
    curve spanning more than ``LOG_SCALE_SPAN`` is drawn on a log axis. A panel with nothing to draw (no
    accuracies for regression targets, or no epochs) says so instead.

    Args:
        history: the record of a run.
        path: where to save the figure (PNG at ``DPI`` dots per inch unless the suffix says otherwise);
            parent folders are created. ``None``: not saved.
        title: a title over both panels.

    Returns:
        The matplotlib ``Figure`` (two axes: loss, accuracy).

    Raises:
        ValueError: ``path`` is a folder.
        ImportError: matplotlib is not installed.
    """
    if path is not None:
        path = check_file_path(path, "curves.png")
    figure = _new_figure(11.0, 4.2)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    panels = (
        (loss_axes, "loss", history.loss, history.val_loss, "no finite loss recorded"),
        (accuracy_axes, "accuracy", history.accuracy, history.val_accuracy,
         "no accuracy recorded\n(e.g. regression targets)"),
    )
    for axes, name, train, validation, empty_note in panels:
        axes.set_title(name)
        drawn = _plot_curves(axes, (history.epoch, train), (history.val_epoch, validation))
        if not drawn.size:
            _note(axes, empty_note)
            continue
        _mark_events(axes, history, validation)
        if name == "loss" and drawn.min() > 0 and drawn.max() / drawn.min() > LOG_SCALE_SPAN:
            axes.set_yscale("log")
        _finish_panel(axes, name)
    if title:
        figure.suptitle(title)
    _save(figure, path)
    return figure


def _as_host_matrix(matrix: Any) -> np.ndarray:
    """``matrix`` (any backend, or nested lists) as a validated (C, C) non-negative float64 array."""
    host = to_numpy(matrix) if array_api_compat.is_array_api_obj(matrix) else np.asarray(matrix)
    if host.ndim != 2 or host.shape[0] != host.shape[1] or host.shape[0] == 0:
        raise ValueError(f"matrix must be a non-empty square (C, C) array, got shape {host.shape}")
    if host.dtype.kind not in "iuf" or not np.isfinite(host).all() or (host < 0).any():
        raise ValueError("matrix must hold finite non-negative counts")
    return host.astype(np.float64)


def _row_normalised(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the recall of each true class on the diagonal); empty rows stay 0."""
    totals = counts.sum(axis=1, keepdims=True)
    out = np.zeros_like(counts)
    np.divide(counts, totals, out=out, where=totals > 0)
    return out


def _annotate_cells(axes: Axes, image: Any, values: np.ndarray, normalize: bool) -> None:
    """Write each cell's value, white on dark cells and black on light ones."""
    font_size = "medium" if values.shape[0] <= 10 else "x-small"
    for (row, column), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5  # relative luminance
        axes.text(column, row, f"{value:.2f}" if normalize else f"{int(value)}", ha="center", va="center",
                  color="white" if dark else "black", fontsize=font_size)


def plot_confusion_matrix(
    matrix: Any,
    class_names: Sequence[str] | None = None,
    path: str | Path | None = None,
    *,
    normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """A confusion matrix as a heat map with annotated cells (the paper's Figs. 3 and 5).

    Args:
        matrix: (C, C) counts, rows true class and columns predicted class, e.g.
            :func:`nnbackend.metrics.confusion_matrix`; any backend, NumPy or nested lists.
        class_names: C tick labels; defaults to ``"0"``, ``"1"``, ...
        path: where to save the figure (PNG at ``DPI`` dots per inch unless the suffix says otherwise);
            parent folders are created. ``None``: not saved.
        normalize: show each row as fractions of its true class (rows without samples stay 0) instead of
            counts.
        title: the axes title; defaults to ``"confusion matrix"`` (with ``", row-normalised"``).

    Cells are annotated up to ``MAX_ANNOTATED_CLASSES`` classes; a colour bar shows the scale.

    Returns:
        The matplotlib ``Figure`` (the matrix axes and the colour bar axes).

    Raises:
        ValueError: the matrix is not square, empty, negative or non-finite, the number of names is
            not C, or ``path`` is a folder.
        ImportError: matplotlib is not installed.
    """
    if isinstance(class_names, (str, bytes, PathLike)):
        raise TypeError(f"class_names must be a list of names, got {class_names!r}: the file goes third, "
                        "plot_confusion_matrix(matrix, class_names, path), or by name: path=...")
    if path is not None:
        path = check_file_path(path, "confusion.png")
    counts = _as_host_matrix(matrix)
    n_classes = counts.shape[0]
    names = [str(i) for i in range(n_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names but the matrix has {n_classes} classes")
    values = _row_normalised(counts) if normalize else counts

    side = min(max(4.5, 0.5 * n_classes + 2.5), 20.0)
    figure = _new_figure(side + 1.0, side)
    axes = figure.subplots()
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(values.max(), 1.0))
    figure.colorbar(image, ax=axes, label="fraction of the true class" if normalize else "samples")
    if n_classes <= MAX_ANNOTATED_CLASSES:
        _annotate_cells(axes, image, values, normalize)
    long_names = max(len(name) for name in names) > 3
    axes.set_xticks(range(n_classes), labels=names, rotation=45 if long_names else 0,
                    ha="right" if long_names else "center", rotation_mode="anchor")
    axes.set_yticks(range(n_classes), labels=names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title or ("confusion matrix, row-normalised" if normalize else "confusion matrix"))
    _save(figure, path)
    return figure
