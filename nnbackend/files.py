"""Writing files so that a reader never sees half of one and a link never redirects one.

Every file nnbackend writes (models, checkpoints, run records, reports, figures, downloads) is written
to a temporary file in the target's folder and then renamed over the target: a crash leaves the old
file or none, never a truncated one, and a symbolic link planted at the target is replaced, not
followed. Text is UTF-8 whatever the locale (undecodable bytes from a command line pass through).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "check_file_path", "replace_file", "write_text"]


def check_file_path(path: str | Path, example: str = "name.ext") -> Path:
    """``path`` as a ``Path``, or a ``ValueError`` when it names an existing folder (a file cannot
    replace it) suggesting ``path / example`` instead; call it before the work whose result goes to
    ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a file name such as {path / example}")
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (``"wb"``, or ``"w"`` for UTF-8 text); when the block ends
    without an error it is flushed to disk, given the usual file mode and renamed to ``path``.

    Raises:
        ValueError: ``path`` is a folder (see :func:`check_file_path`); nothing is written.
    """
    path = check_file_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    text = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""} if "b" not in mode else {}
    try:
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; saved files get the usual mode
        except OSError:  # a file system without modes (FAT, some network shares)
            pass
        replace_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` as UTF-8, atomically."""
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def replace_file(source: str | Path, target: str | Path) -> None:
    """``os.replace``, retried briefly on Windows, where a reader, a virus scanner or a sync client
    holding ``target`` open makes it fail for a moment."""
    for attempt in range(6):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 5:
                raise
            time.sleep(0.05 * 2**attempt)


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
