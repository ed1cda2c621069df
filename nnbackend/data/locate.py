"""Where data sets are looked for, in order, and how a folder's files are recognised."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nnbackend.data.errors import DataError
from nnbackend.data.registry import DataSetSpec, get_spec

__all__ = ["DATA_ENV", "CACHE_ENV", "DEBIAN_DATASETS", "cache_dir", "search_path", "files_in"]

DATA_ENV = "NNBACKEND_DATA"
"""A folder holding one sub-folder per data set (``mnist/``, ``fashion-mnist/``)."""

CACHE_ENV = "NNBACKEND_CACHE"
"""Overrides :func:`cache_dir`."""

DEBIAN_DATASETS = Path("/usr/share/datasets")
"""Where Debian's ``dataset-*`` packages install data sets, one folder each."""


def cache_dir() -> Path:
    """nnbackend's cache folder, where downloads go; it need not exist.

    ``$NNBACKEND_CACHE`` if set; else ``$XDG_CACHE_HOME/nnbackend`` or ``~/.cache/nnbackend`` on Linux,
    ``~/Library/Caches/nnbackend`` on macOS, ``%LOCALAPPDATA%\\nnbackend\\Cache`` on Windows (what
    ``platformdirs.user_cache_dir("nnbackend", appauthor=False)`` gives).
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "nnbackend" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "nnbackend"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else home / ".cache"
    return base / "nnbackend"


def search_path(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The folders :func:`~nnbackend.data.load` looks in for data set ``name``, first match wins.

    In order: ``data_dir/<name>`` and ``data_dir`` itself, ``$NNBACKEND_DATA/<name>``,
    ``cache_dir()/<name>``, ``/usr/share/datasets/<name>`` for data sets Debian packages, and the copy
    shipped inside nnbackend for those that have one. The folders need not exist.

    Raises:
        DataError: ``name`` is not a registered data set.
    """
    spec = get_spec(name)
    places: list[Path] = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        places += [data_dir / spec.name, data_dir]
    env = os.environ.get(DATA_ENV)
    if env:
        places.append(Path(env).expanduser() / spec.name)
    places.append(cache_dir() / spec.name)
    if spec.debian_package:
        places.append(DEBIAN_DATASETS / spec.name)
    if spec.packaged_dir is not None:
        places.append(spec.packaged_dir)
    return places


def files_in(folder: Path, spec: DataSetSpec) -> dict[str, Path] | None:
    """The data set's files in ``folder``, keyed by base name (raw preferred to ``.gz``).

    Returns:
        ``None`` when the folder holds none of them.

    Raises:
        DataError: the folder holds some of the files but not all.
    """
    found = {}
    for base in spec.files:
        for candidate in (folder / base, folder / f"{base}.gz"):
            if candidate.is_file():
                found[base] = candidate
                break
    if not found:
        return None
    if len(found) < len(spec.files):
        missing = [base for base in spec.files if base not in found]
        raise DataError(
            f"{folder}: incomplete {spec.name}: has {', '.join(p.name for p in found.values())} but not "
            f"{', '.join(missing)} (raw or .gz); add the missing files or remove the folder"
        )
    return found
