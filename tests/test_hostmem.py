"""Trainer.fit asks glibc's malloc to keep freed memory: the next step's temporaries reuse it instead of
faulting in fresh pages from the kernel."""

from __future__ import annotations

import sys

import numpy as np
import pytest

resource = pytest.importorskip("resource", reason="no resource module (Windows)")

import nnbackend as nb
from nnbackend import hostmem

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings: Linux only")


@pytest.fixture
def fresh_hostmem(monkeypatch):
    monkeypatch.setattr(hostmem, "_applied", None)
    return hostmem


def _faults_of(action) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    action()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_the_environment_variable_leaves_malloc_alone(fresh_hostmem, monkeypatch):
    monkeypatch.setenv(hostmem.ENV_VAR, "0")
    monkeypatch.setattr(hostmem, "_set_glibc_thresholds", lambda: pytest.fail("malloc was changed"))
    assert fresh_hostmem.keep_freed_memory() is False
    assert fresh_hostmem.keep_freed_memory() is False  # decided once per process


def test_fit_asks_for_it(fresh_hostmem, monkeypatch):
    calls = []
    monkeypatch.setattr(nb.training, "keep_freed_memory", lambda: calls.append(1) or True)
    x = np.random.default_rng(0).standard_normal((20, 4))
    nb.Trainer(nb.models.mlp(4, (3,), 2)).fit(x, np.arange(20) % 2, epochs=1, verbose=0)
    assert calls == [1]


@linux_only
def test_freed_memory_is_reused_without_page_faults(fresh_hostmem, monkeypatch):
    monkeypatch.delenv(hostmem.ENV_VAR, raising=False)
    if not fresh_hostmem.keep_freed_memory():
        pytest.skip("not glibc: its malloc settings do not apply")
    size = 20 * 1024 * 1024 // 4  # 20 MiB of float32: above glibc's default threshold for fresh mappings
    first = np.ones(size, dtype=np.float32)
    del first
    again = _faults_of(lambda: np.ones(size, dtype=np.float32))
    assert again <= 16, f"{again} page faults re-allocating 20 MiB that was just freed"


def test_other_systems_are_left_alone(fresh_hostmem, monkeypatch):
    monkeypatch.delenv(hostmem.ENV_VAR, raising=False)
    monkeypatch.setattr(hostmem.sys, "platform", "darwin")
    assert fresh_hostmem.keep_freed_memory() is False
