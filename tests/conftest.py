"""Shared fixtures: the parity selection (--backends/--dtypes), and the real data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nnbackend import parity
from nnbackend.backend import BackendUnavailableError

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nnbackend")
    group.addoption(
        "--backends",
        default=None,
        help="comma-separated parity backends to run (numpy,numpy_readonly,array_api_strict,torch,cupy,"
        "torch_cuda); backends named here must be usable, or their tests fail instead of skipping",
    )
    group.addoption("--dtypes", default=None, help="comma-separated dtypes for the parity matrix (float32,float64)")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("NNBACKEND_DATA"):
        shared = REPO.parent / "shared" / "data"
        if shared.is_dir():
            os.environ["NNBACKEND_DATA"] = str(shared)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "parity_target" in metafunc.fixturenames:
        targets = parity.select_targets(_split(metafunc.config.getoption("--backends")),
                                        _split(metafunc.config.getoption("--dtypes")))
        # NumPy float64 is the reference itself: the same code compared with itself cannot fail.
        targets = [t for t in targets if (t.label, t.dtype) != ("numpy", "float64")]
        metafunc.parametrize("parity_target", targets, ids=[t.key for t in targets], scope="module")


@pytest.fixture(scope="module")
def parity_backend(request: pytest.FixtureRequest, parity_target: parity.Target):
    """The backend for a parity target; unusable: skip with the reason, or fail if asked for by name."""
    try:
        return parity_target.backend()
    except BackendUnavailableError as exc:
        if request.config.getoption("--backends"):
            pytest.fail(f"{parity_target.key} was requested with --backends but is unusable: {exc}")
        pytest.skip(f"{parity_target.key} unusable here: {exc}")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the real MNIST files, found as the package finds it ($NNBACKEND_DATA)."""
    root = os.environ.get("NNBACKEND_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST files not found: set NNBACKEND_DATA to a folder holding mnist/ (e.g. ../shared/data)")
    return Path(root)


@pytest.fixture
def fused_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The compiled kernels (``nnbackend/_fused.c``), loaded afresh; skipped where they were not built, a
    failure where they must be (``$NNBACKEND_REQUIRE_KERNELS``, set by ``.ci/run``, or ``$CI``)."""
    from nnbackend import fused

    monkeypatch.delenv(fused.ENV_VAR, raising=False)
    monkeypatch.setattr(fused, "_kernels", fused._UNSET)
    if not fused.available():
        if os.environ.get("NNBACKEND_REQUIRE_KERNELS") or os.environ.get("CI"):
            pytest.fail(f"the compiled kernels are required here but missing: {fused.describe()}")
        pytest.skip(f"fused kernels unavailable: {fused.describe()}")
    return fused._kernels


@pytest.fixture(params=["fused", "numpy"])
def adam_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on each of Adam's NumPy paths: the compiled one-pass kernel and NumPy's chain of
    in-place ufuncs."""
    from nnbackend import fused

    if request.param == "fused":
        request.getfixturevalue("fused_kernels")
    else:
        monkeypatch.setattr(fused, "_kernels", None)
    return request.param
