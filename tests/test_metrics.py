"""Metrics against hand-computed values, across backends, against scikit-learn when installed."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnbackend.backend import Backend, BackendUnavailableError, get_backend
from nnbackend.metrics import (ClassificationReport, accuracy, bootstrap_interval, bootstrap_values, classification_report,
                               confusion_matrix)

# Ten samples, four classes. Class 2 is never predicted; class 3 is predicted twice but never true.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 0, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 1, 0, 3, 0, 3, 1])

# Rows true class, columns predicted class, counted by hand from the pairs above.
CONFUSION = np.array([[3, 1, 0, 0], [0, 2, 0, 1], [1, 1, 0, 1], [0, 0, 0, 0]])
# TP = (3, 2, 0, 0), predicted = column sums (4, 4, 0, 2), support = row sums (4, 3, 3, 0).
PRECISION = [3 / 4, 2 / 4, 0.0, 0 / 2]  # class 2: nothing predicted -> 0
RECALL = [3 / 4, 2 / 3, 0 / 3, 0.0]  # class 3: no support -> 0
F1 = [6 / 8, 4 / 7, 0 / 3, 0 / 2]  # 2 TP / (predicted + support)
SUPPORT = [4, 3, 3, 0]
ACCURACY = 5 / 10
MACRO = {"precision": 1.25 / 4, "recall": (3 / 4 + 2 / 3) / 4, "f1": (3 / 4 + 4 / 7) / 4}
WEIGHTED = {  # support-weighted: (4 p0 + 3 p1 + 3 p2 + 0 p3) / 10
    "precision": (4 * 3 / 4 + 3 * 2 / 4) / 10,
    "recall": (4 * 3 / 4 + 3 * 2 / 3) / 10,
    "f1": (4 * 3 / 4 + 3 * 4 / 7) / 10,
}

BACKENDS = ["numpy", "torch", "array_api_strict:device1", "cupy"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    try:
        return get_backend(request.param)
    except BackendUnavailableError as exc:
        pytest.skip(f"backend {request.param} unavailable: {exc}")


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float64)[labels]


def _assert_report_equal(report: ClassificationReport, expected: ClassificationReport) -> None:
    assert report.to_dict() == expected.to_dict()


@pytest.mark.filterwarnings("error")
def test_report_matches_hand_computed_values() -> None:
    report = classification_report(Y_TRUE, Y_PRED)

    np.testing.assert_array_equal(report.confusion, CONFUSION)
    assert report.confusion.dtype == np.int64
    np.testing.assert_allclose(report.precision, PRECISION, rtol=0, atol=1e-15)
    np.testing.assert_allclose(report.recall, RECALL, rtol=0, atol=1e-15)
    np.testing.assert_allclose(report.f1, F1, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(report.support, SUPPORT)
    assert report.accuracy == ACCURACY
    assert report.macro == pytest.approx(MACRO, abs=1e-15)
    assert report.weighted == pytest.approx(WEIGHTED, abs=1e-15)
    assert report.class_names == ("0", "1", "2", "3")
    assert report.n_samples == 10


def test_accuracy_and_confusion_matrix() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == ACCURACY
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED), CONFUSION)
    # Lists are accepted, and n_classes may add classes no sample mentions.
    wide = confusion_matrix(Y_TRUE.tolist(), Y_PRED.tolist(), n_classes=6)
    assert wide.shape == (6, 6) and wide.dtype == np.int64
    np.testing.assert_array_equal(wide[:4, :4], CONFUSION)
    assert wide[4:].sum() == 0 and wide[:, 4:].sum() == 0


def test_scores_and_one_hot_rows_are_reduced_by_argmax() -> None:
    rng = np.random.default_rng(0)
    scores = _one_hot(Y_PRED, 4) + rng.uniform(0, 0.5, size=(10, 4))
    expected = classification_report(Y_TRUE, Y_PRED)
    _assert_report_equal(classification_report(_one_hot(Y_TRUE, 4), scores), expected)
    _assert_report_equal(classification_report(Y_TRUE, scores.astype(np.float32)), expected)
    assert accuracy(_one_hot(Y_TRUE, 4), Y_PRED) == ACCURACY
    # The number of score columns sets C, even when a class is absent from both arrays.
    assert confusion_matrix(Y_TRUE, np.hstack([scores, np.zeros((10, 1))])).shape == (5, 5)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int16])
def test_any_integer_dtype(dtype: type) -> None:
    y_true, y_pred = Y_TRUE.astype(dtype), Y_PRED.astype(dtype)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), CONFUSION)
    # More classes than the label dtype can count up to.
    wide = confusion_matrix(y_true, y_pred, n_classes=np.int64(300))
    assert wide.shape == (300, 300) and wide.sum() == 10 and wide[256:].sum() == 0


def test_same_results_on_every_backend(backend: Backend) -> None:
    expected = classification_report(Y_TRUE, Y_PRED, class_names=["a", "b", "c", "d"])
    y_true, y_pred = backend.asarray(Y_TRUE), backend.asarray(Y_PRED)

    report = classification_report(y_true, y_pred, class_names=["a", "b", "c", "d"])

    _assert_report_equal(report, expected)
    assert isinstance(report.confusion, np.ndarray) and isinstance(report.accuracy, float)
    assert accuracy(y_true, y_pred) == ACCURACY
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, n_classes=5)[:4, :4], CONFUSION)


def test_scores_on_every_backend(backend: Backend) -> None:
    scores = np.random.default_rng(1).normal(size=(10, 4))
    expected = confusion_matrix(Y_TRUE, np.argmax(scores, axis=1))
    on_device = backend.asarray(scores)  # float32 on the backend's device
    np.testing.assert_array_equal(confusion_matrix(backend.asarray(Y_TRUE), on_device), expected)
    expected_accuracy = accuracy(Y_TRUE, np.argmax(scores, axis=1))
    assert accuracy(backend.asarray(_one_hot(Y_TRUE, 4)), on_device) == expected_accuracy


def test_large_input_counts_exactly() -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 10, size=200_000)
    y_pred = np.where(rng.random(200_000) < 0.9, y_true, rng.integers(0, 10, size=200_000))
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (y_true, y_pred), 1)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), expected)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda c: st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=40)
    )
)
def test_confusion_matrix_counts_every_pair(pairs: list[tuple[int, int]]) -> None:
    y_true, y_pred = (np.array(column) for column in zip(*pairs))
    matrix = confusion_matrix(y_true, y_pred)
    assert matrix.shape == (max(max(p) for p in pairs) + 1,) * 2
    assert Counter(pairs) == {(i, j): n for (i, j), n in np.ndenumerate(matrix) if n}
    report = ClassificationReport.from_confusion(matrix)
    assert np.isfinite(report.f1).all() and report.weighted["recall"] == pytest.approx(report.accuracy)


def test_matches_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is not installed")
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 6, size=300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 5, size=300))  # class 5 rarely predicted
    y_pred[y_pred == 5] = 4
    labels = list(range(7))  # class 6: no support, never predicted

    report = classification_report(y_true, y_pred, n_classes=7)

    np.testing.assert_array_equal(report.confusion, sk.confusion_matrix(y_true, y_pred, labels=labels))
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(report.precision, p, rtol=1e-12)
    np.testing.assert_allclose(report.recall, r, rtol=1e-12)
    np.testing.assert_allclose(report.f1, f, rtol=1e-12)
    np.testing.assert_array_equal(report.support, s)
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert getattr(report, average) == pytest.approx({"precision": p, "recall": r, "f1": f}, rel=1e-12)
    assert report.accuracy == pytest.approx(sk.accuracy_score(y_true, y_pred), rel=1e-15)


def test_table_markdown_dict_and_json(tmp_path) -> None:
    report = classification_report(Y_TRUE, Y_PRED, class_names=["zero", "one", "two", "pipe|d"])

    table = report.to_table().splitlines()
    assert table[0].split() == ["precision", "recall", "f1-score", "support"]
    assert table[2].split() == ["zero", "0.7500", "0.7500", "0.7500", "4"]
    assert table[3].split() == ["one", "0.5000", "0.6667", "0.5714", "3"]
    assert table[-3].split() == ["accuracy", "0.5000", "10"]
    assert table[-2].split() == ["macro", "avg", "0.3125", "0.3542", "0.3304", "10"]
    assert table[-1].split() == ["weighted", "avg", "0.4500", "0.5000", "0.4714", "10"]
    assert len({len(line) for line in table if line}) == 1  # columns line up
    assert str(report) == report.to_table()

    markdown = report.to_markdown().splitlines()
    assert markdown[0] == "| class | precision | recall | f1-score | support |"
    assert "| pipe\\|d | 0.0000 | 0.0000 | 0.0000 | 0 |" in markdown
    assert markdown[-1] == "| **weighted avg** | 0.4500 | 0.5000 | 0.4714 | 10 |"

    path = tmp_path / "reports" / "test.json"
    report.to_json(path)
    loaded = json.loads(path.read_text())
    assert loaded == report.to_dict()
    assert loaded["confusion"] == CONFUSION.tolist() and loaded["support"] == SUPPORT
    assert type(loaded["accuracy"]) is float and type(loaded["support"][0]) is int


def test_report_is_immutable() -> None:
    report = classification_report(Y_TRUE, Y_PRED)
    with pytest.raises(ValueError, match="read-only"):
        report.precision[0] = 1.0
    with pytest.raises(AttributeError):
        report.accuracy = 1.0  # type: ignore[misc]


def test_class_names_set_the_number_of_classes() -> None:
    report = classification_report(Y_TRUE, Y_PRED, class_names=list("abcdef"))
    assert report.confusion.shape == (6, 6) and report.support.tolist() == [*SUPPORT, 0, 0]
    with pytest.raises(ValueError, match="class_names has 3 names but there are 4 classes"):
        classification_report(Y_TRUE, Y_PRED, class_names=list("abc"), n_classes=4)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "message"),
    [
        ([0, 1, 2], [0, 1], None, r"same length, got 3 \(y_true\) and 2 \(y_pred\)"),
        ([0, 1], [0, 5], 3, r"y_pred holds the label 5, outside the class range \[0, 3\)"),
        ([0, -1], [0, 1], None, r"y_true holds the label -1, outside the class range \[0, 2\)"),
        ([0.0, 1.0], [0, 1], None, "y_true must hold integer class labels, got dtype float64"),
        ([0, 1], [True, False], None, "y_pred must hold integer class labels, got dtype bool"),
        (np.array([], dtype=np.int64), np.array([], dtype=np.int64), None, "empty"),
        (np.zeros((2, 2, 2)), [0, 1], None, r"y_true must be labels of shape \(N,\) or scores of shape"),
        (np.zeros((2, 0)), [0, 1], None, r"y_true as scores must have shape \(N, C\) with C >= 1"),
        (np.eye(3), np.eye(4)[:3], None, "y_true has scores for 3 classes but y_pred for 4"),
        (np.eye(3), [0, 1, 2], 4, "n_classes is 4 but the scores have 3 columns"),
        ([0, 1], [0, 1], 0, "n_classes must be a positive integer, got 0"),
        ([0, 1], [0, 1], 2.0, "n_classes must be a positive integer, got 2.0"),
    ],
)
def test_bad_inputs_are_rejected(y_true, y_pred, n_classes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.asarray(y_true), np.asarray(y_pred), n_classes)


def test_accuracy_validates_its_inputs() -> None:
    with pytest.raises(ValueError, match=r"got 2 \(y_true\) and 1 \(y_pred\)"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="y_pred must hold integer class labels"):
        accuracy([0, 1], [0.0, 1.0])


def test_mixed_libraries_are_rejected() -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    torch_backend = get_backend("torch")
    with pytest.raises(ValueError, match="different array libraries"):
        confusion_matrix(Y_TRUE, torch_backend.asarray(Y_PRED))


def test_mixed_devices_are_rejected() -> None:
    pytest.importorskip("array_api_strict", reason="array-api-strict is not installed")
    cpu, other = get_backend("array_api_strict"), get_backend("array_api_strict:device1")
    with pytest.raises(ValueError, match="different devices"):
        accuracy(cpu.asarray(Y_TRUE), other.asarray(Y_PRED))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.zeros((2, 3), dtype=np.int64), r"square \(C, C\) matrix, got shape \(2, 3\)"),
        (np.zeros((2, 2), dtype=np.int64), "at least one sample"),
        (np.array([[1, -1], [0, 1]]), "non-negative integer counts"),
        (np.eye(2), "non-negative integer counts"),
    ],
)
def test_from_confusion_validates(matrix: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClassificationReport.from_confusion(matrix)


# -- bootstrap intervals ----------------------------------------------------------------------------


def _labels_of(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, pred = np.nonzero(confusion)
    counts = confusion[true, pred]
    return np.repeat(true, counts), np.repeat(pred, counts)


def test_each_bootstrap_value_is_the_report_figure_of_a_multinomial_draw():
    confusion = np.array([[50, 30, 0, 2], [1, 12, 0, 0], [9, 4, 3, 1], [0, 0, 0, 0]])  # asymmetric, a class unseen
    n = int(confusion.sum())
    draws = np.random.default_rng(7).multinomial(n, confusion.ravel() / n, size=50).reshape(-1, 4, 4)
    reports = [ClassificationReport.from_confusion(d) for d in draws]
    for metric in ("precision", "recall", "f1"):
        for average in ("weighted", "macro"):
            values = bootstrap_values(confusion, metric=metric, average=average, n_resamples=50, seed=7)
            np.testing.assert_allclose(values, [getattr(r, average)[metric] for r in reports], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bootstrap_values(confusion, metric="accuracy", n_resamples=50, seed=7),
                               [r.accuracy for r in reports], rtol=0, atol=1e-12)


def test_bootstrap_interval_matches_resampling_the_samples_one_by_one():
    rng = np.random.default_rng(3)
    confusion = rng.integers(0, 6, size=(4, 4)) + np.diag([150, 90, 60, 20])
    y_true, y_pred = _labels_of(confusion)
    weighted = []
    for _ in range(3000):
        pick = rng.integers(0, len(y_true), len(y_true))
        weighted.append(classification_report(y_true[pick], y_pred[pick], n_classes=4).weighted["f1"])
    expected = np.quantile(weighted, [0.05, 0.95])
    low, high = bootstrap_interval(confusion, level=0.9)
    assert low == pytest.approx(expected[0], abs=0.006) and high == pytest.approx(expected[1], abs=0.006)


def test_bootstrap_interval_holds_the_estimate_narrows_with_more_samples_and_is_seeded():
    confusion = np.array([[80, 15, 5], [10, 70, 20], [5, 5, 90]])
    point = ClassificationReport.from_confusion(confusion).weighted["f1"]
    low, high = bootstrap_interval(confusion)
    assert low < point < high
    low4, high4 = bootstrap_interval(confusion * 4)
    assert (high4 - low4) / (high - low) == pytest.approx(0.5, abs=0.08)  # width ~ 1 / sqrt(N)
    assert bootstrap_interval(confusion, seed=5) == bootstrap_interval(confusion, seed=5)
    assert bootstrap_interval(confusion, seed=5) != bootstrap_interval(confusion, seed=6)
    assert bootstrap_interval(np.diag([5, 7, 9])) == (1.0, 1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "auc"}, "metric must be one of"),
    ({"average": "micro"}, "average must be one of"),
    ({"level": 1.0}, r"level must be a number in \(0, 1\)"),
    ({"level": True}, "level must be"),
    ({"n_resamples": 0}, "n_resamples must be a positive integer"),
    ({"n_resamples": 10.0}, "n_resamples must be"),
])
def test_bootstrap_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(np.eye(3, dtype=int), **kwargs)


def test_bootstrap_interval_refuses_a_bad_confusion_matrix():
    with pytest.raises(ValueError, match="square"):
        bootstrap_interval(np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        bootstrap_interval(np.zeros((3, 3), dtype=int))


def test_to_json_refuses_a_folder_and_leaves_nothing(tmp_path):
    report = classification_report(Y_TRUE, Y_PRED)
    with pytest.raises(ValueError, match=r"is a folder; pass a file name such as .*metrics\.json"):
        report.to_json(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_every_writer_refuses_a_folder_through_the_atomic_writer(tmp_path):
    from nnbackend.files import atomic_file, write_text

    with pytest.raises(ValueError, match=f"{tmp_path} is a folder; pass a file name"):
        write_text(tmp_path, "text")
    with pytest.raises(ValueError, match="is a folder"), atomic_file(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", [
    lambda y_true, y_pred: confusion_matrix(y_true, y_pred),
    lambda y_true, y_pred: classification_report(y_true, y_pred),
])
def test_a_huge_label_is_named_instead_of_sizing_the_matrix(call):
    y_true, y_pred = np.array([0, 10**9]), np.array([0, 1])
    with pytest.raises(ValueError, match=r"y_true holds the label 1000000000, which would make 1000000001 classes"
                                         r".*pass n_classes \(or class_names\)"):
        call(y_true, y_pred)
    with pytest.raises(ValueError, match="y_pred holds the label 1000000000"):
        call(y_pred, y_true)


def test_the_number_of_classes_is_checked_the_same_way_whoever_gives_it():
    y_true, y_pred = np.array([0, 10**9]), np.array([0, 1])
    with pytest.raises(ValueError, match=r"label 1000000000, outside the class range \[0, 10\); n_classes is 10"):
        classification_report(y_true, y_pred, n_classes=10)
    with pytest.raises(ValueError, match=r"label 1000000000, outside the class range \[0, 3\); class_names gives 3"):
        classification_report(y_true, y_pred, class_names=list("abc"))
    with pytest.raises(ValueError, match=r"label 5, outside the class range \[0, 3\); the scores have 3 columns"):
        confusion_matrix(np.eye(3), [0, 1, 5])
    with pytest.raises(ValueError, match="class_names gives 3 names but the scores have 4 columns"):
        classification_report(np.eye(4), np.eye(4), class_names=list("abc"))
    with pytest.raises(ValueError, match=r"n_classes is 1000000000, more than the 16384 classes"):
        confusion_matrix(Y_TRUE, Y_PRED, n_classes=10**9)
    with pytest.raises(ValueError, match="class_names is empty"):
        classification_report(Y_TRUE, Y_PRED, class_names=[])
    with pytest.raises(TypeError, match="class_names must be a sequence of names"):
        classification_report(Y_TRUE, Y_PRED, class_names=4)


def test_many_classes_are_counted_in_bounded_chunks(monkeypatch):
    import nnbackend.metrics as metrics

    monkeypatch.setattr(metrics, "_ONE_HOT_ELEMENTS", 8)  # two samples per chunk for four classes
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, n_classes=4), CONFUSION)
