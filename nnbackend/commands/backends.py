"""``nnbackend backends``: every backend, its version and devices, whether it works here and why not."""

from __future__ import annotations

import argparse

from .. import fused
from ..backend import BackendUnavailableError, available_backends, get_backend


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backends", help="list the backends, their devices, and whether each is usable here",
        description="List every backend nnbackend knows with its library version and devices, whether it is "
        "usable on this machine (and why not), the install command for unusable ones, and what 'auto' picks.")
    parser.set_defaults(handler=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    infos = available_backends()
    rows = [("backend", "version", "devices", "usable")]
    rows += [(i.name, i.version or "-", ", ".join(i.devices) or "-", "yes" if i.usable else "no") for i in infos]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * width for width in widths))
    unusable = [i for i in infos if not i.usable]
    if unusable:
        print("\nnot usable here:")
        for info in unusable:
            print(f"  {info.name}: {info.reason}")
            if info.install_hint not in info.reason:
                print(f"    install: {info.install_hint}")
    try:
        auto = get_backend("auto")
        print(f"\nauto picks: {auto.describe()} ({auto.note})")
    except BackendUnavailableError as exc:  # pragma: no cover - numpy is always there
        print(f"\nauto picks nothing: {exc}")
    print(f"compiled kernels on NumPy: {fused.describe()}")
    return 0
