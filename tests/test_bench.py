"""The training benchmark runs end to end in a tiny configuration (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nnbackend as nb

REPO = Path(__file__).resolve().parents[1]


def test_bench_train_quick_runs_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(REPO / "bench" / "bench_train.py"), "--quick", "--dataset", "mnist-sample",
           "--n-train", "300", "--rows", "16/64,16/full", "--contenders", "numpy,floor,cupy", "--epochs", "1",
           "--t97", "--t97-row", "16/64", "--target", "0.5", "--t97-max-epochs", "2", "--t97-seeds", "2", "--pause", "0", "--quiet-wait", "0", "--max-rounds", "2",
           "--out", str(out), "--no-readme"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["rows"]) == {"16/64", "16/full"}
    for row in result["rows"].values():
        numpy, floor = row["contenders"]["numpy"], row["contenders"]["floor"]
        assert len(numpy["epoch_times"]) == 2 and numpy["median_s"] > 0 and numpy["peak_rss_mb"] > 0
        assert numpy["ratio_to_floor"] > 0 and floor["products_per_step"] == 5
        assert 0 <= numpy["last_accuracy"] <= 1
        cupy = row["contenders"]["cupy"]
        assert ("median_s" in cupy) == any(i.name == "cupy" and i.usable for i in nb.available_backends())
    t97 = result["time_to_target"]["contenders"]["numpy"]
    assert t97["runs"] == 2 and t97["wall_s"] > 0
    for run in t97["per_seed"]:
        # A run stops at the first epoch at the target, or after the most epochs allowed.
        hits = [epoch for epoch, accuracy in enumerate(run["val_accuracy"], 1) if accuracy >= 0.5]
        assert run["reached"] == bool(hits)
        assert run["epochs"] == (hits[0] if hits else 2) == len(run["val_accuracy"])
    assert t97["reached_runs"] == sum(run["reached"] for run in t97["per_seed"])
    assert "| 16/64 | numpy |" in proc.stdout and "Wall time to 50%" in proc.stdout


def test_a_required_contender_that_cannot_start_fails_the_benchmark(tmp_path):
    import pytest

    if any(info.name == "cupy" and info.usable for info in nb.available_backends()):
        pytest.skip("cupy is usable here")
    logs = tmp_path / "workers"
    cmd = [sys.executable, str(REPO / "bench" / "bench_train.py"), "--quick", "--dataset", "mnist-sample",
           "--n-train", "300", "--rows", "16/64", "--contenders", "numpy,cupy", "--epochs", "1", "--no-t97",
           "--pause", "0", "--quiet-wait", "0", "--max-rounds", "2", "--out", str(tmp_path / "bench.json"),
           "--no-readme", "--worker-logs", str(logs)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path).returncode == 0
    proc = subprocess.run([*cmd, "--require", "numpy,cupy"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "contenders that failed while running: cupy" in proc.stderr, proc.stderr[-2000:]
    assert sorted(path.name for path in logs.iterdir()) == ["cupy-16_64-seed0.err", "numpy-16_64-seed0.err"]
