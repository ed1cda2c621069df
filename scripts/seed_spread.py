"""How much a class-report run of the grid moves with the seeds: is the paper's number inside that spread?

Trains the run behind table 7 or 8 (the paper's setting: full batch, 260 epochs, its loss) again with
other training seeds (initial weights and batch order) on the paper's split (seed 42), and with training
seed 0 on other split seeds (which 7,000 images are the test part). Writes ``spread.md`` and
``spread.json`` beside the run folders; finished runs are not trained again, so an interrupted study
resumes.

Run from the repository root, e.g. (about an hour on 2 cores for table 8)::

    NNBACKEND_DATA=../shared/data PYTHONPATH=. python scripts/seed_spread.py --table 8 \\
        --seeds 0,1,2,3,4 --split-seeds 0,1,2,3 --jobs 2 --out docs/reproduction/spread
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnbackend.commands.options import positive_int
from nnbackend.data import load
from nnbackend.files import write_text
from nnbackend.metrics import bootstrap_values
from nnbackend.paper import CLASS_REPORTS, FULL, QUICK, paper_test_images
from nnbackend.reproduce import GridRun, paper_distance, plan, progress_line, train_runs, unfinished
from nnbackend.runs import write_json

PAPER_SPLIT_SEED = 42


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds such as 0,1,2, got {text!r}") from None
    if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
    return seeds


def study(table: int, seeds: list[int], split_seeds: list[int], out: Path, *, quick: bool = False,
          epochs: int | None = None) -> list[tuple[str, GridRun]]:
    """The runs of the study as ``(group, run)``: group ``"seed"`` varies the training seed on the paper's
    split, group ``"split"`` the split seed with training seed 0."""
    settings = QUICK if quick else FULL
    if epochs is not None:
        settings = dataclasses.replace(settings, epochs=epochs, eval_every=min(settings.eval_every, epochs))
    (base,) = plan([table], settings, out)
    wanted = [("seed", seed, PAPER_SPLIT_SEED) for seed in seeds]
    wanted += [("split", 0, split_seed) for split_seed in split_seeds if split_seed != PAPER_SPLIT_SEED]
    runs = []
    for group, seed, split_seed in wanted:
        config = dataclasses.replace(base.config, seed=seed, split_seed=split_seed)
        folder = out / "runs" / f"{base.key}-seed{seed}-split{split_seed}"
        runs.append((group, dataclasses.replace(base, config=config, folder=folder, tables=[table])))
    return runs


def _figures(run: GridRun) -> dict[str, Any]:
    m = run.metrics or {}
    weighted = m.get("test", {}).get("weighted", {})
    return {"seed": run.config.seed, "split_seed": run.config.split_seed, "status": run.status,
            "folder": run.folder.name, "diverged_epoch": m.get("diverged_epoch"),
            "val_accuracy": m.get("final", {}).get("val_accuracy"), "test_accuracy": m.get("test", {}).get("accuracy"),
            "test_weighted_precision": weighted.get("precision"), "test_weighted_recall": weighted.get("recall"),
            "test_weighted_f1": weighted.get("f1")}


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"n": len(values), "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "min": min(values), "max": max(values)}


def _test_set(run: GridRun) -> tuple[float, int] | None:
    """The bootstrap SD of ``run``'s test weighted F1 and its number of test images, or None."""
    if not run.metrics:
        return None
    confusion = np.asarray(run.metrics["test"]["report"]["confusion"], dtype=np.int64)
    return float(np.std(bootstrap_values(confusion, metric="f1", average="weighted"), ddof=1)), int(confusion.sum())


def summarise(table: int, runs: list[tuple[str, GridRun]], wall_time_s: float, quick: bool) -> dict[str, Any]:
    spec = CLASS_REPORTS[table]
    paper_f1 = spec.weighted[2]
    rows = [dict(_figures(run), group=group) for group, run in runs]
    test_set = _test_set(runs[0][1])  # the first run: training seed 0 (or the first given) on the paper's split
    groups = {}
    members = {"seed": lambda r: r["split_seed"] == PAPER_SPLIT_SEED, "split": lambda r: r["seed"] == 0}
    for group, member in members.items():  # the run with training seed 0 on the paper's split is in both
        mine = [r for r in rows if member(r) and r["test_weighted_f1"] is not None]
        groups[group] = {key: _stats([r[key] for r in mine]) for key in ("val_accuracy", "test_accuracy", "test_weighted_f1")}
        f1 = groups[group]["test_weighted_f1"]
        groups[group]["paper_distance"] = (
            paper_distance(paper_f1, f1, group, test_set[0], test_set[1], paper_test_images(spec.run.data))
            if f1 is not None and test_set is not None else None)
    return {"table": table, "run": spec.run.key, "quick": quick, "paper_weighted_f1": paper_f1,
            "paper_val_accuracy": spec.run.paper.val_accuracy if spec.run.paper else None,
            "paper_test_images": paper_test_images(spec.run.data),
            "test_images": test_set and test_set[1], "bootstrap_sd": test_set and test_set[0],
            "config": runs[0][1].config.to_dict() | {"seed": None, "split_seed": None},
            "wall_time_s": wall_time_s, "runs_time_s": sum((run.metrics or {}).get("wall_time_s") or 0 for _, run in runs),
            "runs": rows, "groups": groups}


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(summary: dict[str, Any]) -> str:
    paper_f1 = summary["paper_weighted_f1"]
    lines = [f"# Table {summary['table']}: how {summary['run']} moves with the seeds", ""]
    if summary["quick"]:
        lines += ["**Reduced study** (--quick or --epochs): checks the script, says nothing about the paper.", ""]
    lines += [
        "The run behind the table, in the paper's setting, trained again with other training seeds (initial "
        "weights, batch order) on the paper's split (seed 42), and with training seed 0 on other split seeds "
        "(a different 7,000 test images each). Written by `scripts/seed_spread.py`; "
        f"the runs' own times add up to {summary['runs_time_s'] / 60:.0f} min (this invocation: "
        f"{summary['wall_time_s'] / 60:.0f} min).", "",
        "| group | training seed | split seed | val accuracy | test accuracy | test weighted F1 | run |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in summary["runs"]:
        label = "training seed" if r["group"] == "seed" else "split seed"
        status = "" if r["status"] in ("done", "skipped") else f" ({r['status']})"
        lines.append(f"| {label} | {r['seed']} | {r['split_seed']} | {_n(r['val_accuracy'])} | "
                     f"{_n(r['test_accuracy'])} | {_n(r['test_weighted_f1'])} | [{r['folder']}](runs/{r['folder']}/report.md){status} |")
    lines += ["", f"| test weighted F1 | runs | mean | SD | min | max | paper ({paper_f1:.4f}) |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for group, label in (("seed", "training seeds, paper split"), ("split", "split seeds, training seed 0")):
        s = summary["groups"][group]["test_weighted_f1"]
        if s is None:
            continue
        distance = summary["groups"][group].get("paper_distance")
        where = "-" if distance is None else f"{distance:+.1f} SD of the difference"
        lines.append(f"| {label} | {s['n']} | {s['mean']:.4f} | {s['sd']:.4f} | {s['min']:.4f} | {s['max']:.4f} | {where} |")
    if summary.get("bootstrap_sd") is not None:
        lines += ["", "The last column: how far the paper's number lies from our mean, in standard deviations of that "
                  "difference (`nnbackend.reproduce.paper_distance`): the seeds' spread, SD^2 (1 + 1/n), plus the test "
                  f"images' sampling (bootstrap SD {summary['bootstrap_sd']:.4f} on our {summary['test_images']:,} "
                  f"test images; the paper's number comes from {summary['paper_test_images']:,} others): both test "
                  "sets for the training-seed group, whose runs share one test set; only the paper's other size for "
                  "the split-seed group, whose spread already holds a test set each."]
    reached = [r for r in summary["runs"] if r["test_weighted_f1"] is not None and r["test_weighted_f1"] >= paper_f1]
    lines += ["", f"Runs at or above the paper's weighted F1: {len(reached)} of "
              f"{sum(r['test_weighted_f1'] is not None for r in summary['runs'])}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, choices=sorted(CLASS_REPORTS), default=8)
    parser.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4], help="training seeds on the paper's split")
    parser.add_argument("--split-seeds", type=seed_list, default=[0, 1, 2, 3], help="split seeds, with training seed 0")
    parser.add_argument("--jobs", type=positive_int, default=2, help="runs trained at a time, one BLAS thread each")
    parser.add_argument("--quick", action="store_true", help="the grid's quick setting (a subset, few epochs)")
    parser.add_argument("--epochs", type=positive_int, help="override the setting's epochs (for a smoke test)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.seeds and not [s for s in args.split_seeds if s != PAPER_SPLIT_SEED]:
        parser.error("nothing to train: give --seeds or --split-seeds (other than 42)")
    runs = study(args.table, args.seeds, args.split_seeds, args.out, quick=args.quick, epochs=args.epochs)
    load(runs[0][1].config.data)  # find the data once, before any child needs it
    to_train = unfinished([run for _, run in runs])
    started, done = time.perf_counter(), 0
    print(f"{len(runs)} runs, {len(to_train)} to train")

    def finished(run: GridRun) -> None:
        nonlocal done
        done += 1
        print(progress_line(done, len(to_train), run).replace(run.key, run.folder.name, 1), flush=True)

    train_runs(to_train, jobs=min(args.jobs, len(to_train) or 1), on_finished=finished)
    reduced = args.quick or args.epochs is not None  # not the paper's setting: the report must not cite it
    summary = summarise(args.table, runs, time.perf_counter() - started, reduced)
    write_json(args.out / "spread.json", summary)
    write_text(args.out / "spread.md", render(summary))
    print(render(summary))
    return 0 if all(run.status in ("done", "skipped") for _, run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
