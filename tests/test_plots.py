"""Figures: real PNG files, diverged and regression runs, annotated confusion matrices."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nnbackend.history import History

pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")

import matplotlib.image  # noqa: E402

from nnbackend.plots import plot_confusion_matrix, plot_history  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFUSION = np.array([[3, 1, 0, 0], [0, 2, 0, 1], [1, 1, 0, 1], [0, 0, 0, 0]])
NAMES = ["zero", "one", "two", "three"]


def _assert_png(path: Path, min_size: int = 300) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    assert min(height, width) >= min_size and pixels.std() > 0  # a real, non-blank picture


def _diverged_history() -> History:
    history = History(diverged_epoch=9, best_epoch=4)
    losses = [1.0, 0.8, 0.6, 0.5, 3.0, 40.0, 900.0, 1e5, float("nan")]
    for epoch, loss in enumerate(losses, start=1):
        history.add_train(epoch, loss, 0.1 * epoch, 0.5 * epoch)
        if epoch % 2 == 0:
            history.add_validation(epoch, 1.1 * loss, 0.09 * epoch)
    history.add_validation(9, float("inf"), 0.1)
    return history


def _legend_labels(axes) -> list[str]:
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_diverged_history_plots_finite_points_and_marks_divergence(tmp_path: Path) -> None:
    path = tmp_path / "figures" / "nested" / "history.png"

    figure = plot_history(_diverged_history(), path, title="GD, learning rate 1.0")

    _assert_png(path)
    loss_axes, accuracy_axes = figure.axes
    train_line, val_line = loss_axes.get_lines()[:2]
    np.testing.assert_array_equal(train_line.get_xdata(), np.arange(1, 9))  # the NaN at epoch 9 is left out
    np.testing.assert_array_equal(val_line.get_xdata(), [2, 4, 6, 8])  # so is the inf
    assert val_line.get_marker() == "o"
    assert loss_axes.get_yscale() == "log"  # 0.5 .. 1e5 would flatten a linear axis
    for axes in (loss_axes, accuracy_axes):
        assert _legend_labels(axes) == ["training", "validation", "diverged (epoch 9)", "best (epoch 4)"]
    assert accuracy_axes.get_yscale() == "linear"
    assert figure.get_suptitle() == "GD, learning rate 1.0"


def test_history_without_accuracy_annotates_the_empty_panel(tmp_path: Path) -> None:
    history = History(stopped_epoch=25, best_epoch=15)
    for epoch in range(1, 30):
        history.add_train(epoch, 1 / epoch, None, 0.1 * epoch)
        if epoch % 5 == 0:
            history.add_validation(epoch, 1.2 / epoch, None)

    figure = plot_history(history, tmp_path / "regression.png")

    _assert_png(tmp_path / "regression.png")
    loss_axes, accuracy_axes = figure.axes
    assert _legend_labels(loss_axes) == ["training", "validation", "early stop (epoch 25)", "best (epoch 15)"]
    assert loss_axes.get_yscale() == "linear"
    assert not accuracy_axes.get_lines()
    assert "no accuracy recorded" in accuracy_axes.texts[0].get_text()


def test_empty_history_is_not_saved_without_a_path() -> None:
    figure = plot_history(History())
    assert "no finite loss recorded" in figure.axes[0].texts[0].get_text()
    assert "no accuracy recorded" in figure.axes[1].texts[0].get_text()


def test_confusion_matrix_with_class_names(tmp_path: Path) -> None:
    path = tmp_path / "confusion.png"

    figure = plot_confusion_matrix(CONFUSION, NAMES, path, title="MNIST test")

    _assert_png(path)
    axes, colour_bar = figure.axes
    assert [label.get_text() for label in axes.get_xticklabels()] == NAMES
    assert [label.get_text() for label in axes.get_yticklabels()] == NAMES
    cells = {(text.get_position()[1], text.get_position()[0]): text for text in axes.texts}
    assert len(cells) == 16
    assert [[cells[i, j].get_text() for j in range(4)] for i in range(4)] == CONFUSION.astype(str).tolist()
    assert cells[0, 0].get_color() == "white"  # the darkest cell
    assert cells[3, 3].get_color() == "black"  # an empty cell
    assert axes.get_title() == "MNIST test" and colour_bar.get_ylabel() == "samples"


def test_row_normalised_confusion_matrix(tmp_path: Path) -> None:
    figure = plot_confusion_matrix(CONFUSION.tolist(), path=tmp_path / "normalised.png", normalize=True)

    _assert_png(tmp_path / "normalised.png")
    axes = figure.axes[0]
    cells = {(text.get_position()[1], text.get_position()[0]): text.get_text() for text in axes.texts}
    assert [cells[0, j] for j in range(4)] == ["0.75", "0.25", "0.00", "0.00"]
    assert [cells[1, j] for j in range(4)] == ["0.00", "0.67", "0.00", "0.33"]
    assert [cells[3, j] for j in range(4)] == ["0.00"] * 4  # a class without samples: no NaN
    assert [label.get_text() for label in axes.get_xticklabels()] == ["0", "1", "2", "3"]
    assert axes.get_title() == "confusion matrix, row-normalised"


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [
        (np.zeros((2, 3)), None, r"square \(C, C\) array, got shape \(2, 3\)"),
        (np.array([[1, -1], [0, 1]]), None, "finite non-negative counts"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "finite non-negative counts"),
        (CONFUSION, ["a", "b"], "class_names has 2 names but the matrix has 4 classes"),
    ],
)
def test_bad_confusion_matrix_is_rejected(matrix: np.ndarray, names: list[str] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(matrix, names)


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r'pip install "nnbackend\[plot\]"'):
        plot_history(History())


def test_a_folder_as_the_path_is_refused_before_drawing_and_nothing_is_written(tmp_path: Path) -> None:
    history = _diverged_history()
    with pytest.raises(ValueError, match=rf"{tmp_path} is a folder; pass a file name such as .*curves\.png"):
        plot_history(history, tmp_path)
    with pytest.raises(ValueError, match=r"is a folder; pass a file name such as .*confusion\.png"):
        plot_confusion_matrix(CONFUSION, path=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_path_given_as_the_class_names_is_refused(tmp_path):
    for path in (str(tmp_path / "c.png"), tmp_path / "c.png"):
        with pytest.raises(TypeError, match=r"the file goes third, plot_confusion_matrix\(matrix, class_names, path\)"):
            plot_confusion_matrix(np.eye(5, dtype=int), path)
    assert not list(tmp_path.iterdir())
