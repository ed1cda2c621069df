"""Option types and option groups shared by several commands.

Each type function turns one command-line string into a value or raises ``ArgumentTypeError`` with a
message saying what is accepted; argparse reports it as ``argument --lr: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from ..backend import BACKEND_NAMES, FLOAT_DTYPES
from ..data import dataset_names
from ..data.registry import get_spec
from ..data.errors import DataError
from ..runs import SPLITS
from ..training import check_decay_factor

__all__ = [
    "add_backend_options",
    "add_data_options",
    "backend_name",
    "batch_size",
    "dataset",
    "float_list",
    "hidden_layers",
    "max_rows",
    "non_negative_float",
    "output_file",
    "output_folder",
    "positive_float",
    "positive_int",
    "refuse_clashes",
    "shell_quote",
    "subset_sizes",
    "writable_folder",
]


def _int_at_least(text: str, least: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {what}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be a {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "positive integer")


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def decay_factor(text: str) -> float:
    """A learning-rate factor in (0, 1], checked by :func:`nnbackend.training.check_decay_factor`."""
    try:
        return check_decay_factor(_float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the learning-rate factor ", "")) from None


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def float_list(text: str) -> tuple[float, ...]:
    """``0.9,0.999`` -> ``(0.9, 0.999)``."""
    return tuple(_float(part) for part in text.split(","))


def batch_size(text: str) -> int | None:
    """A positive integer, or ``full`` (every sample in one step: plain gradient descent) -> ``None``."""
    if text.strip().lower() == "full":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def max_rows(text: str) -> int | str | None:
    """A positive integer, ``auto`` (the Trainer's default for the device) or ``none`` (never slice)."""
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'auto' or 'none', got {text!r}") from None


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "non-negative integer")


def output_folder(text: str) -> str:
    """A folder to write into (``~`` expanded): it may not exist yet, but it and everything above it must
    not be files."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty name")
    path = Path(text).expanduser()
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                what = "is a file" if place == path else f"is inside {place}, which is a file"
                raise argparse.ArgumentTypeError(f"{text} {what}; pass a folder")
            break
    return str(path)


def output_file(text: str) -> Path:
    """A file to write (``~`` expanded): not a folder, and nothing above it a file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty name")
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; pass a file name inside it, e.g. {path / 'parity.json'}")
    output_folder(str(path.parent))
    return path


def shell_quote(text: str) -> str:
    """``text`` quoted for this platform's shell, for a command a message asks the user to paste
    (POSIX quoting; on Windows, cmd.exe's double quotes, which POSIX single quotes are not)."""
    return subprocess.list2cmdline([text]) if os.name == "nt" else shlex.quote(text)


def writable_folder(folder: Path) -> None:
    """Make sure ``folder`` can be created (if missing) and written, before any work; nothing is left
    behind.

    Raises:
        ValueError: it cannot be created or written (permissions, a read-only disk), naming it.
    """
    existing = next(place for place in (folder, *folder.parents) if place.exists() or place == Path(place.anchor))
    try:
        if existing == folder:
            with tempfile.TemporaryFile(dir=folder):
                pass
        else:
            with tempfile.TemporaryDirectory(dir=existing):
                pass
    except OSError as exc:
        raise ValueError(f"cannot write into {folder}: {exc.strerror or exc}; pass another folder") from None


def refuse_clashes(folder: Path, names: tuple[str, ...], what: str) -> None:
    """Raise ValueError if ``folder`` already holds any of ``names``: another command's (or an earlier
    run's) files, which writing ``what`` there would overwrite."""
    found = [name for name in names if (folder / name).exists()]
    if found:
        raise ValueError(f"{folder} already holds {', '.join(found)}; writing {what} there would overwrite "
                         f"{'them' if len(found) > 1 else 'it'}: pass another folder, or delete it first")


def hidden_layers(text: str) -> tuple[int, ...]:
    """``512,256`` -> ``(512, 256)``; the empty string -> no hidden layer."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    try:
        return tuple(positive_int(part) for part in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected hidden layer sizes like 512,256 (or '' for none), got {text!r}") from None


def subset_sizes(text: str) -> tuple[int, int, int] | tuple[()]:
    """``TRAIN,VAL,TEST`` sample counts, e.g. ``5000,1000,1000``; ``all`` -> ``()`` (every sample)."""
    if text.strip().lower() == "all":
        return ()
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"expected TRAIN,VAL,TEST sample counts like 5000,1000,1000 (or 'all'), got {text!r}")
    return tuple(positive_int(part) for part in parts)  # type: ignore[return-value]


def dataset(text: str) -> str:
    """A registered data set name, in its canonical spelling."""
    try:
        return get_spec(text).name
    except DataError:
        raise argparse.ArgumentTypeError(
            f"unknown data set {text!r}; choose one of {', '.join(dataset_names())}") from None


def backend_name(text: str) -> str:
    """``auto``, a backend name, or ``name:device`` (``torch:cuda:0``)."""
    name = text.strip().lower().replace("-", "_").partition(":")[0]
    if name not in (*BACKEND_NAMES, "auto"):
        raise argparse.ArgumentTypeError(
            f"unknown backend {text!r}; choose auto, {', '.join(BACKEND_NAMES)} (optionally name:device)")
    return text.strip()


def add_data_options(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", type=dataset, default=default, metavar="NAME",
                       help=f"a data set: {', '.join(dataset_names())}"
                       + (f" (default: {default}, shipped with the package)" if default else ""))
    group.add_argument("--data-dir", metavar="DIR",
                       help="a folder searched first for the data set's files (then $NNBACKEND_DATA, the cache, ...)")
    group.add_argument("--split", choices=SPLITS, default=None,
                       help="paper: pool train+test, shuffle (--split-seed), 80/10/10 (default); "
                       "official: the official test set, a shuffled 10%% of train as validation")
    group.add_argument("--split-seed", type=non_negative_int, default=None, metavar="SEED",
                       help="the seed of the split's shuffle (default: 42, the paper's)")
    group.add_argument("--subset", type=subset_sizes, metavar="TRAIN,VAL,TEST",
                       help="use only the first TRAIN/VAL/TEST samples of each part ('all': every sample)")


def add_backend_options(parser: argparse.ArgumentParser, *, dtype_default: str | None = "float32") -> None:
    group = parser.add_argument_group("where to run")
    group.add_argument("--backend", type=backend_name, default=None, metavar="NAME",
                       help="auto (CuPy when a CUDA device is usable, else NumPy), "
                       f"{', '.join(BACKEND_NAMES)}, or name:device; default: $NNBACKEND_BACKEND, else auto")
    group.add_argument("--dtype", choices=FLOAT_DTYPES, default=dtype_default,
                       help="float dtype" + (f" (default: {dtype_default})" if dtype_default else ""))


def requested_backend(value: str | None) -> str:
    """The backend asked for: the option, else ``$NNBACKEND_BACKEND``, else ``auto``."""
    import os

    from ..backend import ENV_VAR

    if value:
        return value
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        try:
            return backend_name(from_env)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"${ENV_VAR}: {exc}") from None
    return "auto"
