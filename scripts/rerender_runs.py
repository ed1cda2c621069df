"""Rewrite the report.md and figures of finished run folders from the files they stored.

For run folders written before the run report or the figures changed (``docs/reproduction/runs/``):
``config.json``, ``history.json`` and ``metrics.json`` hold everything the report and the figures show,
so nothing is trained again. See :func:`nnbackend.runs.rerender`.

Run from the repository root: ``PYTHONPATH=. python scripts/rerender_runs.py docs/reproduction/runs/*``.
"""

from __future__ import annotations

import argparse

from nnbackend.runs import rerender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="run folders written by nnbackend train or reproduce")
    parser.add_argument("--no-figures", action="store_true", help="rewrite report.md only")
    args = parser.parse_args()
    for folder in args.folders:
        rerender(folder, figures=not args.no_figures)
        print(f"rewrote {folder}")


if __name__ == "__main__":
    main()
