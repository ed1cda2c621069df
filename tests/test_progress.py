"""What a fit shows: a tqdm bar on a terminal, plain lines in a log, nothing when quiet."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import nnbackend as nb
from nnbackend import layers as L


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def fit(verbose, validation=True):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 3, 40)
    model = nb.Sequential([L.Dense(4, 8, "relu"), L.Dense(8, 3)], seed=0)
    return nb.Trainer(model).fit(x, y, validation=(x, y) if validation else None, epochs=2, batch_size=10,
                                 eval_every=2, verbose=verbose)


def test_a_terminal_gets_a_bar_over_every_step_and_the_evaluation_lines(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    history = fit(verbose=1)
    shown = terminal.getvalue()
    assert "8/8" in shown and "epoch 2/2" in shown  # 2 epochs of 4 steps
    assert f"loss {history.loss[-1]:.4f}" in shown  # the bar's figures are the epoch's
    lines = capsys.readouterr().out.splitlines()  # tqdm.write: printed above the bar, not through it
    assert len(lines) == 1 and lines[0].startswith("epoch 2/2") and "val_loss" in lines[0]


def test_a_log_gets_plain_lines_and_quiet_gets_nothing(capsys):
    fit(verbose=1)
    out = capsys.readouterr()
    assert "epoch 2/2" in out.out and "epoch 1/2" not in out.out  # a line at each evaluation only
    assert "\r" not in out.out + out.err  # no bar redrawn into a file
    fit(verbose=2, validation=False)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]  # a line per epoch
    fit(verbose=0)
    assert capsys.readouterr() == ("", "")
