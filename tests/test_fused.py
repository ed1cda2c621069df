"""The compiled kernels (nnbackend/_fused.c: Adam, Dense bias + ReLU, ReLU's mask): bit for bit NumPy's
chains of passes, used where they can be, and never in the way where they cannot (not built, turned off, a
stale build, arrays a kernel does not take)."""

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


@pytest.mark.parametrize("problem", ["float16", "mixed dtypes", "not contiguous", "read-only state", "other shape",
                                     "state sharing memory"])
def test_arrays_the_kernel_does_not_take_are_left_to_numpy(problem, fused_kernels):
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
    elif problem == "state sharing memory":
        v = m
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
    for setting in ("0", "off", "False"):
        monkeypatch.setenv(fused.ENV_VAR, setting)
        monkeypatch.setattr(fused, "_kernels", fused._UNSET)
        assert fused.available() is False
        assert fused.describe() == f"off: {fused.ENV_VAR}={setting}"
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


def test_the_c_module_checks_the_relu_buffers(fused_kernels):
    z = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match="not whole rows"):
        fused_kernels.bias_relu_float32(z, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="not whole rows"):
        fused_kernels.bias_relu_float32(z, np.ones(0, np.float32))
    with pytest.raises(ValueError, match="relu_mask: array 1 has"):
        fused_kernels.relu_mask_float32(z, np.ones(23, np.float32))
    np.testing.assert_array_equal(z, 1)


def same_bits(a, b):
    """Equal values, NaNs in the same places, and zeros of the same sign (a NaN's sign bit means nothing)."""
    np.testing.assert_array_equal(a, b)
    numbers = ~np.isnan(a)
    assert a.dtype == b.dtype and (np.signbit(a[numbers]) == np.signbit(b[numbers])).all()


def awkward(shape, dtype, rng):
    """Random values with the cases where a kernel could differ from NumPy: NaN, +-inf, +-0."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[: min(6, flat.size)] = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40], dtype)[: min(6, flat.size)]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 512), (7, 3), (1, 1), (2, 3, 5)])
def test_bias_relu_is_bit_identical_to_numpys_add_and_maximum(shape, dtype, fused_kernels):
    rng = np.random.default_rng(4)
    z, bias = awkward(shape, dtype, rng), awkward(shape[-1:], dtype, rng)
    z.reshape(-1)[-1] = -bias[-1]  # z + b exactly 0
    expected = z.copy()
    with np.errstate(invalid="ignore"):  # inf + -inf
        expected += bias
    np.maximum(expected, 0, out=expected)
    assert fused.bias_relu(z, bias) is True
    same_bits(z, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 512), (7, 3), (1,), (2, 3, 5)])
def test_relu_mask_is_bit_identical_to_numpys_multiply_by_the_mask(shape, dtype, fused_kernels):
    rng = np.random.default_rng(5)
    grad, y = awkward(shape, dtype, rng), awkward(shape, dtype, rng)
    y.reshape(-1)[-1] = -0.0
    with np.errstate(invalid="ignore"):  # inf * 0
        expected = grad * (y > 0)
    assert fused.relu_mask(grad, y) is True
    same_bits(grad, expected)


@pytest.mark.parametrize("problem", ["float16", "mixed dtypes", "not contiguous", "read-only", "wrong width",
                                     "2-D bias", "misaligned", "overlapping"])
def test_arrays_the_relu_kernels_do_not_take_are_left_to_numpy(problem, fused_kernels):
    z, bias, y = np.ones((4, 6), np.float32), np.ones(6, np.float32), np.ones((4, 6), np.float32)
    if problem == "float16":
        z, bias, y = z.astype(np.float16), bias.astype(np.float16), y.astype(np.float16)
    elif problem == "mixed dtypes":
        bias, y = bias.astype(np.float64), y.astype(np.float64)
    elif problem == "not contiguous":
        z = np.ones((6, 4), np.float32).T
    elif problem == "read-only":
        z.flags.writeable = False
    elif problem == "wrong width":
        bias, y = np.ones(4, np.float32), np.ones((6, 4), np.float32)
    elif problem == "misaligned":
        z = np.frombuffer(bytearray(4 * 24 + 1), np.float32, 24, offset=1).reshape(4, 6)
        assert not z.flags.aligned
    elif problem == "overlapping":
        z = np.arange(-12, 12, dtype=np.float32).reshape(4, 6)
        bias, y = z[1], z  # NumPy adds the whole bias row first; a loop would read rows it has changed
    elif problem == "2-D bias":
        bias = np.ones((1, 6), np.float32)
    before = z.copy()
    assert fused.bias_relu(z, bias) is False
    if problem != "2-D bias":
        assert fused.relu_mask(z, y) is False
    np.testing.assert_array_equal(z, before)


def train_a_few_steps(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 20)).astype(np.float32)
    labels = rng.integers(0, 5, 64)
    model = nb.models.mlp(20, (32, 16), 5, backend="numpy", seed=seed)
    nb.Trainer(model, "cross_entropy", O.Adam(0.01), max_rows=24).fit(x, labels, epochs=3, batch_size=48,
                                                                       verbose=0)
    return model.parameters(), model.predict_on_device(x)


def test_training_with_the_kernels_gives_exactly_the_numpy_paths_model(fused_kernels, monkeypatch):
    ran = {"bias_relu": 0, "relu_mask": 0, "adam_step": 0}  # calls the kernels took (not fell back from)

    def counted(name, real):
        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            ran[name] += result is not None and result is not False
            return result
        return call

    for name in ran:
        monkeypatch.setattr(fused, name, counted(name, getattr(fused, name)))
    params, outputs = train_a_few_steps()
    assert all(ran.values()), ran  # every kernel ran (slices of 24 rows: whole batches and slices)
    monkeypatch.setattr(fused, "_kernels", None)  # now NumPy's chains
    numpy_params, numpy_outputs = train_a_few_steps()
    for name, value in numpy_params.items():
        same_bits(params[name], value)
    same_bits(outputs, numpy_outputs)


def test_an_activation_with_its_own_one_argument_forward_owned_still_works_in_dense():
    class Doubled(nb.layers.Tanh):  # a user's layer, written against forward_owned(x)
        def forward_owned(self, x):
            return self.forward(2 * x)

    layer = nb.Sequential([nb.layers.Dense(3, 2, activation=Doubled())], backend="numpy", seed=0)
    x = np.ones((4, 3), np.float32)
    params = layer.parameters()
    expected = np.tanh(2 * (x @ params["0.weight"] + params["0.bias"]))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6)
