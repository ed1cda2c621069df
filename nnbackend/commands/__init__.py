"""The ``nnbackend`` sub-commands, one module each: ``add_parser(subparsers)`` declares the command's
options and ``run(args) -> int`` carries it out. :mod:`nnbackend.cli` assembles them."""

from __future__ import annotations

from . import backends, evaluate, parity, reproduce, train

COMMANDS = (train, evaluate, reproduce, backends, parity)

__all__ = ["COMMANDS"]
