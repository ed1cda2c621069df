"""Train ``nnbackend.models.cnn()`` on MNIST or Fashion-MNIST and report test accuracy and wall time.

Run from the repository root, e.g.::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/train_cnn.py --data mnist \\
        --data-dir ../shared/data

Data: the four official IDX files of the data set (``<data-dir>/<data>/{train,t10k}-{images-idx3,
labels-idx1}-ubyte.gz``) pooled into 70,000 images and shuffled with ``default_rng(42).permutation``:
the first 7,000 are the test set, the next 56,000 the training set, the last 7,000 the validation set
(the paper's 10/80/10 split); pixels / 255 as float32, shape (N, 1, 28, 28).

Recipe (the defaults): the ``cnn()`` defaults, Adam (lr 1e-3, times 0.8 after every epoch), batch 128,
10 epochs, seed 0, float32; ``--minutes`` stops early when another epoch would not fit in the time
budget. Writes a JSON report
to ``bench/results/train_cnn-<data>-<time>.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnbackend as nb  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist"}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (gzip) as a uint8 array: a big-endian header ``magic`` and dimension sizes, then data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise ValueError(f"{path}: magic number {found:#x}, expected {magic:#x}")
    ndim = magic & 0xFF
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pooled 70,000 images split 7,000 test / 56,000 train / 7,000 validation (seed 42).

    Images are (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64.
    """
    images = np.concatenate([read_idx(folder / f"{part}-images-idx3-ubyte.gz", 0x803) for part in ("train", "t10k")])
    labels = np.concatenate([read_idx(folder / f"{part}-labels-idx1-ubyte.gz", 0x801) for part in ("train", "t10k")])
    order = np.random.default_rng(42).permutation(len(images))
    x = (images[order].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = labels[order].astype(np.int64)
    n_test, n_train = len(x) // 10, len(x) * 8 // 10
    return {
        "test": (x[:n_test], y[:n_test]),
        "train": (x[n_test : n_test + n_train], y[n_test : n_test + n_train]),
        "validation": (x[n_test + n_train :], y[n_test + n_train :]),
    }


def thread_pools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP pools in use (threadpoolctl), or a note that it is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl is not installed"}]
    return [{k: pool.get(k) for k in ("internal_api", "version", "num_threads")} for pool in threadpool_info()]


class DecayLearningRate(nb.Callback):
    """Multiply the optimizer's learning rate by ``factor`` after every epoch."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def on_epoch_end(self, trainer: nb.Trainer, epoch: int, logs: dict[str, Any]) -> bool:
        trainer.optimizer.lr *= self.factor
        return False


class TimeBudget(nb.Callback):
    """Stop when the next epoch, as long as the longest so far, would end past ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = self.last = time.perf_counter()
        self.longest = 0.0

    def on_fit_start(self, trainer: nb.Trainer) -> None:
        self.start = self.last = time.perf_counter()

    def on_epoch_end(self, trainer: nb.Trainer, epoch: int, logs: dict[str, Any]) -> bool:
        now = time.perf_counter()
        self.longest, self.last = max(self.longest, now - self.last), now
        return now - self.start + self.longest > self.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=sorted(FOLDERS), default="mnist")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("NNBACKEND_DATA", "../shared/data")),
                        help="folder holding mnist/ and fashion-mnist/ (default: $NNBACKEND_DATA or ../shared/data)")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.8,
                        help="learning-rate factor applied after every epoch (default: 0.8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (through threadpoolctl; default: the library's own choice). On a "
                             "machine busy with other work, 1 thread can be several times faster than 2")
    parser.add_argument("--minutes", type=float, default=14.0,
                        help="time budget for training; stops before an epoch that would overrun it (default: 14)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
    start = time.perf_counter()
    split = load_split(args.data_dir / FOLDERS[args.data])
    loaded = time.perf_counter()
    model = nb.models.cnn(backend=args.backend, seed=args.seed)
    print(model.summary())
    trainer = nb.Trainer(model, "cross_entropy", nb.optimizers.Adam(args.lr))
    history = trainer.fit(*split["train"], validation=split["validation"], epochs=args.epochs,
                          batch_size=args.batch_size, seed=args.seed, verbose=2,
                          callbacks=[DecayLearningRate(args.lr_decay), TimeBudget(args.minutes * 60.0)])
    trained = time.perf_counter()
    test = trainer.evaluate(*split["test"])
    end = time.perf_counter()

    print(f"\n{args.data}: test accuracy {test['accuracy']:.4f} (loss {test['loss']:.4f}) after "
          f"{history.epochs_run} epochs; training {trained - loaded:.0f} s "
          f"({(trained - loaded) / history.epochs_run:.1f} s/epoch incl. validation), "
          f"total {end - start:.0f} s with loading and testing")
    report = {
        "data": args.data,
        "recipe": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                   "optimizer": "Adam", "model": model.get_config()},
        "test": test,
        "epochs_run": history.epochs_run,
        "seconds": {"load": loaded - start, "train": trained - loaded, "test": end - trained, "total": end - start},
        "history": history.to_dict(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count(), "load_average_1_5_15_min": os.getloadavg(),
                    "backend": model.backend.describe(),
                    "thread_pools": thread_pools()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"train_cnn-{args.data}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
