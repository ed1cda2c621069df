"""The record of a training run: per-epoch training figures and per-evaluation validation figures."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from .files import atomic_file, write_text

__all__ = ["History"]


@dataclasses.dataclass
class History:
    """What :meth:`nnbackend.Trainer.fit` measured.

    Training rows (one per finished epoch, 1-based ``epoch``): ``loss`` and ``accuracy`` are the
    sample-weighted means over the epoch's batches, computed on the parameters each batch saw;
    ``time`` is seconds since the fit started. Validation rows (one per evaluation): ``val_epoch``,
    ``val_loss``, ``val_accuracy``. ``accuracy`` entries are ``None`` for regression targets.

    ``diverged_epoch`` is the epoch whose loss became NaN or infinite (training stopped there);
    ``stopped_epoch`` the epoch at which early stopping ended the run; ``best_epoch`` the evaluation
    epoch early stopping judged best (its parameters are restored when asked to).
    """

    epoch: list[int] = dataclasses.field(default_factory=list)
    loss: list[float] = dataclasses.field(default_factory=list)
    accuracy: list[float | None] = dataclasses.field(default_factory=list)
    time: list[float] = dataclasses.field(default_factory=list)
    val_epoch: list[int] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_accuracy: list[float | None] = dataclasses.field(default_factory=list)
    diverged_epoch: int | None = None
    stopped_epoch: int | None = None
    best_epoch: int | None = None

    @property
    def diverged(self) -> bool:
        """True when the loss became NaN or infinite."""
        return self.diverged_epoch is not None

    @property
    def epochs_run(self) -> int:
        """How many epochs finished."""
        return self.epoch[-1] if self.epoch else 0

    def add_train(self, epoch: int, loss: float, accuracy: float | None, time: float) -> None:
        """Record an epoch's mean training loss, accuracy (None without labels) and seconds since the start."""
        self.epoch.append(epoch)
        self.loss.append(loss)
        self.accuracy.append(accuracy)
        self.time.append(time)

    def add_validation(self, epoch: int, loss: float, accuracy: float | None) -> None:
        self.val_epoch.append(epoch)
        self.val_loss.append(loss)
        self.val_accuracy.append(accuracy)

    def last(self) -> dict[str, Any]:
        """The latest figures as a flat dict (``None`` where nothing was measured)."""
        return {
            "epoch": self.epoch[-1] if self.epoch else None,
            "loss": self.loss[-1] if self.loss else None,
            "accuracy": self.accuracy[-1] if self.accuracy else None,
            "val_epoch": self.val_epoch[-1] if self.val_epoch else None,
            "val_loss": self.val_loss[-1] if self.val_loss else None,
            "val_accuracy": self.val_accuracy[-1] if self.val_accuracy else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite losses become the strings ``"nan"``/``"inf"``."""
        out = dataclasses.asdict(self)
        for key in ("loss", "val_loss"):
            out[key] = [_encode(v) for v in out[key]]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown History fields: {sorted(unknown)}")
        data = dict(data)
        for key in ("loss", "val_loss"):
            if key in data:
                data[key] = [float(v) for v in data[key]]
        return cls(**data)

    def to_json(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def to_csv(self, path: str | Path) -> None:
        """One row per epoch; validation columns are empty on epochs without an evaluation."""
        val = {e: (l, a) for e, l, a in zip(self.val_epoch, self.val_loss, self.val_accuracy)}
        with atomic_file(path, "w") as fh:
            writer = csv.writer(fh)
            writer.writerow(["epoch", "time_s", "loss", "accuracy", "val_loss", "val_accuracy"])
            for e, t, l, a in zip(self.epoch, self.time, self.loss, self.accuracy):
                vl, va = val.get(e, ("", ""))
                writer.writerow([e, f"{t:.3f}", _fmt(l), _fmt(a), _fmt(vl), _fmt(va)])


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return ""
    return f"{value:.6g}"
