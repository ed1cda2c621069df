"""Model files: a round trip, and files that are not nnbackend models refused with a CheckpointError."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nnbackend as nb


def test_a_saved_model_loads_with_the_same_outputs(tmp_path):
    model = nb.Sequential([nb.layers.Dense(5, 4, "relu"), nb.layers.Dense(4, 3)], backend="numpy", seed=1)
    path = nb.save_model(model, tmp_path / "model")
    assert path.name == "model.npz"
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_array_equal(nb.load_model(path, backend="numpy").predict(x), model.predict(x))
    assert nb.save_model(model, tmp_path / "MODEL.NPZ").name == "MODEL.NPZ"  # not MODEL.NPZ.npz
    np.testing.assert_array_equal(nb.load_model(tmp_path / "MODEL.NPZ").predict(x), model.predict(x))


@pytest.mark.parametrize("content, message", [
    (b"", "not a .npz archive"),
    (b"not a model at all", "not a .npz archive"),
    (pickle.dumps({"weights": 1}), r"a pickle \(refused"),
], ids=["empty", "text", "pickle"])
def test_a_file_that_is_not_a_model_is_refused_with_what_it_is(tmp_path, content, message):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(nb.CheckpointError, match=message):
        nb.load_model(path)


def test_a_npy_array_is_refused_not_crashed_on(tmp_path):
    np.save(tmp_path / "weights.npy", np.ones(3))
    with pytest.raises(nb.CheckpointError, match="not a .npz archive"):
        nb.load_model(tmp_path / "weights.npy")
