"""The fused Adam pass (nnbackend/_fused.c): bit for bit NumPy's multi-pass chain, used where it can be, and
never in the way where it cannot (not built, turned off, a stale build, arrays it does not take)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import fused
from nnbackend import optimizers as O


def numpy_chain(p, g, m, v, b1, b2, eps, step_size, root_correction):
    """Adam's NumPy in-place path, written out: the reference the kernel must match exactly."""
    m *= b1
    m += g * (1 - b1)
    v *= b2
    work = g * g
    work *= 1 - b2
    v += work
    work = np.sqrt(v)
    work /= root_correction
    work += eps
    work = m / work
    work *= step_size
    return p - work


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernel_is_bit_identical_to_the_numpy_chain(dtype, fused_kernels):
    rng = np.random.default_rng(3)
    p = rng.standard_normal(4099).astype(dtype)  # not a multiple of any vector width
    g_scale = np.logspace(-18, 18, p.size).astype(dtype)  # subnormal to huge squares; zeros below
    m, v = np.zeros_like(p), np.zeros_like(p)
    m_ref, v_ref, p_ref = m.copy(), v.copy(), p.copy()
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.005
    for t in range(1, 21):
        g = (rng.standard_normal(p.size) * g_scale).astype(dtype)
        g[:7] = 0
        step_size, root_correction = lr / (1 - b1**t), math.sqrt(1 - b2**t)
        new = fused.adam_step(p, g, m, v, beta1=b1, beta2=b2, eps=eps, step_size=step_size,
                              root_correction=root_correction)
        p_ref = numpy_chain(p_ref, g, m_ref, v_ref, b1, b2, eps, step_size, root_correction)
        assert new is not None and new is not p and new.dtype == dtype
        np.testing.assert_array_equal(new, p_ref)
        np.testing.assert_array_equal(m, m_ref)
        np.testing.assert_array_equal(v, v_ref)
        p = new
    assert np.isfinite(p).all()


def test_adam_takes_the_fused_pass_on_numpy(adam_path, monkeypatch):
    calls = []
    real = fused.adam_step
    monkeypatch.setattr(fused, "adam_step", lambda *a, **k: calls.append(real(*a, **k)) or calls[-1])
    model = nb.Sequential([nb.layers.Dense(5, 4, activation="relu"), nb.layers.Dense(4, 3)],
                          backend="numpy", dtype="float32", seed=0)
    before = model.parameters()["0.weight"].copy()
    x, y = np.ones((6, 5), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    model.backward(nb.losses.MSE().gradient(model.forward(x), y))
    O.Adam(0.01).step(model)
    assert len(calls) == 4  # two weights, two biases
    fused_ran = [c is not None for c in calls]
    assert fused_ran == [adam_path == "fused"] * 4
    assert not np.array_equal(model.parameters()["0.weight"], before)


@pytest.mark.parametrize("problem", ["float16", "mixed dtypes", "not contiguous", "read-only state", "other shape"])
def test_arrays_the_kernel_does_not_take_are_left_to_numpy(problem, adam_path):
    p = np.ones((4, 6), np.float32)
    g, m, v = np.full_like(p, 0.5), np.zeros_like(p), np.zeros_like(p)
    if problem == "float16":
        p, g, m, v = (a.astype(np.float16) for a in (p, g, m, v))
    elif problem == "mixed dtypes":
        g = g.astype(np.float64)
    elif problem == "not contiguous":
        p, g, m, v = (np.asfortranarray(a) for a in (p, g, m, v))
    elif problem == "read-only state":
        v.flags.writeable = False
    elif problem == "other shape":
        g = g.reshape(6, 4)
    m_before = m.copy()
    assert fused.adam_step(p, g, m, v, beta1=0.9, beta2=0.999, eps=1e-8, step_size=0.01,
                           root_correction=0.03) is None
    np.testing.assert_array_equal(m, m_before)  # nothing written


def test_other_libraries_are_left_alone(fused_kernels):
    torch = pytest.importorskip("torch")
    t = torch.ones(3)
    assert fused.adam_step(t, t, t.clone(), t.clone(), beta1=0.9, beta2=0.999, eps=1e-8, step_size=0.01,
                           root_correction=0.03) is None


def test_the_environment_variable_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv(fused.ENV_VAR, "0")
    monkeypatch.setattr(fused, "_kernels", fused._UNSET)
    assert fused.available() is False
    assert fused.describe() == f"off: {fused.ENV_VAR}=0"
    p = np.ones(3, np.float32)
    assert fused.adam_step(p, p, p.copy(), p.copy(), beta1=0.9, beta2=0.999, eps=1e-8, step_size=0.01,
                           root_correction=0.03) is None


def test_without_the_built_module_the_numpy_path_runs_silently(monkeypatch, recwarn):
    monkeypatch.delenv(fused.ENV_VAR, raising=False)
    monkeypatch.setattr(fused, "_kernels", fused._UNSET)
    monkeypatch.setitem(sys.modules, "nnbackend._fused", None)  # import raises ImportError
    assert fused.available() is False
    assert "the C module was not built" in fused.describe()
    assert not recwarn.list
    p = np.ones(3, np.float32)
    assert fused.adam_step(p, p, p.copy(), p.copy(), beta1=0.9, beta2=0.999, eps=1e-8, step_size=0.01,
                           root_correction=0.03) is None


def test_a_stale_build_is_reported_once_and_not_used(fused_kernels, monkeypatch):
    monkeypatch.setattr(fused, "_kernels", fused._UNSET)
    monkeypatch.setattr(fused, "KERNELS_VERSION", fused_kernels.KERNELS_VERSION + 1)
    with pytest.warns(RuntimeWarning, match="rebuild it.*NumPy's slower multi-pass path"):
        assert fused.available() is False
    assert fused.available() is False  # decided once per process: no second warning
    assert "rebuild it" in fused.describe()


@pytest.mark.parametrize("bad", ["short output", "read-only moments", "not contiguous", "not a buffer"])
def test_the_c_module_checks_its_buffers(fused_kernels, bad):
    arrays = [np.ones(8, np.float32) for _ in range(5)]
    error = ValueError
    if bad == "short output":
        arrays[4] = np.ones(7, np.float32)
    elif bad == "read-only moments":
        arrays[2].flags.writeable = False
        error = (TypeError, BufferError)
    elif bad == "not contiguous":
        arrays[3] = np.ones(16, np.float32)[::2]
        error = (TypeError, BufferError, ValueError)
    else:
        arrays[0] = [1.0] * 8
        error = TypeError
    with pytest.raises(error):
        fused_kernels.adam_float32(*arrays, 0.9, 0.1, 0.999, 0.001, 0.03, 1e-8, 0.01)
    assert all((a == 1).all() for a in arrays[2:] if isinstance(a, np.ndarray))  # nothing written
