"""The backend selector, the listing and host transfer."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackend as nb
from nnbackend.backend import BACKEND_NAMES


def test_numpy_backend_and_dtypes():
    b = nb.get_backend("numpy")
    assert (b.name, b.device_name, b.dtype_name) == ("numpy", "cpu", "float32")
    assert nb.get_backend("numpy", dtype="float64").dtype_name == "float64"
    assert b.asarray(np.arange(3.0)).dtype == np.float32
    assert b.asarray(np.arange(3)).dtype == np.int64  # labels stay integers


def test_auto_says_what_it_picked(monkeypatch):
    monkeypatch.delenv("NNBACKEND_BACKEND", raising=False)
    b = nb.get_backend()
    cupy_usable = any(info.name == "cupy" and info.usable for info in nb.available_backends())
    assert b.name == ("cupy" if cupy_usable else "numpy")
    assert b.note.startswith(f"auto: {'a CUDA device is usable, using cupy' if cupy_usable else 'using numpy'}")


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("NNBACKEND_BACKEND", "numpy")
    assert nb.get_backend().name == "numpy"
    monkeypatch.setenv("NNBACKEND_BACKEND", "array_api_strict:device1")
    pytest.importorskip("array_api_strict")
    assert nb.get_backend().device_name == "device1"


def test_backend_names_ignore_case_but_device_names_of_array_api_strict_keep_it():
    pytest.importorskip("array_api_strict")
    assert nb.get_backend("NumPy:CPU").name == "numpy"
    assert nb.get_backend("array_api_strict:CPU_DEVICE").device_name == "CPU_DEVICE"
    with pytest.raises(ValueError, match="array_api_strict has no device 'cpu'; its devices are CPU_DEVICE, device1"):
        nb.get_backend("array_api_strict:cpu")


@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict:device1"])
def test_a_zero_dimensional_host_array_stays_zero_dimensional(name):
    pytest.importorskip(name.split(":")[0])
    assert tuple(nb.get_backend(name).asarray(np.array(2.5)).shape) == ()


def test_unknown_name_and_dtype_are_rejected():
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        nb.get_backend("jax")
    with pytest.raises(ValueError, match="dtype must be one of"):
        nb.get_backend("numpy", dtype="float16")
    with pytest.raises(nb.BackendUnavailableError, match="only the device 'cpu'"):
        nb.get_backend("numpy", device="cuda")


def test_unusable_cupy_says_which_install_fixes_it():
    try:
        import cupy  # noqa: F401
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a CUDA device is usable here")
    except Exception:  # noqa: BLE001 - not installed or no driver: exactly the case under test
        pass
    with pytest.raises(nb.BackendUnavailableError, match=r'pip install "nnbackend\[cuda12\]"'):
        nb.get_backend("cupy")


def test_available_backends_lists_every_backend_with_a_reason():
    infos = {info.name: info for info in nb.available_backends()}
    assert set(infos) == set(BACKEND_NAMES)
    assert infos["numpy"].usable and infos["numpy"].devices == ("cpu",) and infos["numpy"].version
    for info in infos.values():
        assert info.usable or ("install" in info.reason or "device" in info.reason)


@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict:device1"])
def test_to_numpy_round_trip(name):
    try:
        backend = nb.get_backend(name, dtype="float64")
    except nb.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    host = np.arange(6.0).reshape(2, 3)
    out = nb.to_numpy(backend.asarray(host))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, host)


def test_backend_passes_through_and_can_change_dtype():
    b = nb.get_backend("numpy", dtype="float64")
    assert nb.get_backend(b) is b
    assert nb.get_backend(b, dtype="float32").dtype_name == "float32"
