"""Running the paper's grid (:mod:`nnbackend.paper`) and writing its report: ``nnbackend reproduce``.

The grid folder holds ``runs/<key>/`` (one run folder per distinct run, see :mod:`nnbackend.runs`),
``report.md`` (our numbers beside the paper's) and ``results.json``. A run whose folder already holds
metrics.json from the same configuration is not run again, so an interrupted grid resumes where it
stopped. Runs are independent: with ``jobs > 1`` each trains in its own process limited to one BLAS
thread (the thread variables are set in the child's environment, before NumPy is imported).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .backend import get_backend, machine
from .data import load, part_indices
from .metrics import ClassificationReport, bootstrap_values
from .paper import (BEYOND, CLASS_REPORTS, TABLES, BeyondTable, ClassReportSpec, GridSettings, RunSpec, Table,
                    paper_test_images)
from .paper import FULL as GRID_FULL
from .paper import QUICK as GRID_QUICK
from .files import write_text
from .runs import (THREAD_VARIABLES, RunConfig, at_chance, command_for, read_metrics, read_record, train_run,
                   write_json)

__all__ = ["GridRun", "paper_distance", "plan", "reproduce", "render_report", "train_runs", "unfinished"]

Log = Callable[[str], None]


@dataclasses.dataclass
class GridRun:
    """One distinct run of the grid, the tables that use it, and (once known) its outcome."""

    spec: RunSpec
    tables: list[int]
    figures: bool
    config: RunConfig
    folder: Path
    metrics: dict[str, Any] | None = None
    status: str = "pending"  # pending, done, skipped (finished earlier), failed
    error: str = ""

    @property
    def key(self) -> str:
        return self.spec.key


def table_settings(number: int, settings: GridSettings) -> GridSettings:
    """How table ``number``'s runs train: the grid's ``settings``, or a table beyond the paper's own
    recipe (its quick one for a quick grid) with the grid's reductions (epochs, evaluation, subset)."""
    if number not in BEYOND:
        return settings
    table = BEYOND[number]
    base = GRID_QUICK if settings.quick else GRID_FULL
    own = table.quick if settings.quick else table.full
    reduced = {k: getattr(settings, k) for k in ("epochs", "eval_every", "subset")
               if getattr(settings, k) != getattr(base, k)}
    if "epochs" in reduced:  # a reduction never lengthens the table's own recipe
        reduced["epochs"] = min(reduced["epochs"], own.epochs)
    if "eval_every" in reduced:
        reduced["eval_every"] = min(reduced["eval_every"], reduced.get("epochs", own.epochs))
    return dataclasses.replace(own, **reduced)


def _specs(number: int) -> tuple[RunSpec, ...]:
    if number in TABLES:
        return TABLES[number].rows
    if number in BEYOND:
        return BEYOND[number].rows
    return (CLASS_REPORTS[number].run,)


def plan(tables: list[int], settings: GridSettings, out: Path, *, backend: str = "auto",
         dtype: str = "float32", data_dir: str | None = None) -> list[GridRun]:
    """The distinct runs the chosen tables need, in table order; shared runs appear once."""
    runs: dict[str, GridRun] = {}
    for number in tables:
        own = table_settings(number, settings)
        for spec in _specs(number):
            if spec.key not in runs:
                config = RunConfig(
                    data=spec.data, data_dir=data_dir, split="paper", split_seed=42, subset=own.subset,
                    model=spec.model, layers=spec.layers, activation=own.activation, loss=own.loss,
                    optimizer=spec.optimizer, lr=spec.lr, epochs=own.epochs, batch_size=own.batch_size,
                    lr_factor=own.lr_factor, eval_every=own.eval_every, backend=backend, dtype=dtype,
                    seed=own.seed,
                )
                runs[spec.key] = GridRun(spec, [], False, config, out / "runs" / spec.key)
            run = runs[spec.key]
            run.tables.append(number)
            # Every run of a real grid gets its curves and confusion matrix; a quick grid draws only those
            # its report shows (a second per figure adds up over 20 short runs).
            run.figures = run.figures or not settings.quick or number in CLASS_REPORTS
    return list(runs.values())


def _finished(run: GridRun) -> dict[str, Any] | None:
    """The run's metrics if it finished earlier with the same configuration; an error if with another."""
    metrics = read_metrics(run.folder)
    if metrics is None:
        return None
    recorded = _as_json(read_record(run.folder)[1])  # fields added since the run take their defaults
    wanted = _as_json(run.config)
    recorded["data_dir"] = wanted["data_dir"]  # where the files were found does not change the run
    if recorded["backend"] == "auto":  # recorded before "auto" was resolved: its config.json says where it ran
        recorded["backend"] = wanted["backend"]
    if recorded != wanted:
        changed = ", ".join(f"{k} {recorded.get(k)!r} -> {wanted[k]!r}" for k in wanted if recorded.get(k) != wanted[k])
        raise ValueError(f"{run.folder} holds a finished run with other settings ({changed}); "
                         "use another --out for these settings, or delete that folder")
    return metrics


def _as_json(config: RunConfig) -> dict[str, Any]:
    """``config`` as its JSON record reads back (tuples as lists), for comparing with a stored one."""
    return json.loads(json.dumps(config.to_dict()))


def unfinished(runs: list[GridRun]) -> list[GridRun]:
    """The runs still to train. Those whose folder holds a finished run of the same configuration get its
    metrics and the status ``"skipped"``; a folder holding a finished run of other settings is an error."""
    to_train = []
    for run in runs:
        run.metrics = _finished(run)
        if run.metrics is not None:
            run.status = "skipped"
        else:
            to_train.append(run)
    return to_train


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: "1" for name in THREAD_VARIABLES})
    root = str(Path(__file__).resolve().parents[1])  # so the child imports this very nnbackend
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _run_in_child(run: GridRun, env: dict[str, str]) -> GridRun:
    run.folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "nnbackend.runs", "--config", json.dumps(run.config.to_dict()),
               "--out", str(run.folder)] + (["--figures"] if run.figures else [])
    # Appended to: a resumed run keeps the log of its interrupted session above this one's.
    with open(run.folder / "train.log", "a", encoding="utf-8", errors="surrogateescape") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command_for(run.config))}\n")
        log.flush()
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    run.metrics = read_metrics(run.folder)
    if code != 0 or run.metrics is None:
        run.status, run.error = "failed", f"exit code {code}, see {run.folder / 'train.log'}"
    else:
        run.status = "done"
    return run


def _run_here(run: GridRun) -> GridRun:
    result = train_run(run.config, run.folder, verbose=0, figures=run.figures, log=None, resume=True,
                       command=command_for(run.config))
    run.metrics, run.status = result.metrics, "done"
    return run


def train_runs(runs: list[GridRun], *, jobs: int = 1, on_finished: Callable[[GridRun], None] = lambda run: None) -> None:
    """Train ``runs``, setting each one's metrics and status, and call ``on_finished`` as each ends.

    ``jobs`` = 1 trains them one after the other in this process; more trains that many at a time, each
    in a child process with one BLAS thread. Ctrl-C stops the running children and starts no queued run.
    """
    if jobs == 1:
        for run in runs:
            on_finished(_run_here(run))
        return
    env = _child_environment()
    stop = threading.Event()  # set at Ctrl-C: a pool thread freed after it starts no further child

    def run_child(run: GridRun) -> GridRun:
        return run if stop.is_set() else _run_in_child(run, env)

    def report(futures: Iterable[concurrent.futures.Future]) -> None:
        for future in futures:
            if not future.cancelled() and future.exception() is None and future.result().status != "pending":
                on_finished(future.result())

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        waiting = {pool.submit(run_child, run) for run in runs}
        try:
            while waiting:
                # A short wait, not as_completed: where a lock wait cannot be interrupted (Windows, musl),
                # Ctrl-C would otherwise be seen only when a child ends, after the next one started.
                done, waiting = concurrent.futures.wait(waiting, timeout=0.5,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
                errors = [future.exception() for future in done if future.exception() is not None]
                report(done)
                if errors:
                    # Start no queued run; let the running ones finish and report them, then fail.
                    stop.set()
                    report(concurrent.futures.wait(waiting)[0])
                    raise errors[0]
        except KeyboardInterrupt:  # the running children got the signal too; start no queued run
            stop.set()
            for future in waiting:
                future.cancel()
            raise


def _history(run: GridRun) -> dict[str, Any] | None:
    """The run's history.json, or None when the folder holds none (or not a JSON object)."""
    try:
        history = json.loads((run.folder / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return history if isinstance(history, dict) else None


def _training_losses(run: GridRun) -> list[float] | None:
    """The run's training loss per epoch from its history.json, or None when the folder holds none."""
    try:
        return [float(v) for v in (_history(run) or {})["loss"]]
    except (KeyError, TypeError, ValueError):
        return None


def loss_rose(run: GridRun) -> tuple[float, float, int] | None:
    """``(first, last, epochs)`` training losses when the run's last epoch ended with a higher training loss
    than its first: it did not converge (a collapse with a finite loss). None otherwise, for a run of one
    epoch, or when the run folder holds no history."""
    losses = _training_losses(run)
    if not losses or len(losses) < 2 or not losses[-1] > losses[0]:
        return None
    return losses[0], losses[-1], len(losses)


def chance_spell(run: GridRun) -> tuple[int, list[int]] | None:
    """For a run that ends above chance level but fell to it on the way (a collapse it recovered from):
    the first epoch whose training accuracy fell back to chance level, and the epochs of the evaluations
    at chance level from then on. None for any other run (see :func:`nnbackend.runs.at_chance`)."""
    m = run.metrics
    if m is None or m["diverged_epoch"] or at_chance(m):
        return None
    history = _history(run)
    if history is None:
        return None
    chance = 1.5 / len(m["test"]["report"]["class_names"])
    # A collapse: training accuracy above chance level, then back at it (a run that starts slowly from
    # chance level is no collapse).
    learned, onset = False, None
    for epoch, accuracy in zip(history.get("epoch") or [], history.get("accuracy") or []):
        if accuracy is None:
            continue
        if accuracy >= chance:
            learned = True
        elif learned:
            onset = epoch
            break
    if onset is None:
        return None
    evaluations = [e for e, a in zip(history.get("val_epoch") or [], history.get("val_accuracy") or [])
                   if e >= onset and a is not None and a < chance]
    return (onset, evaluations) if evaluations else None


def _spans(epochs: list[int]) -> str:
    """``[20, 40, 60]`` -> ``"20 to 60"``, ``[20]`` -> ``"20"``."""
    return str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]} to {epochs[-1]}"


def converged(run: GridRun) -> bool | None:
    """False for a finished run that diverged, ended at chance level or whose training loss rose; True when
    its loss fell; None when that cannot be told (not finished, one epoch, or no history)."""
    m = run.metrics
    if m is None:
        return None
    if m["diverged_epoch"] or at_chance(m):
        return False
    losses = _training_losses(run)
    return None if not losses or len(losses) < 2 else not losses[-1] > losses[0]


def progress_line(index: int, total: int, run: GridRun) -> str:
    """``[ 3/18] mnist-gd-lr0.5-512: val acc 0.9581 (paper 0.958), ...`` for a finished run."""
    head = f"[{index:>{len(str(total))}}/{total}] {run.key}:"
    if run.status == "failed":
        return f"{head} FAILED ({run.error})"
    m, paper = run.metrics or {}, run.spec.paper
    final = m.get("final", {})
    parts = [f"val acc {_num(final.get('val_accuracy'))}" + (f" (paper {paper.val_accuracy:.3f})" if paper else "")]
    same_loss = m.get("loss") == "paper"  # the paper's losses are its BCE; a CNN row trains with CCE
    parts.append(f"val loss {_num(final.get('val_loss'))}"
                 + (f" (paper {paper.val_loss:.3f})" if same_loss and paper and paper.val_loss is not None else ""))
    if m.get("diverged_epoch"):
        parts.append(f"DIVERGED at epoch {m['diverged_epoch']}")
    elif m and at_chance(m):
        parts.append("at chance level")
    elif m and loss_rose(run):
        parts.append("not converged (training loss rose)")
    parts.append(_duration(m.get("wall_time_s")))
    tail = " (finished earlier, skipped)" if run.status == "skipped" else ""
    return f"{head} {', '.join(parts)}{tail}"


def reproduce(out: str | Path, tables: list[int], settings: GridSettings, *, backend: str = "auto",
              dtype: str = "float32", jobs: int = 1, data_dir: str | None = None,
              log: Log = print) -> tuple[list[GridRun], Path]:
    """Run (or resume) the grid for ``tables`` into ``out``; write report.md and results.json.

    Returns the runs and the report's path. ``jobs`` > 1 trains that many runs at a time in child
    processes with one BLAS thread each; ``jobs`` = 1 trains in this process.
    """
    out = Path(out)
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M:%S")
    chosen = get_backend(backend, dtype=dtype)  # fail now, with the install hint, not in every child
    # "auto" is recorded as what it chose, so a grid trained with --backend numpy re-renders with the default.
    runs = plan(tables, settings, out, backend=chosen.name if backend.split(":")[0] == "auto" else backend,
                dtype=dtype, data_dir=data_dir)
    for name in sorted({run.spec.data for run in runs}):
        dataset = load(name, data_dir=data_dir)  # find (or download) each data set once, before any child needs it
        _check_subsets([run for run in runs if run.spec.data == name], dataset)
    to_train = unfinished(runs)
    jobs = max(1, min(jobs, len(to_train) or 1))
    where = f" with {jobs} processes of 1 BLAS thread each" if jobs > 1 else " in this process"
    log(f"{len(runs)} runs for tables {', '.join(map(str, tables))}: {len(runs) - len(to_train)} finished earlier, "
        + (f"{len(to_train)} to train on {chosen.describe()}{where}" if to_train else "nothing left to train"))
    done = 0
    for run in runs:
        if run.status == "skipped":
            done += 1
            log(progress_line(done, len(runs), run))

    def finished(run: GridRun) -> None:
        nonlocal done
        done += 1
        log(progress_line(done, len(runs), run))

    train_runs(to_train, jobs=jobs, on_finished=finished)
    invocation = {"started": started_at, "wall_time_s": time.perf_counter() - started,
                  "trained": len(to_train), "jobs": jobs, "backend": chosen.describe()}
    history = _earlier_invocations(out)
    # An invocation that trained nothing only re-rendered the report: the grid's history keeps the ones
    # that trained (their wall times add up to the grid's), and the report says what this one did.
    context = {"settings": settings, "backend": chosen.describe(), "tables": tables, "machine": machine(),
               "invocations": history + [invocation] if to_train or not history else history,
               "now": invocation}
    report = out / "report.md"
    out.mkdir(parents=True, exist_ok=True)
    write_text(report, render_report(runs, context))
    write_json(out / "results.json", _results(runs, context))
    return runs, report


def _check_subsets(runs: list[GridRun], dataset: Any) -> None:
    """Raise ValueError, before anything trains, when a run's subset asks for more images than a part of
    its split holds (otherwise every run of the grid would fail alike)."""
    for run in runs:
        if run.config.subset is None:
            continue
        parts = part_indices(run.config.split, len(dataset.train_labels), len(dataset.test_labels),
                             seed=run.config.split_seed)
        for part, wanted in zip(("train", "val", "test"), run.config.subset):
            if wanted > len(parts[part]):
                raise ValueError(f"the subset asks for {wanted:,} {part} images, but the {run.config.split} split of "
                                 f"{dataset.name} has {len(parts[part]):,}; pass a smaller --subset")


def _earlier_invocations(out: Path) -> list[dict[str, Any]]:
    """The invocations that trained runs, recorded in an earlier results.json of this grid folder (a resumed
    grid's history)."""
    try:
        recorded = json.loads((out / "results.json").read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError):
        return []
    return [i for i in recorded if i.get("trained")]


def _results(runs: list[GridRun], context: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": dataclasses.asdict(context["settings"]),
        "backend": context["backend"], "machine": context["machine"], "tables": context["tables"],
        "wall_time_s": sum(i["wall_time_s"] for i in context["invocations"]),
        "invocations": context["invocations"],
        "runs": [
            {"key": r.key, "tables": r.tables, "status": r.status, "error": r.error,
             "spec": {"data": r.spec.data, "model": r.spec.model, "optimizer": r.spec.optimizer,
                      "lr": r.spec.lr, "layers": list(r.spec.layers)},
             "paper": dataclasses.asdict(r.spec.paper) if r.spec.paper else None,
             "ours": _ours(r)}
            for r in runs
        ],
    }


def _ours(run: GridRun) -> dict[str, Any] | None:
    m = run.metrics
    if m is None:
        return None
    final, spell = m["final"], chance_spell(run)
    return {"val_epoch": final["val_epoch"], "val_accuracy": final["val_accuracy"], "val_loss": final["val_loss"],
            "val_cross_entropy": final.get("val_loss:cross_entropy"), "diverged_epoch": m["diverged_epoch"],
            "converged": converged(run),
            "at_chance_evaluations": spell[1] if spell else None,
            "epochs_run": m["epochs_run"], "test_accuracy": m["test"]["accuracy"],
            "wall_time_s": m["wall_time_s"]}


# -- the report ---------------------------------------------------------------------------------------
def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # "nan" / "inf" from JSON
        return value
    return f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _row_label(table: Table, spec: RunSpec) -> str:
    if table.varies == "lr":
        return str(spec.lr)
    names = ", ".join(["ReLU"] * len(spec.layers) + ["Softmax"])
    return f"{{{names}}} ({', '.join(map(str, spec.layers))})"


def _table_section(table: Table, runs: dict[str, GridRun]) -> list[str]:
    head = "learning rate" if table.varies == "lr" else "layers (hidden sizes)"
    lines = [f"## Table {table.number}: {table.title}", "",
             f"| {head} | paper: val acc | ours: val acc | paper: val loss | ours: val loss (BCE) "
             "| ours: val CCE | epochs | time | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for spec in table.rows:
        run = runs[spec.key]
        paper = spec.paper
        notes = []
        if paper and paper.diverged_by:
            notes.append(f"paper: diverged by epoch {paper.diverged_by}")
        cells = ["-"] * 5
        if run.status == "failed":
            notes.append(f"**failed**: {run.error}")
        elif run.metrics is not None:
            m, final = run.metrics, run.metrics["final"]
            cells = [_num(final["val_accuracy"]), _num(final["val_loss"]), _num(final.get("val_loss:cross_entropy")),
                     str(m["epochs_run"]), _duration(m["wall_time_s"])]
            if m["diverged_epoch"]:
                notes.append(f"**ours: diverged at epoch {m['diverged_epoch']}** "
                             + (f"(figures from the last evaluation, epoch {final['val_epoch']})"
                                if final["val_epoch"] is not None else "(before its first evaluation)"))
            elif at_chance(m):
                notes.append("**ours: at chance level** (collapsed, with a finite loss)")
            elif rose := loss_rose(run):
                notes.append(f"**ours: not converged**: training loss rose from {rose[0]:.3f} in epoch 1 to "
                             f"{rose[1]:.3f} in epoch {rose[2]}")
            elif spell := chance_spell(run):
                onset, evaluations = spell
                notes.append(f"**ours: collapsed, then recovered**: training accuracy at chance level from epoch "
                             f"{onset}, validation accuracy at chance level at the evaluations of epochs "
                             f"{_spans(evaluations)}; val acc {_num(final['val_accuracy'])} at epoch {final['val_epoch']}")
            elif paper and paper.diverged_by:
                notes.append(f"ours: did not diverge (val acc {_num(final['val_accuracy'])} at epoch {final['val_epoch']})")
        notes.append(f"[{run.key}](runs/{run.key}/report.md)")
        lines.append(
            f"| {_row_label(table, spec)} | {paper.val_accuracy:.3f} | {cells[0]} "
            f"| {'-' if paper.val_loss is None else f'{paper.val_loss:.3f}'} | {cells[1]} | {cells[2]} "
            f"| {cells[3]} | {cells[4]} | {'; '.join(notes)} |"
        )
    return lines + [""]


def _test_report(run: GridRun) -> ClassificationReport:
    test = run.metrics["test"]
    return ClassificationReport.from_confusion(np.asarray(test["report"]["confusion"], dtype=np.int64),
                                               test["report"]["class_names"])


def _test_set_noise(confusion: np.ndarray, ours: float, paper: float, paper_images: int) -> str:
    """A sentence on whether the gap between our weighted F1 and the paper's is more than the choice of test
    images explains: a bootstrap of our test set, and the paper's ``paper_images`` other test images taken
    to move as a test set of their size does (a standard deviation scaling as 1 / sqrt(size))."""
    values = bootstrap_values(confusion, metric="f1", average="weighted")
    low, high = np.quantile(values, [0.025, 0.975])
    images = int(confusion.sum())
    scale = math.sqrt(1 + images / paper_images)
    margin = 1.96 * scale * float(np.std(values, ddof=1))
    gap = ours - paper
    verdict = "within" if round(abs(gap), 4) <= round(margin, 4) else "beyond"
    sizes = ("two test sets of this size" if images == paper_images
             else f"this test set and the paper's {paper_images:,} images")
    formula = "sqrt(2)" if images == paper_images else f"sqrt(1 + {images:,} / {paper_images:,})"
    return (f"Resampling the {images:,} test images (bootstrap, {len(values):,} resamples), our "
            f"weighted F1 in the paper's setting has the 95% interval [{low:.4f}, {high:.4f}]. The paper's "
            f"number comes from other test images: {sizes} give F1s up to {margin:.4f} apart "
            f"(95%; 1.96 x {formula} x the bootstrap's standard deviation), so the gap of {gap:+.4f} is {verdict} "
            "what the choice of test images explains.")


def paper_distance(paper: float, stats: dict[str, float], group: str, bootstrap_sd: float, images: int,
                   paper_images: int) -> float | None:
    """How many standard deviations of the difference the paper's number lies above the mean of a seed
    study's group (``stats``: its n, mean and SD of the test weighted F1); None for fewer than 2 runs, or
    when the variance below comes out at zero or less (a split group whose test sets are smaller than
    the paper's, with almost no spread).

    The difference between one run of the paper (on ``paper_images`` test images of its own) and the mean
    of our ``n`` runs varies with the training seeds, SD**2 (1 + 1/n), and with the test images. In group
    ``"seed"`` our runs share one test set of ``images`` images (bootstrap SD ``bootstrap_sd``), so both test
    sets add: bootstrap_sd**2 (1 + images / paper_images). In group ``"split"`` each run has its own test set,
    which the SD already holds; only the paper's other size adds: bootstrap_sd**2 (images / paper_images - 1).
    """
    if stats["n"] < 2:
        return None
    test_sets = (1 + images / paper_images) if group == "seed" else (images / paper_images - 1)
    variance = stats["sd"] ** 2 * (1 + 1 / stats["n"]) + bootstrap_sd ** 2 * test_sets
    return (paper - stats["mean"]) / math.sqrt(variance) if variance > 0 else None


def _seed_spread(run: GridRun, table: int, paper: float) -> str:
    """A sentence on the seed study of ``scripts/seed_spread.py`` when the grid folder holds one for this
    table and run (``spread/spread.json``), else ``""``."""
    path = run.folder.parent.parent / "spread" / "spread.json"
    try:
        study = json.loads(path.read_text(encoding="utf-8"))
        f1 = [r["test_weighted_f1"] for r in study["runs"] if r["test_weighted_f1"] is not None]
        ignored = ("seed", "split_seed", "data_dir", "backend")  # where the data or the run lived
        same = {k: v for k, v in study["config"].items() if k not in ignored} == {
            k: v for k, v in _as_json(run.config).items() if k not in ignored}
        if study["table"] != table or study["run"] != run.key or study["quick"] or not same or not f1:
            return ""
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    reached = sum(value >= paper for value in f1)
    distances = {group: (study.get("groups") or {}).get(group, {}).get("paper_distance") for group in ("seed", "split")}
    where = ""
    if all(isinstance(d, float) for d in distances.values()):
        largest = max(abs(d) for d in distances.values())
        where = (f" The paper's number lies {distances['seed']:+.1f} (training seeds) and {distances['split']:+.1f} "
                 "(split seeds) standard deviations of the difference from our means, counting the seeds' spread "
                 "and both test sets' sampling: "
                 + ("within 2, so seeds and the choice of test images can explain the gap." if largest < 2 else
                    "beyond 2, more than seeds and the choice of test images usually explain."))
    return (f" Trained again with other training and split seeds ([spread/spread.md](spread/spread.md)), this "
            f"setting gives {min(f1):.4f}-{max(f1):.4f} (mean {sum(f1) / len(f1):.4f}) over {len(f1)} runs; runs "
            f"reaching the paper's {paper:.4f}: {reached} of {len(f1)}.{where}")


def _class_section(spec: ClassReportSpec, runs: dict[str, GridRun]) -> list[str]:
    run = runs[spec.run.key]
    lines = [f"## Table {spec.table}: {spec.title}", ""]
    if run.metrics is None:
        return lines + [f"Run {run.key} did not finish ({run.error or run.status}).", ""]
    test = run.metrics["test"]
    report = _test_report(run)
    p, r, f = spec.weighted
    w = report.weighted
    lines += [
        f"Model: run [{run.key}](runs/{run.key}/report.md); test part of the paper split, "
        f"{test['samples']:,} images.",
        "",
        "| weighted average | precision | recall | F1 |",
        "|---|---:|---:|---:|",
        f"| paper | {p:.4f} | {r:.4f} | {f:.4f} |",
        f"| ours, the paper's setting | {w['precision']:.4f} | {w['recall']:.4f} | {w['f1']:.4f} |",
    ]
    interval = (_test_set_noise(report.confusion, w["f1"], f, paper_test_images(spec.run.data))
                + _seed_spread(run, spec.table, f))
    best = best_by_validation(runs.values(), spec.run.data)
    if best is not None and best.key != run.key:
        b = _test_report(best).weighted
        lines += [
            f"| ours, the grid's best model by validation accuracy: [{best.key}](runs/{best.key}/report.md) "
            f"| {b['precision']:.4f} | {b['recall']:.4f} | {b['f1']:.4f} |",
            "",
            f"The last row is the model a user of this grid would pick: the highest validation accuracy on "
            f"{spec.run.data} ({_num(best.metrics['final']['val_accuracy'])}, against "
            f"{_num(run.metrics['final']['val_accuracy'])} for the paper's setting), chosen without looking "
            "at the test images.",
        ]
    lines += [
        "",
        interval,
        "",
        "Ours (the paper's setting), per class:",
        "",
        report.to_markdown(),
        f"![loss and accuracy curves](runs/{run.key}/curves.png)",
        "",
        f"![confusion matrix](runs/{run.key}/confusion.png)",
        "",
    ]
    return lines


def _beyond_section(table: BeyondTable, settings: GridSettings, runs: dict[str, GridRun]) -> list[str]:
    data = f", first {settings.subset[0]:,} / {settings.subset[1]:,} / {settings.subset[2]:,} images" \
        if settings.subset else ""
    lines = [f"## Table {table.number}: {table.title}", "",
             f"Recipe: {table.recipe} (this grid: {settings.epochs} epochs{data}). The paper's column is its "
             "best MLP on the same data (Adam 0.005, one hidden layer of 512, validation accuracy).", "",
             "| data | paper MLP: val acc | ours: val acc | ours: test acc | target test acc | ours: test "
             "weighted F1 | epochs | time | run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    if settings != table.full:
        lines[4:4] = [f"The target test accuracy is for the full recipe ({table.full.epochs} epochs, every image); "
                      "these reduced runs are not compared with it.", ""]
    for spec in table.rows:
        run = runs[spec.key]
        target = table.target_test_accuracy.get(spec.data) if settings == table.full else None
        cells = ["-"] * 5
        if run.status == "failed":
            cells[0] = f"**failed**: {run.error}"
        elif run.metrics is not None:
            m = run.metrics
            test = m["test"]
            reached = "" if target is None else (" (reached)" if test["accuracy"] >= target else " (**missed**)")
            cells = [_num(m["final"]["val_accuracy"]), _num(test["accuracy"]) + reached,
                     _num(test["weighted"]["f1"]), str(m["epochs_run"]), _duration(m["wall_time_s"])]
        lines.append(f"| {spec.data} | {spec.paper.val_accuracy:.3f} | {cells[0]} | {cells[1]} "
                     f"| {'-' if target is None else f'{target:.3f}'} | {cells[2]} | {cells[3]} | {cells[4]} "
                     f"| [{run.key}](runs/{run.key}/report.md) |")
    return lines + [""]


def render_report(runs: list[GridRun], context: dict[str, Any]) -> str:
    """report.md: settings, machine, wall times, then each chosen table with the paper's numbers beside ours."""
    settings: GridSettings = context["settings"]
    invocations = context["invocations"]
    now = context.get("now", invocations[-1])
    by_key = {run.key: run for run in runs}
    machine = context["machine"]
    beyond = any(number in BEYOND for number in context["tables"])
    lines = ["# nnbackend reproduce: the paper's MLP experiments" + (", and a CNN beyond them" if beyond else ""), ""]
    if settings.quick:
        lines += ["> **QUICK RUN**: a smoke test of the pipeline on a subset, with few epochs. Its numbers are "
                  "NOT comparable with the paper's; run `nnbackend reproduce` without `--quick` for those.", ""]
    elif settings.subset or settings.epochs != 260 or settings.eval_every != 20:
        lines += ["> **REDUCED RUN**: not the paper's settings (see below); the numbers are not comparable "
                  "with the paper's.", ""]
    data = "the paper's split (pool train + test, seed 42; 80% train, 10% validation, 10% test)"
    if settings.subset:
        data += f", first {settings.subset[0]:,} train / {settings.subset[1]:,} validation / " \
                f"{settings.subset[2]:,} test images"
    data += ("; the pool holds all 70,000 images of each data set, where the paper's MNIST runs used a "
             "42,000-image subset (33,600 / 4,200 / 4,200; its Fashion-MNIST runs used all 70,000)")
    trained = sum(r.status == "done" for r in runs)
    earlier = sum(r.status == "skipped" for r in runs)
    failed = sum(r.status == "failed" for r in runs)
    run_times = sum(r.metrics["wall_time_s"] for r in runs if r.metrics)
    lines += [
        f"- data: {data}",
        f"- training: full batch, {settings.epochs} epochs, evaluation every {settings.eval_every}; "
        f"{settings.activation} hidden layers (512, or 512 and 256), Softmax output, the paper's loss "
        "(element-wise binary cross-entropy, BCE); weights seeded with "
        f"{settings.seed}",
        "- reported: validation accuracy and loss at the last epoch (for a diverged run: at the last evaluation "
        "before it diverged); the paper's losses are BCE, and the categorical cross-entropy (CCE) of the same "
        "predictions is given beside ours",
        "- diverged: ours is marked diverged when its training loss became NaN or infinite (training stops "
        "there); a run ending below 1.5 / (number of classes) validation accuracy (0.15 for 10 classes) is marked at chance level, which is what "
        "the paper's diverged runs show (accuracy 0.09-0.11 with a finite loss); a run whose training loss in its last "
        "epoch is higher than in its first is marked as not converged (it collapsed onto a few classes; its final accuracy "
        "is a matter of rounding, and the paper's learning rate 0.05 runs look the same); a run at chance level at "
        "some evaluation that ends above it is marked as collapsed, then recovered",
        f"- backend: {context['backend']}; "
        + (f"this invocation trained {now['trained']} run(s)"
           + (f", {now['jobs']} at a time in separate processes with 1 BLAS thread each" if now["jobs"] > 1
              else " in one process")
           if now["trained"] else "this invocation trained nothing: it rendered the report from the runs' saved "
           "results"),
        f"- machine: {machine['platform']}, {machine['processor']}, {machine['cpu_count']} cores; "
        f"Python {machine['python']}, NumPy {machine['numpy']}",
        f"- wall time: {_duration(sum(i['wall_time_s'] for i in invocations))} for the grid"
        + (f" over {len(invocations)} invocations that trained runs"
           + (f" (this one {_duration(now['wall_time_s'])})" if now["trained"] else "")
           if len(invocations) > 1 else "")
        + f"; the runs' own times add up to {_duration(run_times)}",
        f"- runs: {len(runs)} distinct ({trained} trained now, {earlier} finished earlier"
        + (f", **{failed} failed**" if failed else "") + ")",
        "",
    ]
    for number in context["tables"]:
        if number in TABLES:
            lines += _table_section(TABLES[number], by_key)
        elif number in BEYOND:
            lines += _beyond_section(BEYOND[number], table_settings(number, settings), by_key)
        else:
            lines += _class_section(CLASS_REPORTS[number], by_key)
    datasets = sorted({r.spec.data for r in runs})
    bests = [best for best in (best_by_validation(runs, data) for data in datasets) if best is not None]
    if bests:
        lines += ["## Our best runs by validation accuracy", ""]
        for best in bests:
            lines.append(f"- {best.spec.data}: {best.key}, val acc {_num(best.metrics['final']['val_accuracy'])}, "
                         f"test weighted F1 {_num(_test_report(best).weighted['f1'])}")
        lines.append("")
    return "\n".join(lines)


def best_by_validation(runs: Iterable[GridRun], data: str) -> GridRun | None:
    """The finished run on ``data`` with the highest final validation accuracy (the first one on ties),
    leaving out runs that diverged or did not converge (their validation figures and tested weights
    may come from different epochs); None when no such run has a validation accuracy."""
    finished = [r for r in runs if r.spec.data == data and r.metrics and converged(r) is not False
                and r.metrics["final"]["val_accuracy"] is not None]
    return max(finished, key=lambda r: r.metrics["final"]["val_accuracy"], default=None)
