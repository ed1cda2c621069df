"""The ``nnbackend`` command line: train, evaluate, reproduce, backends, parity, and user mistakes.

Commands run in-process through ``cli.main(argv)`` (fast, and lets a test plant a defect); one test runs
``python -m nnbackend`` to check the entry point itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import cli, paper, parity
from nnbackend.reproduce import plan

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_FILES = ("config.json", "history.csv", "history.json", "metrics.json", "model.npz", "curves.png",
             "confusion.png", "report.md")


def run_cli(*argv: str) -> tuple[int, str]:
    """``cli.main(argv)`` with its stdout captured: (exit code, output)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue()


def cupy_usable() -> bool:
    return any(info.name == "cupy" and info.usable for info in nb.available_backends())


# -- train and evaluate ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder of ``nnbackend train`` on the shipped sample (3 epochs) and what it printed."""
    out = tmp_path_factory.mktemp("train") / "run"
    code, text = run_cli("train", "--epochs", "3", "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0, text
    return out, text


def test_train_prints_backend_model_and_test_report(trained):
    _, text = trained
    assert "backend: numpy" in text
    assert "Total params: 101,770" in text  # the model summary: 784-128-10
    assert "weighted avg" in text and "precision" in text
    assert "run folder:" in text


def test_an_interrupted_train_resumes_to_the_same_model(tmp_path, monkeypatch, capsys):
    from nnbackend.training import Trainer

    # The paper's loss: the run also records the cross-entropy at each evaluation (kept in the checkpoint).
    argv = ["train", "--epochs", "3", "--backend", "numpy", "--quiet", "--subset", "600,200,200", "--loss", "paper"]
    assert run_cli(*argv, "--out", tmp_path / "whole")[0] == 0
    original = Trainer._train_epoch
    calls = []

    def interrupted_in_epoch_two(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            self.interrupt()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted_in_epoch_two)
    run = tmp_path / "run"
    assert run_cli(*argv, "--out", run)[0] == 130
    assert (run / "checkpoint.npz").is_file() and not (run / "metrics.json").exists()
    capsys.readouterr()
    assert cli.main(["evaluate", str(run)]) == 1  # no model.npz yet: say how to go on
    err = capsys.readouterr().err
    assert "did not finish" in err and f"nnbackend train --out {run} --resume" in err
    monkeypatch.undo()
    code, text = run_cli("train", "--out", run, "--resume", "--quiet")
    assert code == 0, text
    whole, resumed = nb.load_model(tmp_path / "whole" / "model.npz"), nb.load_model(run / "model.npz")
    for name, value in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], value)
    metrics = {name: json.loads((folder / "metrics.json").read_text()) for name, folder in
               (("whole", tmp_path / "whole"), ("resumed", run))}
    assert metrics["resumed"]["validation_losses"] == metrics["whole"]["validation_losses"]
    assert metrics["resumed"]["validation_losses"]["epoch"] == [1, 2, 3]
    history = json.loads((run / "history.json").read_text())
    assert metrics["resumed"]["fit_time_s"] >= history["time"][-1]  # the sessions before the resume count
    record = json.loads((run / "config.json").read_text())
    assert len(record["resumed"]) == 1 and record["started"] <= record["resumed"][0]
    assert run_cli("train", "--out", run, "--resume")[0] == 1  # finished: nothing to resume


def test_train_writes_every_file_of_the_run_folder(trained):
    out, _ = trained
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    import matplotlib.image

    for name in ("curves.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    record = json.loads((out / "config.json").read_text())
    assert {"command", "config", "optimizer", "loss", "model", "data", "environment"} <= set(record)
    assert record["config"]["epochs"] == 3 and record["config"]["data"] == "mnist-sample"
    assert record["optimizer"] == {"name": "Adam", "lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08,
                                   "weight_decay": 0.0, "amsgrad": False}
    assert record["environment"]["backend"].startswith("numpy")
    assert record["environment"]["numpy"] == np.__version__
    if (REPO / ".git").exists():  # which engine made the run: the checkout's commit
        assert record["environment"]["commit"]

    history = nb.History.from_dict(json.loads((out / "history.json").read_text()))
    assert history.epoch == [1, 2, 3] and history.val_epoch == [1, 2, 3]
    assert (out / "history.csv").read_text().splitlines()[0] == "epoch,time_s,loss,accuracy,val_loss,val_accuracy"

    metrics = json.loads((out / "metrics.json").read_text())
    assert {"final", "test", "epochs_run", "diverged_epoch", "wall_time_s"} <= set(metrics)
    assert metrics["test"]["samples"] == 500 and len(metrics["test"]["report"]["precision"]) == 10
    assert 0.87 <= metrics["test"]["accuracy"] <= 1  # 0.89 here; a linear model (--layers '') reaches 0.858
    assert "## Test report" in (out / "report.md").read_text()


def test_the_saved_model_reproduces_the_reported_test_accuracy(trained):
    out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    model = nb.load_model(out / "model.npz", backend="numpy")
    split = nb.data.paper_split(nb.data.load("mnist-sample"))
    accuracy = float(np.mean(model.predict_classes(split.x_test) == split.y_test))
    assert accuracy == metrics["test"]["accuracy"]


def test_evaluate_a_run_folder_gives_the_same_accuracy(trained, tmp_path):
    out, _ = trained
    code, text = run_cli("evaluate", out, "--backend", "numpy", "--out", tmp_path)
    assert code == 0, text
    reported = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    evaluated = json.loads((tmp_path / "metrics.json").read_text())["test"]["accuracy"]
    assert evaluated == reported
    assert f"accuracy {reported:.4f}" in text and "weighted avg" in text
    assert (tmp_path / "confusion.png").read_bytes()[:8] == PNG_SIGNATURE


def test_evaluate_a_bare_model_file_needs_the_data_named(trained, tmp_path, capsys):
    out, _ = trained
    bare = tmp_path / "model.npz"
    bare.write_bytes((out / "model.npz").read_bytes())
    assert cli.main(["evaluate", str(bare)]) == 2
    assert "pass --data" in capsys.readouterr().err
    code, text = run_cli("evaluate", bare, "--data", "mnist-sample", "--backend", "numpy")
    assert code == 0
    assert f"accuracy {json.loads((out / 'metrics.json').read_text())['test']['accuracy']:.4f}" in text


def test_train_with_the_papers_loss_full_batch_reports_cross_entropy_beside_it(tmp_path):
    out = tmp_path / "run"
    code, text = run_cli("train", "--loss", "paper", "--optimizer", "gd", "--lr", "0.5", "--batch-size", "full",
                         "--layers", "32", "--epochs", "4", "--eval-every", "2", "--subset", "800,200,200",
                         "--early-stopping", "3", "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation_losses"]["epoch"] == [2, 4]
    assert len(metrics["validation_losses"]["cross_entropy"]) == 2
    assert set(metrics["test"]["losses"]) == {"paper", "cross_entropy"}
    model = nb.load_model(out / "model.npz")
    assert model.ends_with_softmax


# -- reproduce ----------------------------------------------------------------------------------------
def test_the_grid_deduplicates_shared_runs(tmp_path):
    runs = plan(sorted({*paper.TABLES, *paper.CLASS_REPORTS}), paper.FULL, tmp_path)
    assert len(runs) == 18  # 3 + 5 + 5 + 3: tables 3 and 6 add one two-layer run each; 7 and 8 add none
    shared = {run.key: run for run in runs}["mnist-adam-lr0.005-512"]
    assert shared.tables == [2, 3, 7] and shared.figures
    assert all(run.figures for run in runs)  # a full grid draws every run
    quick = plan(sorted({*paper.TABLES, *paper.CLASS_REPORTS}), paper.QUICK, tmp_path)
    assert sum(run.figures for run in quick) == 2  # a quick one only the runs its report shows
    assert all(run.config.loss == "paper" and run.config.batch_size is None and run.config.epochs == 260
               for run in runs)


def test_reproduce_quick_reports_the_papers_numbers_and_resumes(mnist_dir, tmp_path):
    args = ["reproduce", "--quick", "--tables", "3,7", "--subset", "600,200,200", "--epochs", "4",
            "--eval-every", "2", "--jobs", "2", "--backend", "numpy", "--out", tmp_path]
    code, text = run_cli(*args)
    assert code == 0, text
    assert text.count("] mnist-adam-lr0.005-") == 2  # a progress line per run
    report = (tmp_path / "report.md").read_text()
    assert "QUICK RUN" in report
    assert "Table 3" in report and "Table 7" in report
    assert "| 0.970 |" in report and "0.020" in report and "0.028" in report  # the paper's numbers
    assert "| paper | 0.9719 | 0.9719 | 0.9719 |" in report
    results = json.loads((tmp_path / "results.json").read_text())
    for run in results["runs"]:
        assert run["status"] == "done"
        assert f"{run['ours']['val_accuracy']:.4f}" in report  # ours beside the paper's
        assert run["ours"]["val_cross_entropy"] is not None
    best = tmp_path / "runs" / "mnist-adam-lr0.005-512"
    assert (best / "curves.png").is_file() and (best / "confusion.png").is_file()
    command = json.loads((best / "config.json").read_text())["command"]  # how to repeat the run alone
    assert command[:2] == ["nnbackend", "train"] and "--subset" in command and "600,200,200" in command
    first = (best / "metrics.json").stat().st_mtime_ns

    without_backend = [a for a in args if a not in ("--backend", "numpy")]  # auto picks numpy here: the same runs
    code, text = run_cli(*(args if cupy_usable() else without_backend))
    assert code == 0, text
    assert text.count("finished earlier, skipped") == 2
    assert (best / "metrics.json").stat().st_mtime_ns == first
    invocations = json.loads((tmp_path / "results.json").read_text())["invocations"]
    assert [i["trained"] for i in invocations] == [2]  # a re-render is not part of the grid's history
    report = (tmp_path / "report.md").read_text()
    assert "this invocation trained nothing: it rendered the report" in report
    wall_time = next(line for line in report.splitlines() if line.startswith("- wall time:"))
    assert "invocations" not in wall_time and "this one" not in wall_time  # the grid's time: the one training


def test_class_tables_add_the_grids_best_model_by_validation_accuracy(tmp_path):
    from nnbackend.reproduce import best_by_validation, render_report

    def metrics(val_accuracy, confusion):
        return {"final": {"val_accuracy": val_accuracy}, "wall_time_s": 1.0, "diverged_epoch": None,
                "test": {"samples": int(np.sum(confusion)),
                         "report": {"confusion": confusion, "class_names": ["a", "b"]}}}

    runs = {run.key: run for run in plan([6, 8], paper.FULL, tmp_path)}
    paper_setting, two_layers = runs["fashion-mnist-adam-lr0.005-512"], runs["fashion-mnist-adam-lr0.005-512x256"]
    paper_setting.metrics = metrics(0.89, [[9, 1], [1, 9]])  # P = R = F1 = 0.9
    context = {"settings": paper.FULL, "backend": "numpy", "tables": [8], "machine": {
        "platform": "p", "processor": "x", "cpu_count": 2, "python": "3", "numpy": "2"},
        "invocations": [{"wall_time_s": 2.0, "trained": 0, "jobs": 1}]}

    # The paper's setting is the best: no second row.
    assert best_by_validation(runs.values(), "fashion-mnist") is paper_setting
    assert "best model by validation accuracy" not in render_report(list(runs.values()), context)

    two_layers.metrics = metrics(0.90, [[10, 0], [2, 8]])  # weighted P 0.9167, R 0.9, F1 0.8990
    assert best_by_validation(runs.values(), "fashion-mnist") is two_layers
    assert best_by_validation(runs.values(), "mnist") is None
    report = render_report(list(runs.values()), context)
    assert "| ours, the paper's setting | 0.9000 | 0.9000 | 0.9000 |" in report
    assert ("| ours, the grid's best model by validation accuracy: [fashion-mnist-adam-lr0.005-512x256]"
            "(runs/fashion-mnist-adam-lr0.005-512x256/report.md) | 0.9167 | 0.9000 | 0.8990 |") in report
    assert "(0.9000, against 0.8900 for the paper's setting)" in report
    assert "Resampling the 20 test images (bootstrap, 20,000 resamples)" in report
    assert "so the gap of +0.0004 is within what the choice of test images explains" in report
    assert "Trained again with other training and split seeds" not in report
    spread = tmp_path / "spread"
    spread.mkdir()
    study = {"table": 8, "run": paper_setting.key, "quick": False,
             "config": dict(paper_setting.config.to_dict(), seed=None, split_seed=None, backend="numpy"),
             "runs": [{"test_weighted_f1": value} for value in (0.89, 0.9, 0.88, None)]}
    (spread / "spread.json").write_text(json.dumps(study))
    assert ("Trained again with other training and split seeds ([spread/spread.md](spread/spread.md)), this setting "
            "gives 0.8800-0.9000 (mean 0.8900) over 3 runs; runs reaching the paper's 0.8996: 1 of 3.") in render_report(
                list(runs.values()), context)
    (spread / "spread.json").write_text(json.dumps(dict(study, groups={"seed": {"paper_distance": 1.74},
                                                                      "split": {"paper_distance": 2.05}})))
    assert ("The paper's number lies +1.7 (training seeds) and +2.0 (split seeds) standard deviations of the "
            "difference from our means, counting the seeds' spread and both test sets' sampling: beyond 2, more "
            "than seeds and the choice of test images usually explain.") in render_report(list(runs.values()), context)
    for other in (dict(study, quick=True), dict(study, table=7), dict(study, run="fashion-mnist-adam-lr0.001-512"),
                  dict(study, config=dict(study["config"], epochs=5))):
        (spread / "spread.json").write_text(json.dumps(other))
        assert "Trained again" not in render_report(list(runs.values()), context)
    (spread / "spread.json").unlink()
    paper_setting.metrics = metrics(0.89, [[800, 200], [200, 800]])  # F1 0.8 on 2,000 images
    report = render_report(list(runs.values()), context)
    values = nb.metrics.bootstrap_values([[800, 200], [200, 800]])
    low, high = np.quantile(values, [0.025, 0.975])
    margin = 1.96 * (1 + 2000 / 7000) ** 0.5 * np.std(values, ddof=1)  # the paper's test part: 7,000 images
    assert 0.77 < low < 0.8 < high < 0.83 and 0.015 < margin < 0.04
    assert (f"has the 95% interval [{low:.4f}, {high:.4f}]. The paper's number comes from other test images: this "
            f"test set and the paper's 7,000 images give F1s up to {margin:.4f} apart (95%; 1.96 x sqrt(1 + 2,000 / "
            "7,000) x the bootstrap's standard deviation)") in report
    assert "so the gap of -0.0996 is beyond what the choice of test images explains" in report


def test_reproduce_marks_diverged_runs(monkeypatch, tmp_path):
    # A stand-in table on the shipped sample: an absurd learning rate overflows the weights.
    table = paper.Table(1, "sample, gradient descent", "lr", (
        paper.RunSpec(1, "mnist-sample", "gd", 1e30, (16,), paper=paper.Reported(0.091, 4.186, diverged_by=160)),
        paper.RunSpec(1, "mnist-sample", "gd", 0.5, (16,), paper=paper.Reported(0.958, 0.025)),
        paper.RunSpec(1, "mnist-sample", "gd", 0.1, (16,), paper=paper.Reported(0.106, diverged_by=80)),
    ))
    monkeypatch.setitem(paper.TABLES, 1, table)
    code, text = run_cli("reproduce", "--quick", "--tables", "1", "--subset", "400,100,100", "--epochs", "4",
                         "--eval-every", "2", "--jobs", "1", "--backend", "numpy", "--out", tmp_path)
    assert code == 0, text
    results = {r["key"]: r for r in json.loads((tmp_path / "results.json").read_text())["runs"]}
    diverged = results["mnist-sample-gd-lr1e+30-16"]["ours"]["diverged_epoch"]
    assert diverged is not None and results["mnist-sample-gd-lr0.5-16"]["ours"]["diverged_epoch"] is None
    assert "DIVERGED at epoch" in text
    report = (tmp_path / "report.md").read_text()
    assert f"ours: diverged at epoch {diverged}" in report and "paper: diverged by epoch 160" in report
    assert results["mnist-sample-gd-lr1e+30-16"]["ours"]["converged"] is False
    calm = results["mnist-sample-gd-lr0.1-16"]["ours"]
    assert calm["converged"] is True
    assert calm["diverged_epoch"] is None and report.count("ours: did not diverge") == 1
    assert f"ours: did not diverge (val acc {calm['val_accuracy']:.4f} at epoch 4)" in report


def test_a_run_whose_training_loss_rose_is_marked_not_converged(tmp_path):
    from nnbackend.reproduce import _results, converged, loss_rose, progress_line, render_report

    runs = {run.key: run for run in plan([2], paper.FULL, tmp_path)}
    for key, losses in (("mnist-adam-lr0.05-512", [0.336, 2.9, 3.154]), ("mnist-adam-lr0.005-512", [0.3, 0.1, 0.02])):
        run = runs[key]
        run.folder.mkdir(parents=True)
        (run.folder / "history.json").write_text(json.dumps({"epoch": [1, 2, 3], "loss": losses}))
        run.metrics = {"final": {"val_accuracy": 0.2, "val_loss": 3.0, "val_epoch": 3}, "epochs_run": 3,
                       "diverged_epoch": None, "wall_time_s": 1.0,
                       "test": {"accuracy": 0.2, "samples": 10, "report": {
                           "class_names": list("0123456789"), "confusion": np.eye(10, dtype=int).tolist()}}}
    assert loss_rose(runs["mnist-adam-lr0.05-512"]) == (0.336, 3.154, 3)
    assert loss_rose(runs["mnist-adam-lr0.005-512"]) is None
    assert loss_rose(runs["mnist-adam-lr0.01-512"]) is None  # no history: nothing to say
    assert progress_line(1, 5, runs["mnist-adam-lr0.05-512"]).endswith("not converged (training loss rose), 1.0 s")
    assert "not converged" not in progress_line(2, 5, runs["mnist-adam-lr0.005-512"])
    for losses, expected in (([0.3, 0.3], True), ([0.3], None)):  # a flat loss did not rise; one epoch cannot tell
        runs["mnist-adam-lr0.001-512"].folder.mkdir(parents=True, exist_ok=True)
        (runs["mnist-adam-lr0.001-512"].folder / "history.json").write_text(json.dumps({"loss": losses}))
        runs["mnist-adam-lr0.001-512"].metrics = runs["mnist-adam-lr0.005-512"].metrics
        assert loss_rose(runs["mnist-adam-lr0.001-512"]) is None
        assert converged(runs["mnist-adam-lr0.001-512"]) is expected
    runs["mnist-adam-lr0.001-512"].metrics = None
    context = {"settings": paper.FULL, "backend": "numpy", "tables": [2], "machine": {
        "platform": "p", "processor": "x", "cpu_count": 2, "python": "3", "numpy": "2"},
        "invocations": [{"wall_time_s": 2.0, "trained": 0, "jobs": 1}]}
    report = render_report(list(runs.values()), context)
    assert "**ours: not converged**: training loss rose from 0.336 in epoch 1 to 3.154 in epoch 3" in report
    assert "ours: did not diverge" not in report  # table 2 has no row the paper saw diverge
    assert report.count("not converged**") == 1
    flags = {r["key"]: r["ours"]["converged"] for r in _results(list(runs.values()), context)["runs"] if r["ours"]}
    assert flags == {"mnist-adam-lr0.05-512": False, "mnist-adam-lr0.005-512": True}
    runs["mnist-adam-lr0.005-512"].metrics = dict(runs["mnist-adam-lr0.005-512"].metrics, diverged_epoch=2)
    assert converged(runs["mnist-adam-lr0.005-512"]) is False
    chance = {"final": {"val_accuracy": 0.1}, "diverged_epoch": None, "test": {"report": {"class_names": list("0123456789")}}}
    runs["mnist-adam-lr0.005-512"].metrics = chance  # falling loss, but at chance level
    assert converged(runs["mnist-adam-lr0.005-512"]) is False


def test_a_grid_child_that_fails_to_start_stops_the_queue_and_keeps_what_finished(tmp_path, monkeypatch):
    import time

    from nnbackend import reproduce

    runs = plan([2], paper.FULL, tmp_path)
    started, finished = [], []

    def child(run, env):
        started.append(run.key)
        if run.key == runs[1].key:
            raise OSError(28, "No space left on device")
        time.sleep(0.05)
        run.status = "done"
        return run

    monkeypatch.setattr(reproduce, "_run_in_child", child)
    with pytest.raises(OSError, match="No space left"):
        reproduce.train_runs(runs, jobs=2, on_finished=lambda run: finished.append(run.key))
    assert runs[0].key in finished and runs[1].key not in finished  # the running one finished and was reported
    assert len(started) < len(runs)  # the queue stopped: not every run was started


def test_a_run_that_collapsed_and_recovered_is_marked_and_never_the_best_model(tmp_path):
    from nnbackend.reproduce import _results, best_by_validation, chance_spell, render_report

    runs = {run.key: run for run in plan([4], paper.FULL, tmp_path)}
    names = list("0123456789")
    history = {"epoch": [1, 2, 3, 4, 5, 6], "loss": [0.5, 3.5, 3.5, 3.4, 0.9, 0.3],
               "accuracy": [0.3, 0.1, 0.1, 0.11, 0.6, 0.7], "val_epoch": [2, 4, 6], "val_accuracy": [0.1, 0.1, 0.77]}
    for key in runs:
        runs[key].folder.mkdir(parents=True)
        (runs[key].folder / "history.json").write_text(json.dumps(history))
        runs[key].metrics = {"final": {"val_accuracy": 0.77, "val_loss": 0.1, "val_epoch": 6}, "epochs_run": 6,
                             "diverged_epoch": None, "wall_time_s": 1.0,
                             "test": {"accuracy": 0.7, "samples": 10, "report": {
                                 "class_names": names, "confusion": np.eye(10, dtype=int).tolist()}}}
    collapsed = runs["fashion-mnist-gd-lr0.5-512"]
    assert chance_spell(collapsed) == (2, [2, 4])
    context = {"settings": paper.FULL, "backend": "numpy", "tables": [4], "machine": {
        "platform": "p", "processor": "x", "cpu_count": 2, "python": "3", "numpy": "2"},
        "invocations": [{"wall_time_s": 2.0, "trained": 0, "jobs": 1}]}
    report = render_report(list(runs.values()), context)
    assert ("**ours: collapsed, then recovered**: training accuracy at chance level from epoch 2, validation "
            "accuracy at chance level at the evaluations of epochs 2 to 4; val acc 0.7700 at epoch 6") in report
    assert "did not diverge" not in report
    entry = next(r for r in _results(list(runs.values()), context)["runs"] if r["key"] == collapsed.key)
    assert entry["ours"]["at_chance_evaluations"] == [2, 4]
    # A run that starts slowly from chance level did not collapse; nor does an unreadable history say so.
    slow = dict(history, accuracy=[0.1, 0.12, 0.2, 0.4, 0.6, 0.7], val_accuracy=[0.12, 0.3, 0.77])
    (collapsed.folder / "history.json").write_text(json.dumps(slow))
    assert chance_spell(collapsed) is None
    (collapsed.folder / "history.json").write_text("[]")
    assert chance_spell(collapsed) is None
    (collapsed.folder / "history.json").write_text(json.dumps(history))
    # A run that diverged is never "the model a user would pick", whatever its last validation accuracy.
    collapsed.metrics = dict(collapsed.metrics, diverged_epoch=5, final=dict(collapsed.metrics["final"], val_accuracy=0.99))
    assert best_by_validation(runs.values(), "fashion-mnist") is not collapsed
    assert chance_spell(collapsed) is None


def test_the_cnn_table_says_whether_each_run_reached_its_target(tmp_path):
    from nnbackend.reproduce import render_report

    runs = {run.key: run for run in plan([9], paper.FULL, tmp_path)}
    for key, accuracy in (("mnist-cnn-adam-lr0.001", 0.9919), ("fashion-mnist-cnn-adam-lr0.001", 0.9050)):
        runs[key].metrics = {"final": {"val_accuracy": accuracy, "val_loss": 0.1, "val_epoch": 10}, "epochs_run": 10,
                             "diverged_epoch": None, "wall_time_s": 400.0,
                             "test": {"accuracy": accuracy, "weighted": {"f1": accuracy}, "samples": 7000,
                                      "report": {"class_names": list("0123456789"),
                                                 "confusion": np.eye(10, dtype=int).tolist()}}}
    context = {"settings": paper.FULL, "backend": "numpy", "tables": [9], "machine": {
        "platform": "p", "processor": "x", "cpu_count": 2, "python": "3", "numpy": "2"},
        "invocations": [{"wall_time_s": 800.0, "trained": 2, "jobs": 2}]}
    report = render_report(list(runs.values()), context)
    assert "| mnist | 0.970 | 0.9919 | 0.9919 (reached) | 0.990 | 0.9919 | 10 |" in report
    assert "| fashion-mnist | 0.896 | 0.9050 | 0.9050 (**missed**) | 0.910 | 0.9050 | 10 |" in report
    reduced = render_report(list(runs.values()), dict(context, settings=dataclasses.replace(paper.FULL, epochs=3)))
    assert "(reached)" not in reduced and "(**missed**)" not in reduced
    assert "these reduced runs are not compared with it" in reduced


def test_reduced_grid_settings_never_lengthen_the_cnn_recipe(tmp_path):
    from nnbackend.reproduce import table_settings

    cnn = paper.BEYOND[9]
    assert table_settings(9, dataclasses.replace(paper.FULL, epochs=100)).epochs == cnn.full.epochs
    assert table_settings(9, dataclasses.replace(paper.QUICK, epochs=20)).epochs == cnn.quick.epochs
    assert table_settings(9, dataclasses.replace(paper.FULL, epochs=3)).epochs == 3
    assert table_settings(9, dataclasses.replace(paper.FULL, epochs=3, eval_every=50)).eval_every == 3


def test_the_papers_distance_from_a_seed_study_counts_both_test_sets():
    from nnbackend.reproduce import paper_distance

    stats = {"n": 5, "mean": 0.8889, "sd": 0.0029}
    # Training seeds share our test set: sd^2 (1 + 1/5) + boot^2 (1 + 7000 / 7000).
    expected = (0.8996 - 0.8889) / np.sqrt(0.0029**2 * 1.2 + 0.0037**2 * 2)
    assert paper_distance(0.8996, stats, "seed", 0.0037, 7000, 7000) == pytest.approx(expected)
    # Split seeds hold a test set each: only the paper's smaller test set adds.
    assert paper_distance(0.8996, stats, "split", 0.0037, 7000, 7000) == pytest.approx(0.0107 / (0.0029 * 1.2**0.5))
    assert paper_distance(0.8996, stats, "split", 0.0037, 7000, 4200) == pytest.approx(
        0.0107 / np.sqrt(0.0029**2 * 1.2 + 0.0037**2 * (7000 / 4200 - 1)))
    assert paper_distance(0.8996, dict(stats, n=1), "seed", 0.0037, 7000, 7000) is None


# -- backends and parity ------------------------------------------------------------------------------
def test_backends_lists_every_backend_with_install_hints():
    code, text = run_cli("backends")
    assert code == 0
    for name in nb.backend.BACKEND_NAMES:
        assert name in text
    assert "auto picks: " in text
    assert f"compiled kernels on NumPy: {nb.fused.describe()}" in text
    if not cupy_usable():
        assert 'pip install "nnbackend[cuda12]"' in text


def test_parity_passes_and_writes_one_json_entry_per_cell(tmp_path):
    pytest.importorskip("torch")
    code, text = run_cli("parity", "--backends", "numpy,array_api_strict,torch", "--dtypes", "float64",
                         "--json", tmp_path / "parity.json", "--markdown", tmp_path / "parity.md")
    assert code == 0, text
    cells = json.loads((tmp_path / "parity.json").read_text())["cells"]
    keys = {(c["case"], c["target"]) for c in cells}
    expected = {(case.name, f"{b}/float64") for case in parity.CASES for b in ("numpy", "array_api_strict", "torch")}
    assert len(cells) == len(expected) and keys == expected
    assert all(c["passed"] for c in cells)
    assert f"{len(expected)} cells, all passed" in text
    assert "torch/float64" in text and "layer:Dense" in text and "python " in text
    assert "| component |" in (tmp_path / "parity.md").read_text()


def _fewer_cases(monkeypatch, *names: str) -> None:
    monkeypatch.setattr(parity, "CASES", [c for c in parity.CASES if c.name in names])


def test_parity_fails_and_names_the_component_with_a_planted_defect(monkeypatch):
    tanh = next(c for c in parity.CASES if c.name == "layer:Tanh")

    def broken(backend):
        out = tanh.run(backend)
        if backend.name == "array_api_strict":  # a defect on one backend, not in the numpy reference
            out["forward"] = out["forward"] * (1 + 1e-3)
        return out

    monkeypatch.setattr(parity, "CASES", [dataclasses.replace(tanh, run=broken),
                                          next(c for c in parity.CASES if c.name == "layer:ReLU")])
    code, text = run_cli("parity", "--backends", "numpy,array_api_strict", "--dtypes", "float64")
    assert code == 1
    assert "1 of 4 failed: layer:Tanh on array_api_strict/float64" in text
    # As it runs (what a run cut short by a timeout still shows): each failed cell, then each target's tally.
    assert "  numpy/float64: 2 cells, all passed" in text
    assert "    FAILED layer:Tanh: relative error 0.001 in forward" in text
    assert "  array_api_strict/float64: 2 cells, 1 FAILED" in text


def test_a_case_that_raises_on_one_backend_fails_only_its_cell(monkeypatch, tmp_path):
    tanh = next(c for c in parity.CASES if c.name == "layer:Tanh")

    def raising(backend):
        if backend.name == "array_api_strict":
            raise TypeError("an operation this library lacks")
        return tanh.run(backend)

    monkeypatch.setattr(parity, "CASES", [dataclasses.replace(tanh, run=raising),
                                          next(c for c in parity.CASES if c.name == "layer:ReLU")])
    code, text = run_cli("parity", "--backends", "numpy,array_api_strict", "--dtypes", "float64",
                         "--json", tmp_path / "parity.json")
    assert code == 1
    assert "1 of 4 failed: layer:Tanh on array_api_strict/float64" in text
    cells = json.loads((tmp_path / "parity.json").read_text())["cells"]
    failed = [c for c in cells if not c["passed"]]
    assert len(failed) == 1 and "raised TypeError: an operation this library lacks" in failed[0]["worst_output"]


def test_parity_reports_an_uninstalled_backend_with_its_install_hint(monkeypatch, capsys):
    if cupy_usable():
        pytest.skip("cupy is usable here")
    _fewer_cases(monkeypatch, "layer:ReLU")
    code, text = run_cli("parity", "--dtypes", "float64")  # every backend: unusable ones are skipped
    assert code == 0, text
    assert "cupy/float64" in text and 'pip install "nnbackend[cuda12]"' in text
    code, text = run_cli("parity", "--backends", "numpy,cupy", "--dtypes", "float64")  # asked for by name
    assert code == 1
    assert 'pip install "nnbackend[cuda12]"' in text
    assert "requested backend(s) not usable here: cupy" in capsys.readouterr().err


# -- user mistakes ------------------------------------------------------------------------------------
def _incomplete_data_dir(tmp_path: Path) -> Path:
    (tmp_path / "mnist").mkdir(parents=True)
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(b"\0")
    return tmp_path


MISTAKES = {
    "no command": ([], 2),
    "unknown command": (["frobnicate"], 2),
    "unknown option": (["train", "--learning-rate", "0.1"], 2),
    "negative lr": (["train", "--lr", "-1"], 2),
    "lr not a number": (["train", "--lr", "fast"], 2),
    "batch size 0": (["train", "--batch-size", "0"], 2),
    "max rows not a number": (["train", "--max-rows", "many"], 2),
    "zero epochs": (["train", "--epochs", "0"], 2),
    "bad layers": (["train", "--layers", "512,x"], 2),
    "unknown optimizer": (["train", "--optimizer", "lbfgs"], 2),
    "unknown backend": (["train", "--backend", "tpu"], 2),
    "unknown data set": (["train", "--data", "cifar10"], 2),
    "option of another optimizer": (["train", "--optimizer", "gd", "--betas", "0.9,0.99"], 2),
    "min-delta alone": (["train", "--min-delta", "0.1"], 2),
    "momentum out of range": (["train", "--optimizer", "gd", "--momentum", "1.5", "--out", "{tmp}/run"], 2),
    "betas not a pair": (["train", "--betas", "0.9", "--out", "{tmp}/run"], 2),
    "negative seed": (["train", "--seed", "-1"], 2),
    "empty layer size": (["train", "--layers", "12,,3"], 2),
    "output folder is a file": (["train", "--out", "{tmp}/junk.npz"], 2),
    "output folder inside a file": (["evaluate", "{tmp}/junk.npz", "--out", "{tmp}/junk.npz/eval"], 2),
    "missing data folder": (["train", "--data-dir", "{tmp}/nowhere", "--out", "{tmp}/run"], 1),
    "incomplete data folder": (["train", "--data", "mnist", "--data-dir", "{data}", "--out", "{tmp}/run"], 1),
    "missing run folder": (["evaluate", "{tmp}/no-such-run"], 1),
    "not a model file": (["evaluate", "{tmp}/junk.npz", "--data", "mnist-sample"], 1),
    "unknown table": (["reproduce", "--tables", "10"], 2),
    "unknown parity backend": (["parity", "--backends", "numpy,tpu"], 2),
    "unknown parity dtype": (["parity", "--dtypes", "float16"], 2),
    "cnn with an activation": (["train", "--model", "cnn", "--activation", "tanh"], 2),
    "dampening without momentum": (["train", "--optimizer", "gd", "--dampening", "0.5"], 2),
    "verbose and quiet": (["train", "-v", "-q"], 2),
    "empty output folder": (["train", "--out", ""], 2),
    "parity report into a folder": (["parity", "--json", "{tmp}"], 2),
    "layers beyond memory": (["train", "--layers", "99999999999", "--out", "{tmp}/run"], 1),
    "subset beyond the split in a grid": (["reproduce", "--tables", "1", "--subset", "100000,10,10", "--out", "{tmp}/grid"], 1),
}


@pytest.mark.parametrize("argv, code", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_user_mistake_is_one_line_on_stderr(argv, code, tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    data = _incomplete_data_dir(tmp_path / "data-root") if "{data}" in argv else None
    argv = [a.format(tmp=tmp_path, data=data) for a in argv]
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnbackend: error: "), captured.err
    assert "Traceback" not in captured.out + captured.err


def test_an_unusable_backend_names_the_install(tmp_path, capsys):
    if cupy_usable():
        pytest.skip("cupy is usable here")
    assert cli.main(["train", "--backend", "cupy", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnbackend: error: ") and "nnbackend[cuda12]" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_backend_in_the_environment_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("NNBACKEND_BACKEND", "tpu")
    assert cli.main(["train", "--epochs", "1"]) == 2
    assert "$NNBACKEND_BACKEND: unknown backend 'tpu'" in capsys.readouterr().err


def test_an_unknown_option_points_to_the_commands_help(capsys):
    assert cli.main(["train", "--bogus"]) == 2
    assert "(see 'nnbackend train --help')" in capsys.readouterr().err


def _copy_run(trained, tmp_path) -> Path:
    out, _ = trained
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in RUN_FILES:
        (copy / name).write_bytes((out / name).read_bytes())
    return copy


@pytest.mark.parametrize("content", ["{", "[]", "{}", '{"config": {"dtype": "float16"}}', '{"config": {"data": 3}}',
                                     '{"config": {"subset": [1, 2]}}', '{"config": {"layers": 5}}'])
def test_a_damaged_run_record_is_named_in_one_line(trained, tmp_path, capsys, content):
    run = _copy_run(trained, tmp_path)
    (run / "config.json").write_text(content)
    assert cli.main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nnbackend: error: {run / 'config.json'}") and len(err.strip().splitlines()) == 1, err


def test_evaluate_does_not_overwrite_a_run_folders_metrics(trained, tmp_path, capsys):
    run = _copy_run(trained, tmp_path)
    before = (run / "metrics.json").read_bytes()
    assert cli.main(["evaluate", str(run), "--out", str(run)]) == 1
    assert f"{run} already holds config.json" in capsys.readouterr().err
    assert (run / "metrics.json").read_bytes() == before
    # An unfinished run must not gain a metrics.json that makes it look finished.
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    assert cli.main(["evaluate", str(run), "--out", str(unfinished)]) == 1
    assert not (unfinished / "metrics.json").exists()
    # A folder that only holds train's default runs/ is free.
    (tmp_path / "here" / "runs").mkdir(parents=True)
    assert cli.main(["evaluate", str(run), "--out", str(tmp_path / "here")]) == 0


@pytest.mark.parametrize("command", [
    ["train", "--epochs", "1"],
    ["reproduce", "--tables", "1", "--subset", "10,10,10", "--epochs", "1", "--jobs", "1"],
], ids=["train", "reproduce"])
def test_no_command_writes_over_another_commands_folder(trained, tmp_path, capsys, command):
    evaluation, run = tmp_path / "evaluation", _copy_run(trained, tmp_path)
    assert cli.main(["evaluate", str(run), "--out", str(evaluation)]) == 0
    for folder in (evaluation, run):
        before = {path.name: path.read_bytes() for path in folder.iterdir()}
        assert cli.main([*command, "--out", str(folder)]) == 1
        err = capsys.readouterr().err
        assert f"{folder} already holds" in err, err
        assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_folder_that_cannot_be_written_is_named_before_any_work(tmp_path, monkeypatch, capsys):
    import tempfile

    from nnbackend.commands import options, train

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(options.tempfile, "TemporaryDirectory", refuse)
    monkeypatch.setattr(options.tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(train, "train_run", lambda *a, **k: pytest.fail("trained before checking the folder"))
    for argv in (["train", "--out", str(tmp_path / "new" / "run")],
                 ["parity", "--backends", "numpy", "--json", str(tmp_path / "p.json")]):
        assert cli.main(argv) == 1
        assert capsys.readouterr().err.strip() == (
            f"nnbackend: error: cannot write into {Path(argv[-1]).parent if argv[0] == 'parity' else argv[-1]}: "
            "Permission denied; pass another folder")
    assert not (tmp_path / "new").exists()
    assert tempfile.TemporaryDirectory is refuse  # (the patch was in place)


def test_an_os_error_about_the_users_files_is_one_line(monkeypatch, tmp_path, capsys):
    from nnbackend.commands import train

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "model.npz"))

    monkeypatch.setattr(train, "train_run", full_disk)
    assert cli.main(["train", "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"nnbackend: error: {tmp_path / 'run' / 'model.npz'}: No space left on device")


def test_train_without_out_picks_a_new_folder_under_runs(tmp_path, monkeypatch):
    from nnbackend.commands import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train.time, "strftime", lambda fmt: "20261129-120000")  # two runs in the same second
    for _ in range(2):
        code, text = run_cli("train", "--epochs", "1", "--subset", "300,100,100", "--backend", "numpy", "--quiet")
        assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "20261129-120000-mnist-sample-adam", "20261129-120000-mnist-sample-adam-2"]
    assert all((p / "metrics.json").is_file() for p in (tmp_path / "runs").iterdir())


def test_train_takes_subset_all_and_expands_a_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    code, text = run_cli("train", "--epochs", "1", "--subset", "all", "--backend", "numpy", "--quiet",
                         "--out", "~/run")
    assert code == 0, text
    assert (tmp_path / "run" / "metrics.json").is_file() and not Path("~").exists()
    assert "subset" not in json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]


def test_evaluate_a_model_beside_a_damaged_record_with_the_data_named(trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    (run / "config.json").write_text("{")
    code, text = run_cli("evaluate", run / "model.npz", "--data", "mnist-sample")
    assert code == 0, text
    assert "cannot be read (damaged); evaluating with the options given" in text


def test_evaluate_notes_a_model_trained_on_other_data(trained, tmp_path):
    root = os.environ.get("NNBACKEND_DATA")  # conftest points it at ../shared/data when that exists
    if not root or not (Path(root) / "fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST files not found: set NNBACKEND_DATA to a folder holding fashion-mnist/")
    code, text = run_cli("evaluate", trained[0], "--data", "fashion-mnist", "--subset", "100,100,100")
    assert code == 0, text
    assert "note: this model was trained on mnist-sample; these are fashion-mnist images" in text


def test_saved_models_are_as_readable_as_the_other_run_files(trained):
    out, _ = trained
    mode = (out / "config.json").stat().st_mode & 0o777
    assert (out / "model.npz").stat().st_mode & 0o777 == mode
    assert (out / "checkpoint.npz").stat().st_mode & 0o777 == mode


def test_evaluate_says_when_the_recorded_subset_applies_and_all_lifts_it(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "--epochs", "1", "--subset", "500,100,100", "--backend", "numpy", "--quiet",
                   "--out", out)[0] == 0
    code, text = run_cli("evaluate", out)
    assert code == 0 and "recorded subset 500,100,100 applies" in text and "(100 samples)" in text
    code, text = run_cli("evaluate", out, "--subset", "all")
    whole = len(nb.data.paper_split("mnist-sample").y_test)
    assert code == 0 and whole > 100 and f"({whole:,} samples)" in text


def test_split_seed_reshuffles_the_split_and_evaluate_follows_the_recorded_one(tmp_path):
    out = tmp_path / "run"
    code, text = run_cli("train", "--epochs", "1", "--subset", "300,100,100", "--split-seed", "7",
                         "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0, text
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["split_seed"] == 7
    assert record["command"][record["command"].index("--split-seed") + 1] == "7"
    tested = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    code, text = run_cli("evaluate", out)
    assert code == 0 and f"test: accuracy {tested:.4f}" in text and "optimistic" not in text
    # The pool is the sample's 4,000 train then 1,000 test images; the paper split's test part is the first
    # 10% of the shuffled pool, its train part the next 80%.
    trained = np.random.default_rng(7).permutation(5000)[500:4500][:300]
    tested = np.random.default_rng(42).permutation(5000)[:500][:100]
    seen = len(set(trained) & set(tested))
    assert seen > 0
    code, text = run_cli("evaluate", out, "--split-seed", "42")
    assert code == 0 and (f"note: {seen} of these 100 test images were training images of this model (it trained "
                          "on the paper split shuffled with seed 7): the accuracy is optimistic") in text
    official = set(range(4000, 4100)) & set(trained)  # the official split tests on the first 100 official test images
    code, text = run_cli("evaluate", out, "--split", "official")
    assert code == 0 and f"note: {len(official)} of these 100 test images were training images" in text


def test_official_split_seeds_share_the_official_test_set_and_warn_of_nothing(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "--epochs", "1", "--split", "official", "--split-seed", "7", "--subset", "300,100,100",
                   "--backend", "numpy", "--quiet", "--out", out)[0] == 0
    code, text = run_cli("evaluate", out, "--split-seed", "42")
    assert code == 0 and "optimistic" not in text
    tested = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    assert f"test: accuracy {tested:.4f}" in text
    code, text = run_cli("evaluate", out, "--split", "paper")  # its test part pools official train images
    assert code == 0 and "training images of this model (it trained on the official split" in text


def _unfinished_run(tmp_path) -> Path:
    """A run folder as a run leaves it when stopped before its first checkpoint: no metrics, model or
    checkpoint."""
    out = tmp_path / "run"
    assert run_cli("train", "--epochs", "1", "--subset", "300,100,100", "--backend", "numpy", "--quiet",
                   "--out", out)[0] == 0
    for name in ("metrics.json", "model.npz", "checkpoint.npz"):
        (out / name).unlink()
    return out


def test_resume_without_a_checkpoint_says_it_starts_again(tmp_path):
    out = _unfinished_run(tmp_path)
    code, text = run_cli("train", "--out", out, "--resume", "--epochs", "7", "--quiet")
    assert code == 0, text
    assert "starting it again from epoch 1" in text and "ignoring --epochs" in text
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1  # the recorded setting


def test_a_diverged_run_report_says_which_weights_were_tested(tmp_path):
    out = tmp_path / "run"
    code, text = run_cli("train", "--activation", "linear", "--optimizer", "gd", "--lr", "1e30", "--epochs", "3",
                         "--subset", "500,100,100", "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0 and "the run diverged at epoch 1" in text
    report = (out / "report.md").read_text()
    assert "**diverged at epoch 1**" in report and "| validation | not evaluated | - | - |" in report
    assert "| test (the weights from before epoch 1) |" in report and "None" not in report


def test_an_early_stopped_run_report_shows_the_kept_epoch(tmp_path):
    out = tmp_path / "run"
    code, _ = run_cli("train", "--epochs", "40", "--early-stopping", "2", "--lr", "0.01", "--subset", "1000,300,300",
                      "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["best_epoch"]
    report = (out / "report.md").read_text()
    assert f"kept the weights of epoch {best}" in report
    assert f"| validation, best epoch (kept) | {best} |" in report
    assert "lr 0.001" not in report and "lr 0.01" in report


def test_a_run_folder_rerenders_its_report_and_figures_from_its_files(trained, tmp_path):
    from nnbackend.runs import rerender

    run = _copy_run(trained, tmp_path)
    original = (run / "report.md").read_text()
    for name in ("report.md", "curves.png", "confusion.png"):
        (run / name).unlink()
    rerender(run, log=None)
    assert (run / "report.md").read_text() == original
    for name in ("curves.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == PNG_SIGNATURE


def test_report_figures_switch_to_scientific_notation_for_huge_values():
    from nnbackend.runs import _fmt

    assert _fmt(935372440333155585137382829064192.0) == "9.3537e+32"
    assert _fmt(0.12345) == "0.1235" and _fmt(None) == "-"


def test_python_dash_m_nnbackend_runs_the_command_line():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    ok = subprocess.run([sys.executable, "-m", "nnbackend", "--help"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "reproduce" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "nnbackend", "train", "--batch-size", "0"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("nnbackend: error: argument --batch-size")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("console", [{}, {"PYTHONIOENCODING": "cp1252"}], ids=["ascii-locale", "cp1252-console"])
def test_a_non_ascii_run_folder_works_under_an_ascii_locale(tmp_path, console):
    # report.md holds the command line; it is written as UTF-8 whatever the locale says. A console that
    # cannot show the path (cp1252, as on Windows) must not fail the run after its files were written.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", **console}
    out = tmp_path / "Müller-Дмитрий"
    done = subprocess.run([sys.executable, "-m", "nnbackend", "train", "--epochs", "1", "--subset", "300,100,100",
                           "--backend", "numpy", "--quiet", "--out", str(out)], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert "Müller-Дмитрий" in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "metrics.json").is_file()


def test_a_run_folder_never_writes_through_a_planted_link(tmp_path):
    # Someone else's run folder, resumed: its files are replaced, never followed to files elsewhere.
    out = _unfinished_run(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "history.csv").unlink()
    (out / "report.md").unlink()
    try:
        (out / "history.csv").symlink_to(victim)
        (out / "report.md").symlink_to(tmp_path / "created-elsewhere.md")  # dangling
    except OSError:
        pytest.skip("no symbolic links here")
    assert run_cli("train", "--out", out, "--resume", "--quiet")[0] == 0
    assert victim.read_text() == "keep me" and not (tmp_path / "created-elsewhere.md").exists()
    assert not (out / "history.csv").is_symlink() and (out / "history.csv").read_text().startswith("epoch,")


def test_buffered_output_to_a_closed_pipe_ends_quietly():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.Popen([sys.executable, "-m", "nnbackend", "backends"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # nobody reads: the first flush meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    # `nnbackend train | head`: no traceback when the pipe closes.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "nnbackend", "parity", "--backends", "numpy"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()  # the reader is gone; the command still has lines to print
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_max_rows_slices_a_full_batch_into_the_same_step(tmp_path):
    losses = {}
    for rows in ("100", "none"):
        out = tmp_path / rows
        code, text = run_cli("train", "--epochs", "2", "--subset", "300,100,100", "--batch-size", "full",
                             "--max-rows", rows, "--dtype", "float64", "--backend", "numpy", "--quiet", "--out", out)
        assert code == 0, text
        assert json.loads((out / "config.json").read_text())["config"]["max_rows"] == (100 if rows == "100" else None)
        losses[rows] = json.loads((out / "history.json").read_text())["loss"]
    np.testing.assert_allclose(losses["100"], losses["none"], rtol=1e-12)


def test_train_a_cnn_and_evaluate_it(tmp_path):
    out = tmp_path / "cnn"
    code, text = run_cli("train", "--model", "cnn", "--epochs", "2", "--subset", "300,100,100", "--batch-size", "50",
                         "--lr-factor", "0.5", "--backend", "numpy", "--quiet", "--out", out)
    assert code == 0, text
    assert "Conv2D" in text and "MaxPool2D" in text and "BatchNorm" in text
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["model"] == "cnn" and record["model"]["input_shape"] == [1, 28, 28]
    assert record["optimizer"]["lr"] == 0.001
    assert nb.load_model(out / "checkpoint.npz").input_shape == (1, 28, 28)
    meta, _ = nb.io.read_file(out / "checkpoint.npz", kind="checkpoint")
    assert meta["optimizer"]["config"]["lr"] == pytest.approx(0.001 * 0.5**2)  # --lr-factor after each epoch
    metrics = json.loads((out / "metrics.json").read_text())
    code, text = run_cli("evaluate", out)
    assert code == 0 and f"{metrics['test']['accuracy']:.4f}" in text


def test_every_grid_run_records_the_train_command_that_repeats_it(tmp_path):
    from nnbackend.commands.train import config_from_args
    from nnbackend.runs import command_for

    configs = [run.config for run in plan(sorted({*paper.TABLES, *paper.CLASS_REPORTS, *paper.BEYOND}),
                                          paper.FULL, tmp_path)]
    configs.append(dataclasses.replace(configs[0], optimizer="gd", hyperparameters={"momentum": 0.9, "nesterov": True},
                                       layers=(), early_stopping=3, min_delta=1e-4, max_rows=None, dtype="float64",
                                       seed=7, subset=(100, 20, 20), split="official", split_seed=5))
    for config in configs:
        argv = command_for(config)
        args = cli.build_parser().parse_args(argv[1:])
        args.argv = argv[1:]
        repeated = config_from_args(args)
        if config.model == "cnn":  # the cnn's layers are fixed: its config's layers and activation are unused
            repeated = dataclasses.replace(repeated, layers=config.layers, activation=config.activation)
        assert repeated == config, argv


def test_the_cnn_table_trains_with_its_own_recipe(tmp_path):
    full = {run.key: run for run in plan([9], paper.FULL, tmp_path)}
    mnist = full["mnist-cnn-adam-lr0.001"].config
    assert (mnist.model, mnist.epochs, mnist.batch_size, mnist.lr_factor, mnist.loss) == (
        "cnn", 10, 128, 0.8, "cross_entropy")
    quick = plan([9], dataclasses.replace(paper.QUICK, epochs=1), tmp_path)[0].config
    assert quick.epochs == 1 and quick.subset == paper.CNN_QUICK.subset
