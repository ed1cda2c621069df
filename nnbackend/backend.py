"""Where arrays live: the :class:`Backend` object, the selector, and transfers to and from the host.

A backend is a namespace (``xp``, wrapped by ``array-api-compat`` where the library needs it), a device on
it and a default float dtype. It is owned by a model and used only where no array exists yet (creating
parameters, moving data); everything else infers its namespace from the arrays it is given.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import platform
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "machine",
    "Backend",
    "BackendInfo",
    "BackendUnavailableError",
    "BACKEND_NAMES",
    "available_backends",
    "get_backend",
    "namespace_of",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "torch", "array_api_strict")
ENV_VAR = "NNBACKEND_BACKEND"

INSTALL_HINTS = {
    "numpy": 'pip install "nnbackend"',
    "cupy": 'pip install "nnbackend[cuda12]" (CUDA 12) or "nnbackend[cuda13]" (CUDA 13)',
    "torch": ('pip install "nnbackend[torch]" (on Linux that is the CUDA build; for the CPU-only one: pip '
              'install torch --index-url https://download.pytorch.org/whl/cpu)'),
    "array_api_strict": 'pip install "nnbackend[test]" (or: pip install array-api-strict)',
}

FLOAT_DTYPES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """The requested backend is not installed or has no usable device."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """An array library, a device on it and a default float dtype.

    Attributes:
        name: one of ``BACKEND_NAMES``.
        xp: the Array-API namespace (for NumPy, CuPy and PyTorch the ``array_api_compat`` wrapper).
        device: the device arrays are created on, in the library's own spelling.
        dtype: the default float dtype, an ``xp`` dtype object.
        note: why this backend was chosen (for ``"auto"``); not part of equality.
    """

    name: str
    xp: ModuleType = dataclasses.field(repr=False)
    device: Any
    dtype: Any
    note: str = dataclasses.field(default="", compare=False, repr=False)

    @property
    def dtype_name(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return "float64" if self.dtype == self.xp.float64 else "float32"

    def with_dtype(self, dtype: str) -> Backend:
        """The same library and device with another default float dtype."""
        return dataclasses.replace(self, dtype=_float_dtype(self.xp, dtype))

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Move ``x`` (host NumPy data, Python numbers or an array of this backend) onto this device.

        Floating-point data is cast to ``dtype`` (default: the backend's float dtype); integer and boolean
        data keep their kind (labels stay integers), widened to int64 for integers.
        """
        xp = self.xp
        if dtype is None:
            kind = _dtype_kind(x)
            if kind == "f":
                dtype = self.dtype
            elif kind in "iu":
                dtype = xp.int64
        elif isinstance(dtype, str):
            dtype = getattr(xp, dtype)
        if isinstance(x, np.ndarray) and self.name != "numpy":
            x = np.asarray(x, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        return xp.asarray(x, dtype=dtype, device=self.device)

    @property
    def device_name(self) -> str:
        """The device as a short string: ``cpu``, ``cuda:0``, ``device1``."""
        return _device_name(self.device)

    @property
    def placement(self) -> tuple[str, str, str]:
        """``(name, device, dtype)``: where arrays of this backend live and in which precision."""
        return self.name, self.device_name, self.dtype_name

    def describe(self) -> str:
        """A one-line description, e.g. ``numpy 2.1.0 on cpu, float32``."""
        return f"{self.name} {_library_version(self.name)} on {self.device_name}, {self.dtype_name}"

    def __str__(self) -> str:
        return f"{self.name}:{self.device_name} ({self.dtype_name})"


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What :func:`available_backends` reports about one backend."""

    name: str
    version: str | None
    devices: tuple[str, ...]
    usable: bool
    reason: str
    install_hint: str


def _device_name(device: Any) -> str:
    text = str(device)
    if text.startswith("<CUDA Device"):  # cupy.cuda.Device
        return f"cuda:{device.id}"
    if "Device(" in text and "'" in text:  # array_api_strict.Device('device1')
        return text.split("'")[1]
    return text


def _dtype_kind(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "b"
    if isinstance(x, (int, np.integer)):
        return "i"
    if isinstance(x, (float, np.floating)):
        return "f"
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.asarray(x).dtype.kind
    if isinstance(dtype, np.dtype):
        return dtype.kind
    name = str(dtype)
    if "float" in name:
        return "f"
    if "int" in name:
        return "u" if "uint" in name else "i"
    if "bool" in name:
        return "b"
    return "c" if "complex" in name else "O"


def _float_dtype(xp: ModuleType, dtype: Any) -> Any:
    if isinstance(dtype, str):
        if dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be one of {FLOAT_DTYPES}, got {dtype!r}")
        return getattr(xp, dtype)
    if dtype == xp.float32 or dtype == xp.float64:
        return dtype
    raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")


def _library_version(name: str) -> str:
    module = {"array_api_strict": "array_api_strict"}.get(name, name)
    try:
        return importlib.import_module(module).__version__
    except Exception:  # noqa: BLE001 - a missing library simply has no version
        return "?"


def _import_library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {name!r} is not installed ({exc}); install it with: {INSTALL_HINTS[name]}"
        ) from exc


def _cuda_device_count(cupy: ModuleType) -> int:
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - any CUDA runtime failure means "no device"
        return 0


def _make_numpy(device: Any) -> tuple[ModuleType, Any]:
    if device not in (None, "cpu"):
        raise BackendUnavailableError(f"the numpy backend has only the device 'cpu', not {device!r}")
    return array_api_compat.array_namespace(np.empty(0)), "cpu"


def _make_cupy(device: Any) -> tuple[ModuleType, Any]:
    cupy = _import_library("cupy")
    count = _cuda_device_count(cupy)
    if count == 0:
        raise BackendUnavailableError(
            "backend 'cupy' is installed but no CUDA device is usable (no GPU, or the driver/runtime "
            "does not match the installed cupy-cudaXXx wheel); check `nvidia-smi` and "
            f"{INSTALL_HINTS['cupy']}"
        )
    if isinstance(device, cupy.cuda.Device):
        device = device.id
    try:
        index = 0 if device in (None, "cuda") else int(str(device).removeprefix("cuda:"))
    except ValueError:
        raise ValueError(f"a CUDA device is 'cuda', 'cuda:N' or an index, got {device!r}") from None
    if not 0 <= index < count:
        raise BackendUnavailableError(f"CUDA device {index} does not exist ({count} device(s) found)")
    with cupy.cuda.Device(index):
        xp = array_api_compat.array_namespace(cupy.empty(0))
    return xp, cupy.cuda.Device(index)


def _make_torch(device: Any) -> tuple[ModuleType, Any]:
    torch = _import_library("torch")
    dev = torch.device(device or "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "torch is installed but CUDA is not available to it; use device='cpu' or install a CUDA build"
        )
    if dev.type == "cuda" and dev.index is None:
        # Tensors on a GPU always name their index ("cuda:0"); so must the backend, or device checks fail.
        dev = torch.device("cuda", torch.cuda.current_device())
    return array_api_compat.array_namespace(torch.empty(0)), dev


def _make_array_api_strict(device: Any) -> tuple[ModuleType, Any]:
    strict = _import_library("array_api_strict")
    try:
        return strict, strict.Device(device or "CPU_DEVICE")
    except ValueError:
        names = ", ".join(_device_name(d) for d in strict.__array_namespace_info__().devices())
        raise ValueError(f"array_api_strict has no device {device!r}; its devices are {names}") from None


_FACTORIES = {
    "numpy": _make_numpy,
    "cupy": _make_cupy,
    "torch": _make_torch,
    "array_api_strict": _make_array_api_strict,
}


def get_backend(
    name: str | Backend | None = None, *, device: Any = None, dtype: str | None = None
) -> Backend:
    """Return the backend called ``name``.

    Args:
        name: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"`` or ``"auto"`` (CuPy when a CUDA
            device is usable, else NumPy). ``"name:device"`` selects a device too (``"torch:cuda:0"``,
            ``"array_api_strict:device1"``). Defaults to ``$NNBACKEND_BACKEND``, else ``"auto"``.
            A :class:`Backend` is returned as it is (with ``dtype`` applied if it differs).
        device: the device, in the library's spelling. Defaults to the library's first device. (CuPy
            other than on its current device, GPU 0 by default, is not yet supported: see README.)
        dtype: the default float dtype, ``"float32"`` or ``"float64"``. Defaults to float32, or to the
            given Backend's own dtype.

    Raises:
        BackendUnavailableError: the library is not installed or has no usable device; the message says
            which ``pip install`` fixes it.
        ValueError: an unknown name or dtype.
    """
    if isinstance(name, Backend):
        return name if dtype in (None, name.dtype_name) else name.with_dtype(dtype)
    dtype = dtype or "float32"
    source = ""
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
        source = f" (from ${ENV_VAR})" if os.environ.get(ENV_VAR) else ""
    name, _, named_device = name.strip().partition(":")
    name = name.lower().replace("-", "_")
    if named_device and device is None:
        # array_api_strict's device names are case-sensitive (CPU_DEVICE, device1); the others are not.
        device = named_device if name == "array_api_strict" else named_device.lower()
    note = ""
    if name == "auto":
        try:
            xp, dev = _make_cupy(device)
            name, note = "cupy", "auto: a CUDA device is usable, using cupy"
        except BackendUnavailableError as exc:
            xp, dev = _make_numpy(None)
            name, note = "numpy", f"auto: using numpy; {exc.args[0].split(';')[0]}"
    elif name in _FACTORIES:
        xp, dev = _FACTORIES[name](device)
    else:
        raise ValueError(f"unknown backend {name!r}{source}; choose one of {', '.join(BACKEND_NAMES)} or 'auto'")
    return Backend(name=name, xp=xp, device=dev, dtype=_float_dtype(xp, dtype), note=note)


def _devices(name: str) -> tuple[str, ...]:
    if name == "numpy":
        return ("cpu",)
    if name == "cupy":
        cupy = importlib.import_module("cupy")
        out = []
        for i in range(_cuda_device_count(cupy)):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            out.append(f"cuda:{i} ({gpu})")
        return tuple(out)
    if name == "torch":
        torch = importlib.import_module("torch")
        cuda = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        return ("cpu", *cuda)
    strict = importlib.import_module("array_api_strict")
    return tuple(_device_name(d) for d in strict.__array_namespace_info__().devices())


def available_backends() -> list[BackendInfo]:
    """Every backend nnbackend knows, with its version, devices and whether it works here."""
    infos = []
    for name in BACKEND_NAMES:
        try:
            backend = get_backend(name)
            x = backend.asarray(np.arange(4.0))
            ok = float(backend.xp.sum(x * x)) == 14.0
            infos.append(
                BackendInfo(name, _library_version(name), _devices(name), ok,
                            "works" if ok else "a smoke computation gave a wrong result", INSTALL_HINTS[name])
            )
        except BackendUnavailableError as exc:
            version = _library_version(name)
            infos.append(
                BackendInfo(name, None if version == "?" else version, (), False, str(exc), INSTALL_HINTS[name])
            )
        except Exception as exc:  # noqa: BLE001 - a broken install is reported, not fatal to the listing
            infos.append(BackendInfo(name, _library_version(name), (), False,
                                     f"{type(exc).__name__}: {exc}", INSTALL_HINTS[name]))
    return infos


_NAMESPACES: dict[type, ModuleType] = {}


def namespace_of(*arrays: Any) -> ModuleType:
    """The Array-API namespace of ``arrays`` (cached per array type: this runs in every layer call)."""
    kind = type(arrays[0])
    xp = _NAMESPACES.get(kind)
    if xp is None:
        xp = array_api_compat.array_namespace(arrays[0])
        _NAMESPACES[kind] = xp
    return xp


def to_numpy(x: Any) -> np.ndarray:
    """Copy (or view, for NumPy) any backend's array onto the host as a NumPy array."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_array_api_strict_namespace(array_api_compat.array_namespace(x)):
        import array_api_strict

        return np.asarray(array_api_strict.asarray(x, device=array_api_strict.Device("CPU_DEVICE"), copy=True))
    return np.from_dlpack(x)


def machine() -> dict[str, Any]:
    """The host, for the records runs, the grid and the parity matrix write: platform, processor, core
    count, Python and NumPy versions."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
