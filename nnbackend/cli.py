"""The ``nnbackend`` command: ``train``, ``evaluate``, ``reproduce``, ``backends``, ``parity``.

Each command lives in :mod:`nnbackend.commands`; this module assembles them and turns user mistakes into
one line on stderr, ``nnbackend: error: ...``, with exit code 2 for wrong options and 1 for problems found
while running (missing data, an unusable backend, a bad model file, a folder that cannot be written).
Anything else is a bug and raises with its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from . import __version__
from .backend import BackendUnavailableError
from .data import DataError
from .io import CheckpointError

__all__ = ["main", "build_parser"]

USER_ERRORS = (ValueError, DataError, CheckpointError, BackendUnavailableError, FileNotFoundError)

#: Operating-system errors about the user's files and disks (not bugs): said in one line, exit code 1.
USER_OS_ERRORS = {getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EISDIR", "ENOTDIR",
                                                     "EEXIST", "ENAMETOOLONG") if hasattr(errno, name)}


class UsageError(Exception):
    """A wrong option or option value (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised, so :func:`main` prints them as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> Parser:
    from .commands import COMMANDS

    parser = Parser(prog="nnbackend", description="A neural-network engine written once against the Python "
                    "Array API: NumPy on CPU, CuPy on CUDA. Run 'nnbackend COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"nnbackend {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error instead of one line (for bug reports)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    parser.command_names = tuple(subparsers.choices)
    return parser


def one_line(error: BaseException | str) -> str:
    """An error message on one line: a multi-line message's lines joined by ``; ``."""
    text = str(error)
    if isinstance(error, OSError) and error.filename and error.strerror:  # not "[Errno 2] ..."
        text = f"{error.filename}: {error.strerror}"
    parts = [part.strip() for part in text.splitlines() if part.strip()]
    out = ""
    for part in parts:
        out += part if not out else (" " if out.endswith(":") else "; ") + part.lstrip("- ")
    return out or type(error).__name__


def _fail(message: str) -> None:
    print(f"nnbackend: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # A console or pipe in a legacy encoding (cp1252 on Windows) must not turn printing a non-ASCII
        # path into a failed run after its files were written.
        if stream is not None and hasattr(stream, "reconfigure") and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        message = one_line(exc)
        command = next((word for word in argv if word in parser.command_names), None)
        if command:  # "unrecognized arguments" comes from the top parser, but the command has the help
            message = message.replace("(see 'nnbackend --help')", f"(see 'nnbackend {command} --help')")
        _fail(message)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    args.argv = argv
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is met inside this handler, not at exit
        return code
    except UsageError as exc:  # a combination of options found wrong by the command itself
        _fail(one_line(exc))
        return 2
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        _fail(one_line(exc))
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except MemoryError as exc:  # e.g. --layers 99999999999: NumPy names the allocation it could not make
        if args.traceback:
            raise
        _fail(f"out of memory: {one_line(exc)}; use smaller layers, batches (--batch-size, --max-rows) or data")
        return 1
    except OSError as exc:
        if exc.errno in USER_OS_ERRORS and not args.traceback:
            _fail(one_line(exc))
            return 1
        # `nnbackend ... | head`: the reader left; stop quietly, as other tools do. Windows may report a
        # closed pipe as EINVAL rather than EPIPE.
        if not (isinstance(exc, BrokenPipeError) or (os.name == "nt" and exc.errno == errno.EINVAL)):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit flush does not fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
