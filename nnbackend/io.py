"""Saving and loading models and training checkpoints: one ``.npz`` file, no pickle, atomic writes.

A file holds named arrays plus one JSON document (``__meta__``) with the format marker, the model's
architecture, the optimizer's hyperparameters and anything else a checkpoint needs, and the SHA-256 of
every array. Loading reads with ``allow_pickle=False`` (nothing in the file can run code), checks the
marker and every checksum, and only then builds anything. Writes go to a temporary file in the same
folder that is renamed over the target at the end: a crash leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Backend
from .files import atomic_file
from .model import Sequential

__all__ = ["FORMAT", "CheckpointError", "load_model", "read_file", "save_model", "write_file"]

FORMAT = "nnbackend"
FORMAT_VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A model or checkpoint file that is missing, truncated, tampered with, or not ours."""


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def write_file(path: str | Path, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write ``arrays`` and ``meta`` (JSON-ready) to ``path`` as a ``kind`` file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a file name such as {path / (kind + '.npz')}")
    path = npz_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which cannot be saved without pickle")
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": kind,
        **meta,
        "sha256": {name: _digest(value) for name, value in arrays.items()},
    }
    payload = {_META: np.frombuffer(json.dumps(document).encode(), dtype=np.uint8), **arrays}
    with atomic_file(path) as fh:
        np.savez(fh, **payload)
    return path


def npz_path(path: str | Path) -> Path:
    """``path`` with ``.npz`` appended unless it ends so: the file :func:`write_file` writes."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def read_file(path: str | Path, kind: str | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a file written by :func:`write_file`: (meta, arrays).

    Raises:
        CheckpointError: missing, truncated or corrupt, not an nnbackend file, the wrong kind, carrying
            pickled objects, or failing a checksum.
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # np.load would return a bare array for .npy, and call any other file a pickle
        what = "a pickle (refused: such a file could run code)" if magic[:1] == b"\x80" else "not a .npz archive"
        raise CheckpointError(f"{path}: not an nnbackend file: {what}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated, corrupt or not an .npz file (no readable zip directory)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise CheckpointError(f"{path}: not an nnbackend file (no {_META} record)")
            meta = json.loads(data[_META].tobytes().decode())
            arrays = {name: data[name] for name in data.files if name != _META}
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CheckpointError(f"{path}: refusing to load pickled objects (a file that could run code)") from exc
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nnbackend file")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta.get('version')} is not supported (this is {FORMAT_VERSION})")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {meta.get('kind')}, not a {kind}")
    sums = meta.get("sha256", {})
    if set(sums) != set(arrays):
        raise CheckpointError(f"{path}: its arrays do not match its table of contents (tampered?)")
    for name, value in arrays.items():
        if _digest(value) != sums[name]:
            raise CheckpointError(f"{path}: checksum mismatch in {name!r}: the file was modified or damaged")
    return meta, arrays


def model_record(model: Sequential) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The model's architecture (JSON) and state (arrays named ``model/<name>``)."""
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    return {"model": model.get_config()}, arrays


def model_from_record(meta: dict[str, Any], arrays: dict[str, np.ndarray], *, backend: str | Backend | None = None,
                      dtype: str | None = None, source: str = "file") -> Sequential:
    """Rebuild a model from :func:`model_record`'s output on ``backend``."""
    try:
        model = Sequential.from_config(meta["model"], backend=backend, dtype=dtype)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: its model architecture cannot be rebuilt ({exc})") from exc
    state = {name.removeprefix("model/"): value for name, value in arrays.items() if name.startswith("model/")}
    try:
        model.load_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{source}: its weights do not fit its architecture ({exc})") from exc
    return model


def save_model(model: Sequential, path: str | Path) -> Path:
    """Save the architecture and weights of ``model`` to ``path`` (``.npz`` is appended if missing).

    Returns the path written. The write is atomic.
    """
    meta, arrays = model_record(model)
    return write_file(path, "model", meta, arrays)


def load_model(path: str | Path, *, backend: str | Backend | None = None, dtype: str | None = None) -> Sequential:
    """Load a model saved by :func:`save_model` (or the model inside a training checkpoint).

    Args:
        path: the file.
        backend: where to put it (any backend, whatever it was saved from). Defaults to the default backend.
        dtype: ``"float32"`` or ``"float64"``. Defaults to the dtype it was saved with.
    """
    meta, arrays = read_file(path)
    if meta.get("kind") not in ("model", "checkpoint"):
        raise CheckpointError(f"{path}: holds a {meta.get('kind')}, not a model")
    return model_from_record(meta, arrays, backend=backend, dtype=dtype, source=str(path))
