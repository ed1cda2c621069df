"""The parity matrix: every layer, loss, optimizer and a training run, per backend and dtype, against
NumPy float64 with the tolerances of :mod:`nnbackend.parity`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nnbackend import parity


@pytest.mark.parametrize("case", parity.CASES, ids=[c.name for c in parity.CASES])
def test_case_matches_numpy_float64(case, parity_target, parity_backend):
    cell = parity.compare(case, parity_target, parity_backend)
    assert cell.passed, (
        f"{case.name} on {parity_target.key}: relative error {cell.error:.3g} in {cell.worst_output} "
        f"exceeds {cell.tolerance:.3g}"
    )


def test_same_seed_gives_the_same_initial_weights_as_numpy(parity_target, parity_backend):
    # Exactly, in the target's dtype: weights are drawn on the host and moved.
    import nnbackend as nb

    def weights(backend):
        model = nb.Sequential([nb.layers.Conv2D(1, 2, 3), nb.layers.Flatten(), nb.layers.Dense(None, 4, "relu"),
                               nb.layers.Dense(4, 3)], input_shape=(1, 5, 5), backend=backend, seed=7)
        return model.state_dict()

    reference = weights(nb.get_backend("numpy", dtype=parity_target.dtype))
    for name, value in weights(parity_backend).items():
        assert value.dtype == reference[name].dtype
        np.testing.assert_array_equal(value, reference[name], err_msg=name)


def test_a_planted_defect_fails_its_cell():
    case = next(c for c in parity.CASES if c.name == "layer:Tanh")

    def broken(backend):
        out = case.run(backend)
        if backend.dtype_name == "float32":  # the defect is in the target checked, not in the float64 reference
            out["forward"] = out["forward"] * (1 + 1e-3)
        return out

    cell = parity.compare(dataclasses.replace(case, run=broken), parity.Target("numpy", "float32"))
    assert not cell.passed and cell.worst_output == "forward"


def test_a_bias_dropped_on_one_backend_fails_the_dense_cells(monkeypatch):
    # Layer cases start from random parameters: with the initial zero bias this defect would pass.
    pytest.importorskip("array_api_strict")
    import nnbackend.layers.dense as dense
    from nnbackend import inplace

    def add_into(own, other):
        return own if type(own).__module__.startswith("array_api_strict") else inplace.add_into(own, other)

    monkeypatch.setattr(dense, "add_into", add_into)
    failed = [c for c in parity.CASES if c.name.startswith("layer:Dense")
              and not parity.compare(c, parity.Target("array_api_strict", "float64")).passed]
    assert failed, "a dropped bias went unnoticed"


def test_a_requested_backend_that_is_unusable_fails_the_result(monkeypatch):
    relu = next(c for c in parity.CASES if c.name == "layer:ReLU")
    targets = parity.select_targets(["numpy", "cupy"], ["float64"])
    monkeypatch.setattr(parity.Target, "backend", lambda self: (_ for _ in ()).throw(
        parity.BackendUnavailableError("no GPU here")) if self.label == "cupy" else parity.get_backend(
        "numpy", dtype=self.dtype))
    result = parity.run_matrix(targets, [relu], required=["numpy", "cupy"])
    assert not result.passed and result.missing == ["cupy"]
    assert result.to_dict()["passed"] is False and "requested but not usable here: cupy" in result.summary()
    assert parity.run_matrix(targets, [relu]).passed  # not asked for by name: listed, not failing


def test_a_float64_leak_into_float32_work_fails_its_cell(monkeypatch):
    # NumPy 2 keeps a NumPy float64 scalar's precision: lr as np.float64 turns float32 parameters float64.
    gd = next(c for c in parity.CASES if c.name == "optimizer:GD")
    original = parity.O.GD._update

    def leaky(self, param, grad, state, step):
        return original(self, param, grad, state, step) * np.float64(1.0)

    monkeypatch.setattr(parity.O.GD, "_update", leaky)
    cell = parity.compare(gd, parity.Target("numpy", "float32"))
    assert not cell.passed and "has dtype float64" in cell.worst_output


def test_case_names_are_unique():
    names = [case.name for case in parity.CASES]
    assert len(names) == len(set(names))


def test_relative_error_flags_shape_mismatch_and_nan():
    assert parity.relative_error(np.ones(3), np.ones(4)) == float("inf")
    assert parity.relative_error(np.array([np.nan]), np.array([1.0])) == float("inf")
    assert parity.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.2)


def test_tolerances_derive_from_the_dtype():
    assert parity.tolerance("float64", "layer") < parity.tolerance("float32", "layer")
    assert parity.tolerance("float32", "training") == pytest.approx(1000 * np.finfo(np.float32).eps)


def _result(errors):
    cells = [parity.Cell(case, "layer", target, error, "forward", parity.tolerance(target.split("/")[1], "layer"))
             for (case, target), error in errors.items()]
    machine = {"python": "3.x", "platform": "test", "processor": "cpu",
               "backends": {"numpy": {"version": "2", "devices": ["cpu"], "usable": True},
                            "cupy": {"version": None, "devices": [], "usable": False}}}
    return parity.MatrixResult(cells, {"cupy/float32": "not installed"}, machine)


def test_the_matrix_renders_a_row_per_component_and_a_column_per_target():
    result = _result({("layer:A", "numpy/float32"): 2e-7, ("layer:A", "torch/float32"): 1e-3,
                      ("layer:B", "numpy/float32"): 0.0, ("layer:B", "torch/float32"): 3e-7})
    table = result.to_table().splitlines()
    assert table[0].split() == ["component", "numpy/float32", "torch/float32"]
    assert table[2].split() == ["layer:A", "2.0e-07", "ok", "1.0e-03", "FAIL"]
    assert not result.passed and [c.case for c in result.failures] == ["layer:A"]
    assert result.summary().startswith("1 of 4 failed: layer:A on torch/float32 (0.001 > 1.2e-05 in forward)")
    markdown = result.to_markdown()
    assert "| layer:B | 0.0e+00 ok | 3.0e-07 ok |" in markdown
    assert "- cupy/float32: not installed" in markdown and "- cupy (not installed): not usable" in markdown
    assert _result({}).summary().startswith("no cell ran") and not _result({}).passed


def test_a_passing_matrix_says_so_in_one_line():
    result = _result({("layer:A", "numpy/float64"): 1e-16})
    assert result.passed and result.summary() == "1 cell, all passed"
    assert result.to_dict()["summary"] == "1 cell, all passed"
