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


def test_same_seed_gives_the_same_initial_weights_on_every_backend_and_dtype():
    import nnbackend as nb

    weights = []
    for target in parity.select_targets(["numpy", "array_api_strict", "torch"]):
        try:
            backend = target.backend()
        except nb.BackendUnavailableError:
            continue
        model = nb.Sequential([nb.layers.Dense(5, 4, "relu"), nb.layers.Dense(4, 3)], backend=backend, seed=7)
        weights.append(nb.to_numpy(model.parameters()["0.weight"]).astype(np.float32))
    assert len(weights) >= 2
    for w in weights[1:]:
        np.testing.assert_array_equal(w, weights[0])


def test_a_planted_defect_fails_its_cell():
    case = next(c for c in parity.CASES if c.name == "layer:Tanh")

    def broken(backend):
        out = case.run(backend)
        if backend.dtype_name == "float32":  # the defect is in the target checked, not in the float64 reference
            out["forward"] = out["forward"] * (1 + 1e-3)
        return out

    cell = parity.compare(dataclasses.replace(case, run=broken), parity.Target("numpy", "float32"))
    assert not cell.passed and cell.worst_output == "forward"


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
