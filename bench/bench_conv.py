"""Seconds per epoch of ``nnbackend.models.cnn()`` against the same network in PyTorch on the CPU.

Run from the repository root, without the OpenBLAS overrides that slow NumPy on some machines::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_conv.py --steps 40

Every framework trains the default CNN (float32, batch 128, Adam 1e-3, the Trainer's full epoch loop
with shuffling, loss and accuracy) on random MNIST-sized images. The frameworks take turns chunk by
chunk (``--steps`` steps each), so drift in the machine's speed hits them alike; after ``--warmup``
rounds, the median of ``--repeats`` chunk times is scaled to one epoch of ``--samples`` images. NumPy's
BLAS (through threadpoolctl, when installed) and PyTorch use ``--threads`` threads each (default: the
CPU count). Results go to ``bench/results/conv-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnbackend as nb  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages; NaN where the system has none (Windows)."""
    return os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3


def random_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random images (n, 1, 28, 28) float32 in [0, 1) and labels (n,) int64 in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


Runner = Callable[[], tuple[float, float]]


def nnbackend_runner(backend: str, x: np.ndarray, y: np.ndarray, batch_size: int) -> Runner:
    """A function that trains nnbackend's default CNN on ``backend`` for one pass over ``(x, y)`` and
    returns the seconds it took and the pass's mean training loss."""
    model = nb.models.cnn(backend=backend, dtype="float32")
    trainer = nb.Trainer(model, "cross_entropy", nb.optimizers.Adam(1e-3))
    xd, yd = model.backend.asarray(x), model.backend.asarray(y)
    rounds = iter(range(1_000_000))

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        history = trainer.fit(xd, yd, epochs=1, batch_size=batch_size, seed=next(rounds), verbose=0)
        return time.perf_counter() - start, history.loss[-1]

    return run


def torch_cnn(torch: Any) -> Any:
    """The network of ``nnbackend.models.cnn()``'s defaults, in PyTorch."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same"), nn.BatchNorm2d(32), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding="same"), nn.BatchNorm2d(64), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def torch_runner(x: np.ndarray, y: np.ndarray, batch_size: int) -> Runner:
    """A function that trains the same CNN in PyTorch for one shuffled pass over ``(x, y)``, with the
    same per-step work as the Trainer (loss and accuracy sums read once at the end)."""
    import torch

    torch.manual_seed(0)
    model = torch_cnn(torch).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(0)

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(xt)))
        loss_sum = correct = 0
        for begin in range(0, len(xt), batch_size):
            idx = order[begin : begin + batch_size]
            xb, yb = xt[idx], yt[idx]
            optimizer.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            loss_sum = loss_sum + loss.detach() * len(idx)
            correct = correct + (out.argmax(1) == yb).sum()
        mean_loss, _accuracy = float(loss_sum) / len(xt), int(correct) / len(xt)
        return time.perf_counter() - start, mean_loss

    return run


def blas_info() -> list[dict[str, Any]]:
    """The thread pools (BLAS, OpenMP) loaded in this process, as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl is not installed: pip install threadpoolctl"}]
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture", "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def limit_threads(threads: int) -> Any:
    """Hold NumPy's BLAS and PyTorch to ``threads`` threads; returns the threadpoolctl limiter (or None)."""
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40,
                        help="steps per timed chunk; 0 times whole epochs (default: 40)")
    parser.add_argument("--repeats", type=int, default=5, help="timed chunks per framework (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples", type=int, default=56_000, help="images in an epoch (default: 56,000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backends", default=None,
                        help="comma-separated nnbackend backends (default: every usable one of numpy, torch, cupy)")
    parser.add_argument("--no-pytorch", action="store_true", help="leave out the PyTorch reference")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 for a meaningful median")

    load_before = _load_average()
    limiter = limit_threads(args.threads)
    steps_per_epoch = math.ceil(args.samples / args.batch_size)
    steps = steps_per_epoch if args.steps <= 0 else min(args.steps, steps_per_epoch)
    x, y = random_images(min(steps * args.batch_size, args.samples))

    if args.backends:
        names = [b.strip() for b in args.backends.split(",") if b.strip()]
    else:
        names = [info.name for info in nb.available_backends() if info.usable and info.name != "array_api_strict"]
    runners: dict[str, Runner] = {}
    for name in names:
        runners[f"nnbackend[{name}]"] = nnbackend_runner(name, x, y, args.batch_size)
    if not args.no_pytorch:
        try:
            runners["pytorch"] = torch_runner(x, y, args.batch_size)
        except ImportError:
            print("PyTorch is not installed: no reference column", file=sys.stderr)

    times: dict[str, list[float]] = {name: [] for name in runners}
    losses: dict[str, float] = {}
    for round_ in range(args.warmup + args.repeats):
        for name, run in runners.items():
            seconds, losses[name] = run()
            if round_ >= args.warmup:
                times[name].append(seconds)
            print(f"round {round_ + 1}/{args.warmup + args.repeats} {name}: {seconds:.2f} s", file=sys.stderr)

    scale = steps_per_epoch / steps
    per_epoch = {name: statistics.median(values) * scale for name, values in times.items()}
    reference = per_epoch.get("pytorch")
    print(f"\nCNN (nnbackend.models.cnn defaults), {args.samples:,} images/epoch, batch {args.batch_size}, "
          f"float32, {args.threads} threads, {steps} of {steps_per_epoch} steps per chunk, "
          f"median of {args.repeats}")
    print(f"{'framework':<22}{'s/epoch':>9}{'min':>9}{'max':>9}{'vs PyTorch':>12}")
    for name, seconds in per_epoch.items():
        ratio = f"{seconds / reference:.2f}x" if reference else "-"
        low, high = min(times[name]) * scale, max(times[name]) * scale
        print(f"{name:<22}{seconds:>9.2f}{low:>9.2f}{high:>9.2f}{ratio:>12}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {_load_average()[0]:.2f} "
          f"on {os.cpu_count()} CPUs: other work on the machine slows every column")
    pools = blas_info()
    for pool in pools:
        print("thread pool:", ", ".join(f"{k}={v}" for k, v in pool.items() if v is not None))

    report = {
        "benchmark": "cnn-epoch",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": {**vars(args), "steps_timed": steps, "steps_per_epoch": steps_per_epoch},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            "numpy": np.__version__,
            "nnbackend": nb.__version__,
            "thread_pools": pools,
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
        },
        "results": {
            name: {
                "chunk_seconds": times[name],
                "seconds_per_epoch": per_epoch[name],
                "ratio_to_pytorch": per_epoch[name] / reference if reference else None,
                "last_chunk_mean_loss": losses[name],
            }
            for name in runners
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"conv-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
