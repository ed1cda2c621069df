"""Progress reporting for training: a tqdm bar when tqdm is installed, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """Reports a fit's progress.

    ``verbose=0``: silent. ``1``: a bar over all steps (tqdm, if installed, and only on a terminal or in
    a notebook: a bar redrawn into a log file is noise) plus a line at each evaluation. ``2``: a line
    after every epoch. Lines end with the seconds elapsed since training started.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, verbose: int, first_epoch: int = 1) -> None:
        self.verbose = verbose
        self.epochs = epochs
        self._bar = None
        on_terminal = sys.stderr is not None and sys.stderr.isatty()  # (None under pythonw)
        if verbose == 1 and (on_terminal or "ipykernel" in sys.modules):
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=(epochs - first_epoch + 1) * steps_per_epoch,
                    unit="step",
                    dynamic_ncols=True,
                    leave=True,
                    file=sys.stderr,
                )

    def step(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        text = _format(epoch, self.epochs, logs)
        if self._bar is not None:
            self._bar.set_description(f"epoch {epoch}/{self.epochs}")
            self._bar.set_postfix_str(_short(logs), refresh=False)
        if self.verbose == 2 or (self.verbose == 1 and "val_loss" in logs):
            self.message(text)

    def message(self, text: str) -> None:
        if self.verbose == 0:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _number(value: float) -> str:
    """A loss: 4 decimals, scientific beyond a million (a diverging run's)."""
    return f"{value:.4e}" if abs(value) >= 1e6 else f"{value:.4f}"


def _short(logs: dict[str, Any]) -> str:
    parts = [f"loss {_number(logs['loss'])}"]
    if logs.get("accuracy") is not None:
        parts.append(f"acc {logs['accuracy']:.4f}")
    return ", ".join(parts)


def _format(epoch: int, epochs: int, logs: dict[str, Any]) -> str:
    width = len(str(epochs))
    parts = [f"epoch {epoch:>{width}}/{epochs}", f"loss {_number(logs['loss'])}"]
    if logs.get("accuracy") is not None:
        parts.append(f"acc {logs['accuracy']:.4f}")
    if "val_loss" in logs:
        parts.append(f"val_loss {_number(logs['val_loss'])}")
        if logs.get("val_accuracy") is not None:
            parts.append(f"val_acc {logs['val_accuracy']:.4f}")
    parts.append(f"{logs['time']:.1f}s elapsed")
    return "  ".join(parts)
