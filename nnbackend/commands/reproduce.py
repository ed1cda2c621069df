"""``nnbackend reproduce``: the paper's grid of experiments, with a report beside the paper's numbers."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from .. import paper
from ..reproduce import reproduce
from . import options

EXAMPLES = """\
examples:
  nnbackend reproduce --quick                  # every table on a subset, 30 epochs: about a minute
  nnbackend reproduce                          # the paper's settings: 18 runs of 260 full-batch epochs
  nnbackend reproduce --tables 2,3,7 --jobs 4 --out reproduce-out/adam
  nnbackend reproduce --quick --tables 1 --subset 1000,500,500 --epochs 10 --eval-every 5

A re-run with the same --out skips the runs that finished (an interrupted grid resumes).
"""


def table_list(text: str) -> list[int]:
    known = sorted({*paper.TABLES, *paper.CLASS_REPORTS, *paper.BEYOND})
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(n not in known for n in numbers):
        raise argparse.ArgumentTypeError(
            f"expected table numbers from {', '.join(map(str, known))} like 1,2,7; got {text!r}")
    return sorted(set(numbers))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce", help="run the paper's experiment grid and report ours beside its numbers",
        description="Run the paper's grid (tables 1-6: learning rates and depths of GD and Adam on MNIST and "
        "Fashion-MNIST; tables 7-8: per-class test reports of the best models, with their curves and confusion "
        "matrices; table 9: a CNN beyond the paper, on both data sets) on the paper's split, and write report.md "
        "with our numbers beside the paper's.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: the first {'/'.join(map(str, paper.QUICK.subset))} train/val/test "
                        f"images, {paper.QUICK.epochs} epochs, evaluation every {paper.QUICK.eval_every}")
    parser.add_argument("--tables", type=table_list, default=None, metavar="N,N,...",
                        help="which tables to reproduce: 1-8 the paper's, 9 a CNN beyond it (default: all)")
    parser.add_argument("--out", type=options.output_folder, metavar="DIR",
                        help="the grid folder (default: reproduce-out/full, or reproduce-out/quick with --quick)")
    parser.add_argument("--jobs", type=options.positive_int, default=os.cpu_count() or 1, metavar="N",
                        help="runs trained at a time, each in its own process with one BLAS thread; 1 trains "
                        "in this process (default: the number of cores, here %(default)s)")
    parser.add_argument("--data-dir", metavar="DIR", help="a folder holding mnist/ and fashion-mnist/ "
                        "(default: $NNBACKEND_DATA, the cache, ...)")
    options.add_backend_options(parser)
    reduce = parser.add_argument_group("reduced settings (the report then says the run is not the paper's)")
    reduce.add_argument("--epochs", type=options.positive_int, help="epochs per run")
    reduce.add_argument("--eval-every", type=options.positive_int, metavar="N", help="evaluate every N epochs")
    reduce.add_argument("--subset", type=options.subset_sizes, metavar="TRAIN,VAL,TEST",
                        help="the first TRAIN/VAL/TEST images of the paper split")
    parser.set_defaults(handler=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    settings = paper.QUICK if args.quick else paper.FULL
    changes = {k: getattr(args, k) for k in ("epochs", "eval_every", "subset") if getattr(args, k) is not None}
    if changes.get("subset") == ():  # --subset all
        changes["subset"] = None
    settings = dataclasses.replace(settings, **changes)
    tables = args.tables or sorted({*paper.TABLES, *paper.CLASS_REPORTS, *paper.BEYOND})
    out = Path(args.out or ("reproduce-out/quick" if args.quick else "reproduce-out/full"))
    # A grid folder is known by its results.json: a folder of runs or evaluations is not overwritten.
    options.refuse_clashes(out, ("config.json", "metrics.json", "model.npz", "confusion.png"), "the grid")
    if (out / "report.md").exists() and not (out / "results.json").exists():
        raise ValueError(f"{out} holds a report.md but no results.json, so it is not a grid folder; pass another --out")
    options.writable_folder(out)
    runs, report = reproduce(out, tables, settings, backend=options.requested_backend(args.backend),
                             dtype=args.dtype, jobs=args.jobs, data_dir=args.data_dir)
    failed = [run.key for run in runs if run.status == "failed"]
    print(f"report: {report}")
    if failed:
        print(f"nnbackend: error: {len(failed)} run(s) failed: {', '.join(failed)}; see their train.log")
        return 1
    return 0
