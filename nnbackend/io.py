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
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Backend
from .files import atomic_file
from .layers import LAYERS, layer_from_config
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
    """``path`` with ``.npz`` appended unless it ends so (in any case, ``.NPZ`` too): the file
    :func:`write_file` writes."""
    path = Path(path)
    return path if path.suffix.lower() == ".npz" else path.with_name(path.name + ".npz")


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
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, path)
            if _META not in members:
                raise CheckpointError(f"{path}: not an nnbackend file (no {_META} record)")
            if members[_META].file_size > _MAX_META_BYTES:
                raise CheckpointError(f"{path}: its metadata is {members[_META].file_size:,} bytes, more than an "
                                      "nnbackend file holds (tampered?)")
            meta = json.loads(_read_npy(archive, members[_META], path).tobytes().decode())
            _check_meta(meta, path, kind, set(members) - {_META})
            arrays = {name: _read_npy(archive, info, path) for name, info in members.items() if name != _META}
    except CheckpointError:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:  # (before RuntimeError, RecursionError's base)
        raise CheckpointError(f"{path}: its metadata is not valid JSON ({type(exc).__name__})") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    sums = meta["sha256"]
    for name, value in arrays.items():
        if _digest(value) != sums[name]:
            raise CheckpointError(f"{path}: checksum mismatch in {name!r}: the file was modified or damaged")
    return meta, arrays


_MAX_META_BYTES = 16 * 2**20


def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's ``.npy`` members by array name, refusing what ``np.savez`` never writes: compressed
    or encrypted members (a compressed one can inflate far beyond the file: a "zip bomb"), other files,
    duplicate names."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or info.flag_bits & 0x1 or info.compress_type != zipfile.ZIP_STORED \
                or info.file_size != info.compress_size or info.filename[:-4] in members:
            raise CheckpointError(f"{path}: member {info.filename!r} is not one nnbackend writes (compressed, "
                                  "encrypted, duplicated or not an array): refused")
        members[info.filename[:-4]] = info
    return members


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One ``.npy`` member, after checking that the size its header announces fits the member and that
    it holds plain numbers (no pickled objects)."""
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise CheckpointError(f"{path}: {info.filename} uses .npy format {version}, which nnbackend does not write")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        if dtype.hasobject:
            raise CheckpointError(f"{path}: refusing to load pickled objects in {info.filename} (a file that could run code)")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise CheckpointError(f"{path}: {info.filename} announces {shape} {dtype} but holds {info.file_size:,} "
                                  "bytes (tampered or damaged)")
    with archive.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _check_meta(meta: Any, path: Path, kind: str | None, names: set[str]) -> None:
    """The metadata must be an nnbackend record of the expected kind whose checksum table lists exactly
    the archive's arrays."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nnbackend file")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta.get('version')} is not supported (this is {FORMAT_VERSION})")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {meta.get('kind')}, not a {kind}")
    sums = meta.get("sha256")
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()) or set(sums) != names:
        raise CheckpointError(f"{path}: its arrays do not match its table of contents (tampered?)")


def model_record(model: Sequential) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The model's architecture (JSON) and state (arrays named ``model/<name>``)."""
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    return {"model": model.get_config()}, arrays


def model_from_record(meta: dict[str, Any], arrays: dict[str, np.ndarray], *, backend: str | Backend | None = None,
                      dtype: str | None = None, source: str = "file") -> Sequential:
    """Rebuild a model from :func:`model_record`'s output on ``backend``; the arrays are checked against
    the architecture before any of it is allocated (a file cannot make the loader build a giant model)."""
    state = {name.removeprefix("model/"): value for name, value in arrays.items() if name.startswith("model/")}
    try:
        _check_declared_shapes(meta["model"], state, source)
        model = Sequential.from_config(meta["model"], backend=backend, dtype=dtype)
    except (KeyError, TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{source}: its model architecture cannot be rebuilt ({exc})") from exc
    try:
        model.load_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{source}: its weights do not fit its architecture ({exc})") from exc
    return model


def _check_declared_shapes(config: dict[str, Any], state: dict[str, np.ndarray], source: str) -> None:
    """Each layer's parameter and buffer shapes, inferred from the recorded architecture without building
    it, must be those of the stored arrays."""
    shape = tuple(config["input_shape"])
    for i, entry in enumerate(config["layers"]):
        layer = layer_from_config(entry)
        for key, want in layer.state_shapes(shape).items():
            got = state.get(f"{i}.{key}")
            if got is None or tuple(got.shape) != tuple(want):
                found = "missing" if got is None else f"stored as {tuple(got.shape)}"
                raise CheckpointError(f"{source}: its weights do not fit its architecture ({i}.{key} should be "
                                      f"{tuple(want)}, {found})")
        shape = tuple(layer.compute_output_shape(shape))


def save_model(model: Sequential, path: str | Path) -> Path:
    """Save the architecture and weights of ``model`` to ``path`` (``.npz`` is appended if missing).

    Returns the path written. The write is atomic.

    Raises:
        ValueError: the model holds a layer or activation of one's own, which :func:`load_model` could
            not rebuild (nothing is written).
    """
    foreign = [f"layer {i} ({type(part).__name__})" for i, layer in enumerate(model.layers)
               for part in (layer, *layer.children())
               if type(part) not in LAYERS.values()]
    if foreign:
        raise ValueError(
            f"cannot save this model: {', '.join(foreign)} is not one of nnbackend's layers, so load_model "
            "could not rebuild it; save the weights instead (np.savez(path, **model.state_dict())) and, after "
            "building the model in code, load them with model.load_state_dict(dict(np.load(path)))"
        )
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
