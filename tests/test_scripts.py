"""The maintenance scripts under scripts/ (other than the sample maker, tested with the data)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seed_spread():
    return _script("seed_spread")


def test_seed_lists_are_distinct_non_negative_integers(seed_spread):
    assert seed_spread.seed_list("0, 1,7") == [0, 1, 7]
    for bad in ("1,1", "-1", "a"):
        with pytest.raises(argparse.ArgumentTypeError):
            seed_spread.seed_list(bad)


@pytest.mark.parametrize("argv, message", [
    (["--seeds=", "--split-seeds=42"], "nothing to train"),
    (["--epochs", "0"], "--epochs: must be a positive integer"),
    (["--jobs", "0"], "--jobs: must be a positive integer"),
])
def test_seed_spread_refuses_bad_options_in_one_line(seed_spread, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        seed_spread.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_seed_spread_trains_each_seed_reports_the_spread_and_resumes(seed_spread, tmp_path, capsys):
    root = os.environ.get("NNBACKEND_DATA")
    if not root or not (Path(root) / "fashion-mnist").is_dir():
        pytest.skip("real Fashion-MNIST files not found: set NNBACKEND_DATA to a folder holding fashion-mnist/")
    out = tmp_path / "spread"
    argv = ["--quick", "--epochs", "2", "--seeds", "0,1", "--split-seeds", "5", "--jobs", "1", "--out", str(out)]
    assert seed_spread.main(argv) == 0
    summary = json.loads((out / "spread.json").read_text())
    assert [(r["seed"], r["split_seed"]) for r in summary["runs"]] == [(0, 42), (1, 42), (0, 5)]
    for row in summary["runs"]:
        metrics = json.loads((out / "runs" / row["folder"] / "metrics.json").read_text())
        assert row["test_weighted_f1"] == metrics["test"]["weighted"]["f1"]
        config = json.loads((out / "runs" / row["folder"] / "config.json").read_text())["config"]
        assert (config["seed"], config["split_seed"], config["data"]) == (row["seed"], row["split_seed"], "fashion-mnist")
    assert len({r["test_weighted_f1"] for r in summary["runs"]}) == 3  # each seed changed the run
    f1 = [r["test_weighted_f1"] for r in summary["runs"]]
    seeds, splits = summary["groups"]["seed"]["test_weighted_f1"], summary["groups"]["split"]["test_weighted_f1"]
    assert seeds["n"] == 2 and seeds["mean"] == pytest.approx((f1[0] + f1[1]) / 2)
    assert splits["n"] == 2 and splits["max"] == max(f1[0], f1[2])  # seed 0 on the paper split is in both
    report = (out / "spread.md").read_text()
    assert "Reduced study" in report and "paper (0.8996)" in report and "[fashion-mnist-adam-lr0.005-512-seed1-split42](runs/fashion-mnist-adam-lr0.005-512-seed1-split42/report.md)" in report
    capsys.readouterr()
    assert seed_spread.main(argv) == 0
    assert "3 runs, 0 to train" in capsys.readouterr().out
