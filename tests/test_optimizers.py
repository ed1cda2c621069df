"""Optimizer steps against their documented formulas and against torch.optim from the same start."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import optimizers as O

RNG = np.random.default_rng(0)
P0 = RNG.standard_normal((4, 3))
CURV = np.abs(RNG.standard_normal((4, 3))) + 0.5
SHIFT = RNG.standard_normal((4, 3))


def gradient(p: np.ndarray) -> np.ndarray:
    """Gradient of sum(CURV * p^2 / 2 + SHIFT * p), in p's dtype: depends on p, so every step differs."""
    return (CURV * p + SHIFT).astype(p.dtype, copy=False)


def run(optimizer: O.Optimizer, steps: int = 5, p0: np.ndarray = P0) -> np.ndarray:
    start = p0.copy()
    start.flags.writeable = p0.flags.writeable  # a read-only start keeps the functional path
    params = {"p": start}
    for _ in range(steps):
        params = optimizer.update(params, {"p": gradient(params["p"])})
    return params["p"]


# Hand-written from the algorithms as torch.optim documents them.
def reference_adam(lr, b1, b2, eps, wd, steps, decoupled=False, amsgrad=False):
    p, m, v, vmax = P0.copy(), 0 * P0, 0 * P0, 0 * P0
    for t in range(1, steps + 1):
        g = gradient(p)
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vhat = vmax / (1 - b2**t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def reference_sgd(lr, mu, damp, nesterov, wd, steps):
    p, b = P0.copy(), None
    for _ in range(steps):
        g = gradient(p) + wd * p
        if mu:
            b = g if b is None else mu * b + (1 - damp) * g
            g = g + mu * b if nesterov else b
        p = p - lr * g
    return p


def reference_rmsprop(lr, alpha, eps, wd, mu, centered, steps):
    p, v, a, b = P0.copy(), 0 * P0, 0 * P0, 0 * P0
    for _ in range(steps):
        g = gradient(p) + wd * p
        v = alpha * v + (1 - alpha) * g**2
        vt = v
        if centered:
            a = alpha * a + (1 - alpha) * g
            vt = v - a**2
        if mu:
            b = mu * b + g / (np.sqrt(vt) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(vt) + eps)
    return p


def reference_adagrad(lr, lr_decay, wd, init, eps, steps):
    p, s = P0.copy(), np.full_like(P0, init)
    for t in range(1, steps + 1):
        g = gradient(p) + wd * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g**2
        p = p - clr * g / (np.sqrt(s) + eps)
    return p


def reference_adadelta(lr, rho, eps, wd, steps):
    p, v, u = P0.copy(), 0 * P0, 0 * P0
    for _ in range(steps):
        g = gradient(p) + wd * p
        v = rho * v + (1 - rho) * g**2
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d**2
        p = p - lr * d
    return p


FORMULAS = [
    ("GD", O.GD(0.1), reference_sgd(0.1, 0, 0, False, 0, 5)),
    ("GD momentum", O.GD(0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
     reference_sgd(0.1, 0.9, 0.1, False, 0.01, 5)),
    ("GD nesterov", O.GD(0.1, momentum=0.9, nesterov=True), reference_sgd(0.1, 0.9, 0, True, 0, 5)),
    ("Adam", O.Adam(0.01), reference_adam(0.01, 0.9, 0.999, 1e-8, 0, 5)),
    ("Adam wd amsgrad", O.Adam(0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True),
     reference_adam(0.01, 0.8, 0.99, 1e-8, 0.1, 5, amsgrad=True)),
    ("AdamW", O.AdamW(0.01, weight_decay=0.1), reference_adam(0.01, 0.9, 0.999, 1e-8, 0.1, 5, decoupled=True)),
    ("RMSprop", O.RMSprop(0.01), reference_rmsprop(0.01, 0.99, 1e-8, 0, 0, False, 5)),
    ("RMSprop centered momentum", O.RMSprop(0.01, alpha=0.9, weight_decay=0.01, momentum=0.5, centered=True),
     reference_rmsprop(0.01, 0.9, 1e-8, 0.01, 0.5, True, 5)),
    ("AdaGrad", O.AdaGrad(0.1, lr_decay=0.05, initial_accumulator_value=0.1),
     reference_adagrad(0.1, 0.05, 0, 0.1, 1e-10, 5)),
    ("AdaDelta", O.AdaDelta(1.0, rho=0.8, weight_decay=0.01), reference_adadelta(1.0, 0.8, 1e-6, 0.01, 5)),
]


@pytest.mark.parametrize("name,optimizer,expected", FORMULAS, ids=[f[0] for f in FORMULAS])
def test_steps_follow_the_documented_formula(name, optimizer, expected):
    np.testing.assert_allclose(run(optimizer), expected, rtol=1e-12, atol=1e-14)


def test_adam_first_step_moves_each_coordinate_by_lr():
    # With bias correction the first Adam step is lr * g / (|g| + eps): a sign step of size lr.
    p = run(O.Adam(0.01), steps=1)
    np.testing.assert_allclose(np.abs(p - P0), 0.01, rtol=1e-4)


TORCH_PAIRS = [
    ("GD", lambda: O.GD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", lambda: O.Adam(0.01, weight_decay=0.01, amsgrad=True),
     lambda t, ps: t.optim.Adam(ps, lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("AdamW", lambda: O.AdamW(0.01), lambda t, ps: t.optim.AdamW(ps, lr=0.01)),
    ("RMSprop", lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
     lambda t, ps: t.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True)),
    ("AdaGrad", lambda: O.AdaGrad(0.1, lr_decay=0.01), lambda t, ps: t.optim.Adagrad(ps, lr=0.1, lr_decay=0.01)),
    ("AdaDelta", lambda: O.AdaDelta(1.0, weight_decay=0.01),
     lambda t, ps: t.optim.Adadelta(ps, lr=1.0, weight_decay=0.01)),
]


@pytest.mark.parametrize("name,ours,theirs", TORCH_PAIRS, ids=[p[0] for p in TORCH_PAIRS])
def test_trajectory_matches_torch_optim(name, ours, theirs):
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.tensor(P0, dtype=torch.float64))
    opt = theirs(torch, [param])
    for _ in range(10):
        opt.zero_grad()
        param.grad = torch.tensor(gradient(param.detach().numpy()))
        opt.step()
    np.testing.assert_allclose(run(ours(), steps=10), param.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,optimizer,expected", FORMULAS, ids=[f[0] for f in FORMULAS])
def test_state_dict_round_trip_continues_the_same_trajectory(name, optimizer, expected):
    cls = type(optimizer)
    first = cls(**optimizer.get_config())
    params = {"p": P0.copy()}
    for _ in range(3):
        params = first.update(params, {"p": gradient(params["p"])})
    second = cls(lr=1.0)
    second.load_state_dict(first.state_dict(), nb.get_backend("numpy", dtype="float64"))
    assert second.get_config() == first.get_config() and second.steps == 3
    for _ in range(2):
        params = second.update(params, {"p": gradient(params["p"])})
    np.testing.assert_allclose(params["p"], expected, rtol=1e-12, atol=1e-14)


def test_updates_work_on_read_only_parameters():
    p0 = P0.copy()
    p0.flags.writeable = False
    for cls in (O.GD, O.Adam, O.AdamW, O.RMSprop, O.AdaGrad, O.AdaDelta):
        out = run(cls(lr=0.01), steps=3, p0=p0)
        assert np.all(np.isfinite(out)) and not np.array_equal(out, P0)
    np.testing.assert_array_equal(p0, P0)


def test_loading_another_optimizers_state_is_refused():
    with pytest.raises(ValueError, match="Adam optimizer, not GD"):
        O.GD().load_state_dict(O.Adam().state_dict(), nb.get_backend("numpy"))


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: O.GD(lr=0), "lr must be > 0"),
        (lambda: O.GD(lr=float("nan")), "lr must be > 0"),
        (lambda: O.GD(lr="fast"), "lr must be a number"),
        (lambda: O.GD(momentum=1.0), r"momentum must be in \[0, 1\)"),
        (lambda: O.GD(nesterov=True), "Nesterov momentum needs momentum > 0"),
        (lambda: O.Adam(betas=(0.9,)), "betas must be a pair"),
        (lambda: O.Adam(betas=(0.9, 1.0)), r"beta2 must be in \[0, 1\)"),
        (lambda: O.RMSprop(eps=-1), "eps must be > 0"),
        (lambda: O.AdaGrad(weight_decay=-0.1), "weight_decay must be >= 0"),
        (lambda: O.get_optimizer("lbfgs"), "unknown optimizer 'lbfgs'"),
    ],
)
def test_bad_hyperparameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_get_optimizer_by_name():
    opt = O.get_optimizer("adam", lr=0.005)
    assert isinstance(opt, O.Adam) and opt.lr == 0.005 and math.isclose(opt.betas[1], 0.999)


IN_PLACE = [
    ("Adam", lambda: O.Adam(0.01)),
    ("Adam wd", lambda: O.Adam(0.01, weight_decay=0.1)),
    ("Adam amsgrad", lambda: O.Adam(0.01, amsgrad=True)),
    ("AdamW", lambda: O.AdamW(0.01, weight_decay=0.1)),
    ("GD momentum", lambda: O.GD(0.1, momentum=0.9)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,make", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_the_in_place_path_gives_exactly_the_functional_values(name, make, dtype, adam_path):
    writeable, frozen = P0.astype(dtype), P0.astype(dtype)
    frozen.flags.writeable = False  # read-only parameters keep the functional path for good
    in_place, functional = make(), make()
    np.testing.assert_array_equal(run(in_place, steps=6, p0=writeable), run(functional, steps=6, p0=frozen))
    assert in_place._in_place == {"p": True} and functional._in_place == {"p": False}
    for key, value in functional.state["p"].items():
        np.testing.assert_array_equal(in_place.state["p"][key], value)


def test_state_is_updated_in_place_for_writeable_parameters_only(monkeypatch):
    opt = O.Adam(0.01)
    params = {"p": P0.copy()}
    params = opt.update(params, {"p": gradient(params["p"])})
    m = opt.state["p"]["exp_avg"]
    params = opt.update(params, {"p": gradient(params["p"])})
    assert opt.state["p"]["exp_avg"] is m  # same memory, new values
    frozen = P0.copy()
    frozen.flags.writeable = False
    calls = []
    monkeypatch.setattr(O.Adam, "_update_in_place", lambda *a: calls.append(a))
    O.Adam(0.01).update({"p": frozen}, {"p": gradient(frozen)})
    assert calls == []


def test_the_read_only_parity_row_exercises_the_functional_path(monkeypatch):
    from nnbackend import parity

    cases = [c for c in parity.CASES if c.name in ("optimizer:Adam", "training:mlp-200-steps")]
    for case in cases:
        parity.reference(case)  # NumPy float64, writeable: the in-place path

    def refuse(*args):
        raise AssertionError("the in-place path ran on read-only parameters")

    monkeypatch.setattr(O.Optimizer, "_update_in_place", refuse)
    monkeypatch.setattr(O.Adam, "_update_in_place", refuse)
    for case in cases:
        assert parity.compare(case, parity.Target("numpy_readonly", "float32")).passed


def test_state_dict_is_a_snapshot():
    opt = O.Adam(0.01)
    params = opt.update({"p": P0.copy()}, {"p": gradient(P0)})
    saved = opt.state_dict()
    before = saved["state"]["p"]["exp_avg"].copy()
    opt.update(params, {"p": gradient(params["p"])})
    np.testing.assert_array_equal(saved["state"]["p"]["exp_avg"], before)


def test_adam_state_dict_reports_torchs_moments():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.tensor(P0, dtype=torch.float64))
    theirs = torch.optim.Adam([param], lr=0.01, amsgrad=True)
    ours, params = O.Adam(0.01, amsgrad=True), {"p": P0.copy()}
    for _ in range(4):
        theirs.zero_grad()
        param.grad = torch.tensor(gradient(param.detach().numpy()))
        theirs.step()
        params = ours.update(params, {"p": gradient(params["p"])})
    state, reference = ours.state_dict()["state"]["p"], theirs.state[param]
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        np.testing.assert_allclose(state[key], reference[key].numpy(), rtol=1e-12)


@pytest.mark.parametrize("bad,message", [
    (lambda g: g.pop("1.bias"), r"no gradient for 1.bias"),
    (lambda g: g.update(extra=np.zeros(3, np.float32)), r"no parameter named extra"),
    (lambda g: g.update({"0.weight": np.ones((5, 3, 4), np.float32)}), r"0.weight has shape \(5, 3, 4\)"),
    (lambda g: g.update({"0.weight": np.ones((3, 4))}), r"0.weight .* dtype float64; .* dtype float32"),
], ids=["missing", "unknown", "shape", "dtype"])
@pytest.mark.parametrize("make", [lambda: O.GD(0.1, momentum=0.9), lambda: O.Adam()], ids=["GD", "Adam"])
def test_gradients_that_do_not_fit_are_refused_before_anything_changes(make, bad, message):
    model = nb.Sequential([nb.layers.Dense(3, 4, "relu"), nb.layers.Dense(4, 2)], seed=0)
    optimizer = make()
    optimizer.step(model, {k: np.ones_like(v) for k, v in model.parameters().items()})
    before_params, before_state = model.state_dict(), optimizer.state_dict()
    grads = {k: np.ones_like(v) for k, v in model.parameters().items()}
    bad(grads)
    with pytest.raises(ValueError, match=message):
        optimizer.step(model, grads)
    with pytest.raises(ValueError, match=message):
        optimizer.update(model.parameters(), grads)
    assert optimizer.steps == 1
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before_params[name])
    for name, slots in optimizer.state_dict()["state"].items():
        for key, value in slots.items():
            np.testing.assert_array_equal(value, before_state["state"][name][key])


@pytest.mark.parametrize("make", [lambda: O.Adam(0.01), lambda: O.GD(0.1, momentum=0.9)], ids=["Adam", "GD"])
def test_restoring_a_snapshot_goes_back_exactly(make):
    # What the Trainer does after a divergence: the in-place path must not write into the snapshot.
    optimizer, params = make(), {"p": P0.copy()}

    def steps(k):
        nonlocal params
        for _ in range(k):
            params = optimizer.update(params, {"p": gradient(params["p"])})
        return params["p"].copy()

    steps(3)
    start, snapshot = params, optimizer.snapshot()
    expected = steps(2)
    optimizer.restore(snapshot)
    params = start
    assert optimizer.steps == 3
    np.testing.assert_array_equal(steps(2), expected)
