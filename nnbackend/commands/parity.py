"""``nnbackend parity``: the device-parity matrix of :mod:`nnbackend.parity`, the same one the tests run."""

from __future__ import annotations

import argparse
import json
import sys

from .. import parity
from ..backend import INSTALL_HINTS
from ..files import write_text
from ..runs import json_ready
from . import options

EXAMPLES = """\
examples:
  nnbackend parity                                  # every backend and dtype usable here
  nnbackend parity --backends numpy,cupy --dtypes float32 --json parity.json
  nnbackend parity --backends torch,torch_cuda --markdown parity.md

Exit code 0 only when every cell passed (and at least one ran). Backends named with --backends must be
usable: one that is not makes the exit code 1 (without --backends, unusable ones are listed and skipped).
"""


def _names(allowed: tuple[str, ...], what: str):
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [n for n in names if n not in allowed]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)}")
        return list(dict.fromkeys(names))

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parity", help="check every component on every backend against NumPy float64",
        description="Run the parity matrix: every layer, loss, optimizer and a short training run on each "
        "backend and dtype, compared with NumPy float64 from the same seed, against the tolerances of "
        "nnbackend/parity.py.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", type=_names(parity.BACKEND_LABELS, "backend(s)"), metavar="LIST",
                        help=f"comma-separated, from {','.join(parity.BACKEND_LABELS)} (default: all)")
    parser.add_argument("--dtypes", type=_names(parity.DTYPES, "dtype(s)"), metavar="LIST",
                        help="comma-separated, from float32,float64 (default: both)")
    parser.add_argument("--json", type=options.output_file, metavar="PATH", help="write every cell (component x backend x dtype) as JSON")
    parser.add_argument("--markdown", type=options.output_file, metavar="PATH", help="write the matrix as a Markdown report")
    parser.set_defaults(handler=run, parser=parser)


def _hint(key: str) -> str:
    label = key.split("/")[0]
    library = {"numpy_readonly": "numpy", "torch_cuda": "torch"}.get(label, label)
    hint = INSTALL_HINTS[library]
    if label == "torch_cuda":
        hint = "a CUDA build of PyTorch (https://pytorch.org/get-started/locally/)"
    return hint


def run(args: argparse.Namespace) -> int:
    for path in (args.json, args.markdown):
        if path is not None:
            options.writable_folder(path.parent)  # before the matrix runs, not after
    targets = parity.select_targets(args.backends, args.dtypes)
    cases = parity.CASES  # looked up now, so a test can substitute cases
    print(f"parity: {len(cases)} components x {len(targets)} targets against numpy/float64", flush=True)
    # A line per cell that fails, and one per target when it is done: a run cut short (a timeout on a
    # lent GPU machine) still shows what it found.
    tally: dict[str, list[int]] = {}  # target -> [cells, failed]

    def done(target: str) -> None:
        cells, failed = tally[target]
        print(f"  {target}: {cells} cells, " + (f"{failed} FAILED" if failed else "all passed"), flush=True)

    def on_cell(cell: parity.Cell) -> None:
        if cell.target not in tally:
            if tally:
                done(next(reversed(tally)))
            tally[cell.target] = [0, 0]
            print(f"  running {cell.target} ...", flush=True)
        tally[cell.target][0] += 1
        if not cell.passed:
            tally[cell.target][1] += 1
            print(f"    FAILED {cell.case}: relative error {cell.error:.3g} in {cell.worst_output} "
                  f"(tolerance {cell.tolerance:.3g})", flush=True)

    result = parity.run_matrix(targets, cases, on_cell=on_cell, required=args.backends or ())
    if tally:
        done(next(reversed(tally)))
    print()
    if result.cells:
        print(result.to_table())
    if result.unavailable:
        print("not usable here:")
        for key, why in result.unavailable.items():
            print(f"  {key}: {why}")
            if _hint(key) not in why:
                print(f"    install: {_hint(key)}")
        print()
    print("machine:")
    for line in result.machine_lines():
        print(f"  {line}")
    print()
    print(result.summary())
    if args.json:
        write_text(args.json, json.dumps(json_ready(result.to_dict()), indent=2, allow_nan=False) + "\n")
    if args.markdown:
        write_text(args.markdown, result.to_markdown())
    if result.missing:
        print(f"nnbackend: error: requested backend(s) not usable here: {', '.join(result.missing)}",
              file=sys.stderr)
        return 1
    return 0 if result.passed else 1
