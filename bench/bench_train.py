#!/usr/bin/env python
"""Training speed of nnbackend against its peers and against the matrix-product floor, on MNIST.

Rows are networks x batch sizes (``512-256/128``: hidden layers 512 and 256, batch 128; ``full``: the
whole training set in one step); columns are contenders:

    numpy             nnbackend on NumPy (its Trainer.fit, as a user runs it)
    numpy_whole       nnbackend on NumPy with Trainer(max_rows=None): a batch over 2,048 rows runs
                      whole instead of in slices with summed gradients (the default on a CPU)
    torch_backend     nnbackend on PyTorch tensors (proof that the engine is generic; cpu or cuda)
    array_api_strict  nnbackend on array_api_strict (slow, conformance only)
    cupy              nnbackend on CuPy (needs a CUDA device)
    pytorch           the same network in PyTorch eager (torch.nn + torch.optim.Adam), same threads
    torch_cuda        pytorch on the CUDA device
    jax               the same network in JAX with a jit-compiled step (jax.numpy only, Adam by hand)
    floor             only the matrix products one epoch needs, with the same BLAS (8 per step for
                      two hidden layers, 5 for one: nobody needs the gradient w.r.t. the images)

Every contender starts from the same initial weights (nnbackend's, seed 0), sees the batches in the
same order (nnbackend's shuffle stream) and computes the training loss and accuracy on the device,
so all of them do the same work. Each contender runs in its own worker process (so its peak memory is
its own); the parent interleaves their epochs round-robin, rotating the order each round, so machine
drift hits all of them alike. Ratios are paired: per round, contender time / peer time, then the
median over rounds.

Figures per row and contender: median seconds per epoch (after a warm-up epoch), the paired ratio to
the fastest peer (PyTorch or JAX) and to the floor, and the worker's peak resident memory (VmHWM from
/proc/self/status; the resident memory after imports and loading the data is reported beside it).
Then the wall time to 97% validation accuracy (512-256, batch 128, evaluated every epoch on the
7,000 validation images), same interleaving.

Usage (from the repository root)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_train.py
    python bench/bench_train.py --quick
    python bench/bench_train.py --rows 512-256/128,128/full --contenders numpy,pytorch,floor
    python bench/bench_train.py --device cuda --contenders cupy,torch_cuda,jax,floor

Writes the table to stdout, JSON to ``bench/results/bench_train-<date>.json`` and (for full runs)
the table into ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CPU_ROWS = ("512-256/128", "128/128", "512-256/full", "128/full")
CUDA_ROWS = ("512-256/128", "512-256/full", "4096-4096/1024", "4096-4096/full")
QUICK_ROWS = ("128/128", "128/full")
CPU_CONTENDERS = ("numpy", "torch_backend", "pytorch", "jax", "floor")
CUDA_CONTENDERS = ("cupy", "torch_cuda", "jax", "floor")
ALL_CONTENDERS = ("numpy", "numpy_whole", "torch_backend", "array_api_strict", "cupy", "pytorch", "torch_cuda", "jax", "floor")
PEERS = ("pytorch", "torch_cuda", "jax")
NNBACKEND = ("numpy", "numpy_whole", "torch_backend", "array_api_strict", "cupy")
T97_ROW = "512-256/128"
LR = 0.001
SEED = 0
README_START, README_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


# -- rows -------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """A network (hidden widths) and a batch size (``None``: the full training set)."""

    name: str
    hidden: tuple[int, ...]
    batch: int | None

    @classmethod
    def parse(cls, name: str) -> Row:
        net, _, batch = name.partition("/")
        try:
            hidden = tuple(int(h) for h in net.split("-") if h)
            size = None if batch in ("full", "") else int(batch)
        except ValueError:
            raise SystemExit(f"bad row {name!r}: write HIDDEN-HIDDEN/BATCH, e.g. 512-256/128 or 128/full") from None
        return cls(name, hidden, size)

    def dims(self, features: int, classes: int) -> list[int]:
        return [features, *self.hidden, classes]

    def batches(self, n: int) -> list[int]:
        """The batch sizes of one epoch over ``n`` samples (the last one may be short)."""
        size = n if self.batch is None else min(self.batch, n)
        return [min(size, n - begin) for begin in range(0, n, size)]


# -- worker side ------------------------------------------------------------------------------------
def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process in MiB (``VmHWM``: the peak so far)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if os.name == "nt":
        return _windows_memory_mb(field)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the peak only: KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def _windows_memory_mb(field: str) -> float:
    """The working set (or its peak, for ``VmHWM``) of this process in MiB, from GetProcessMemoryInfo."""
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                    ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                    *[(name, ctypes.c_size_t) for name in ("QuotaPeakPagedPoolUsage", "QuotaPagedPoolUsage",
                                                            "QuotaPeakNonPagedPoolUsage", "QuotaNonPagedPoolUsage",
                                                            "PagefileUsage", "PeakPagefileUsage")]]

    counters = Counters(cb=ctypes.sizeof(Counters))
    process = ctypes.windll.kernel32.GetCurrentProcess()
    if not ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
        return float("nan")
    return (counters.PeakWorkingSetSize if field == "VmHWM" else counters.WorkingSetSize) / 2**20


class Channel:
    """The worker's line protocol: JSON lines to the parent on the original stdout, commands on stdin.

    Anything a library prints goes to stderr instead, so it cannot corrupt the protocol.
    """

    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, **message: Any) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def wait(self) -> str:
        line = sys.stdin.readline()
        return line.strip() or "quit"


def load_arrays(data_dir: str) -> dict[str, Any]:
    import numpy as np

    return {name: np.load(Path(data_dir) / f"{name}.npy") for name in ("x_train", "y_train", "x_val", "y_val")}


def initial_weights(row: Row, features: int, classes: int, seed: int = SEED) -> list[tuple[Any, Any]]:
    """nnbackend's initial (weight (in, out), bias) pairs for the row, float32 host arrays."""
    import nnbackend as nb

    dims = row.dims(features, classes)
    layers = [nb.layers.Dense(a, b, "relu" if i < len(dims) - 2 else None)
              for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
    state = nb.Sequential(layers, backend="numpy", seed=seed).state_dict()
    return [(state[f"{i}.weight"], state[f"{i}.bias"]) for i in range(len(layers))]


def orders(n: int, batch: int | None, seed: int = SEED):
    """The batch order of each epoch, as nnbackend's Trainer draws it (None: stored order)."""
    from nnbackend.random import generator

    rng = generator(seed, "shuffle")
    while True:
        yield rng.permutation(n) if batch is not None and batch < n else None


class NnbackendRun:
    """nnbackend's own Trainer.fit, paused between epochs by a callback that talks to the parent."""

    def __init__(self, spec: dict[str, Any], data: dict[str, Any]) -> None:
        import nnbackend as nb

        name, device = spec["contender"], spec["device"]
        backend = {
            "numpy": lambda: nb.get_backend("numpy"),
            "numpy_whole": lambda: nb.get_backend("numpy"),
            "torch_backend": lambda: nb.get_backend("torch", device=device),
            "array_api_strict": lambda: nb.get_backend("array_api_strict"),
            "cupy": lambda: nb.get_backend("cupy"),
        }[name]()
        if backend.name == "torch":
            import torch

            torch.set_num_threads(spec["threads"])
        self.nb, self.backend, self.data, self.spec = nb, backend, data, spec
        self.row = Row.parse(spec["row"])
        features, classes = data["x_train"].shape[1], int(data["y_train"].max()) + 1
        dims = self.row.dims(features, classes)
        layers = [nb.layers.Dense(a, b, "relu" if i < len(dims) - 2 else None)
                  for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))]
        self.model = nb.Sequential(layers, backend=backend, seed=spec["seed"])
        options = {"max_rows": None} if name == "numpy_whole" else {}
        self.trainer = nb.Trainer(self.model, nb.losses.CrossEntropy(), nb.optimizers.Adam(LR), **options)

    def run(self, channel: Channel) -> None:
        nb, data, spec = self.nb, self.data, self.spec
        outer = self

        class Pause(nb.Callback):
            def on_epoch_end(self, trainer, epoch, logs):
                seconds = time.perf_counter() - outer.resumed
                channel.send(epoch=epoch, time=seconds, loss=logs["loss"], accuracy=logs["accuracy"],
                             val_accuracy=logs.get("val_accuracy"))
                command = channel.wait()
                outer.resumed = time.perf_counter()
                return command != "epoch"

        validation = (data["x_val"], data["y_val"]) if spec["validate"] else None
        if channel.wait() != "epoch":
            return
        self.resumed = time.perf_counter()
        self.trainer.fit(data["x_train"], data["y_train"], validation=validation, epochs=100_000,
                         batch_size=self.row.batch, seed=spec["seed"], eval_every=1, callbacks=[Pause()],
                         verbose=0)

    def device_peak_mb(self) -> float | None:
        return device_peak_mb(self.backend.name, self.backend.device)


def device_peak_mb(library: str, device: Any) -> float | None:
    """Peak device memory where the library tracks it (CUDA only)."""
    try:
        if library == "torch" and str(device).startswith("cuda"):
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if library == "cupy":
            import cupy

            return cupy.get_default_memory_pool().total_bytes() / 2**20  # the pool keeps the peak's blocks
        if library == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use", 0) / 2**20 or None
    except Exception:  # noqa: BLE001 - memory figures are informative only
        return None
    return None


class LoopRun:
    """A contender with its own loop: ``epoch()`` trains one epoch, ``evaluate()`` gives val accuracy."""

    library = ""
    device: Any = None

    def run(self, channel: Channel) -> None:
        epoch = 0
        while channel.wait() == "epoch":
            epoch += 1
            start = time.perf_counter()
            logs = self.epoch()
            if self.validate:
                logs["val_accuracy"] = self.evaluate()
            channel.send(epoch=epoch, time=time.perf_counter() - start, **logs)

    def device_peak_mb(self) -> float | None:
        return device_peak_mb(self.library, self.device)


class TorchRun(LoopRun):
    """PyTorch eager: nn.Sequential, F.cross_entropy, torch.optim.Adam (default implementation)."""

    library = "torch"

    def __init__(self, spec: dict[str, Any], data: dict[str, Any]) -> None:
        import numpy as np
        import torch

        torch.set_num_threads(spec["threads"])
        device = "cuda" if spec["contender"] == "torch_cuda" else spec["device"]
        self.torch, self.device, self.validate = torch, torch.device(device), spec["validate"]
        self.row = Row.parse(spec["row"])
        x, y = data["x_train"], data["y_train"]
        weights = initial_weights(self.row, x.shape[1], int(y.max()) + 1, spec["seed"])
        modules: list[Any] = []
        for i, (w, b) in enumerate(weights):
            linear = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.copy_(torch.from_numpy(b))
            modules += [linear] + ([torch.nn.ReLU()] if i < len(weights) - 1 else [])
        self.model = torch.nn.Sequential(*modules).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.x, self.y = (torch.from_numpy(a).to(self.device) for a in (x, y))
        self.xv, self.yv = (torch.from_numpy(a).to(self.device) for a in (data["x_val"], data["y_val"]))
        self.orders = orders(x.shape[0], self.row.batch, spec["seed"])

    def epoch(self) -> dict[str, Any]:
        torch, x, y, n = self.torch, self.x, self.y, self.x.shape[0]
        order = next(self.orders)
        idx = None if order is None else torch.from_numpy(order).to(self.device)
        size = n if self.row.batch is None else self.row.batch
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self.model.train()
        for begin in range(0, n, size):
            end = min(begin + size, n)
            if idx is None:
                xb, yb = (x, y) if size == n else (x[begin:end], y[begin:end])
            else:
                rows = idx[begin:end]
                xb, yb = x.index_select(0, rows), y.index_select(0, rows)
            out = self.model(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach() * (end - begin)
                correct += (out.argmax(1) == yb).sum()
        return {"loss": float(loss_sum) / n, "accuracy": int(correct) / n}

    def evaluate(self) -> float:
        torch = self.torch
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for begin in range(0, self.xv.shape[0], 8192):
                out = self.model(self.xv[begin:begin + 8192])
                correct += int((out.argmax(1) == self.yv[begin:begin + 8192]).sum())
        return correct / self.xv.shape[0]


class JaxRun(LoopRun):
    """JAX: the same network with a jit-compiled step (value_and_grad + Adam by hand, buffers donated)."""

    library = "jax"

    def __init__(self, spec: dict[str, Any], data: dict[str, Any]) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.validate = jax, jnp, spec["validate"]
        self.device = jax.devices()[0]
        if spec["device"] == "cuda" and self.device.platform != "gpu":
            raise RuntimeError(f"JAX has no GPU here (its devices: {jax.devices()})")
        if self.device.platform == "gpu":  # float32 products as CuPy and PyTorch do them, not TF32
            jax.config.update("jax_default_matmul_precision", "highest")
        self.row = Row.parse(spec["row"])
        x, y = data["x_train"], data["y_train"]
        weights = initial_weights(self.row, x.shape[1], int(y.max()) + 1, spec["seed"])
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
        self.m = jax.tree_util.tree_map(jnp.zeros_like, self.params)
        self.v = jax.tree_util.tree_map(jnp.zeros_like, self.params)
        self.t = jnp.zeros((), jnp.float32)
        self.x, self.y = jnp.asarray(x), jnp.asarray(y.astype("int32"))
        self.xv, self.yv = jnp.asarray(data["x_val"]), jnp.asarray(data["y_val"].astype("int32"))
        self.orders = orders(x.shape[0], self.row.batch, spec["seed"])
        b1, b2, eps = 0.9, 0.999, 1e-8

        def forward(params, xb):
            h = xb
            for w, b in params[:-1]:
                h = jax.nn.relu(h @ w + b)
            w, b = params[-1]
            return h @ w + b

        def loss_fn(params, xb, yb):
            out = forward(params, xb)
            logp = jax.nn.log_softmax(out)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1)), out

        def step(params, m, v, t, xb, yb):
            (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, xb, yb)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
            step_size = LR / (1 - b1**t)
            root = jnp.sqrt(1 - b2**t)
            params = jax.tree_util.tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / root + eps),
                                            params, m, v)
            correct = jnp.sum(jnp.argmax(out, axis=1) == yb)
            return params, m, v, t, loss, correct

        def gathered_step(params, m, v, t, x, y, idx):
            return step(params, m, v, t, jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))

        self.step = jax.jit(step, donate_argnums=(0, 1, 2))
        self.gathered_step = jax.jit(gathered_step, donate_argnums=(0, 1, 2))
        self.predict = jax.jit(lambda params, xb: jnp.argmax(forward(params, xb), axis=1))

    def epoch(self) -> dict[str, Any]:
        jnp, n = self.jnp, self.x.shape[0]
        order = next(self.orders)
        size = n if self.row.batch is None else self.row.batch
        idx_all = None if order is None else jnp.asarray(order.astype("int32"))
        loss_sum, correct = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        for begin in range(0, n, size):
            end = min(begin + size, n)
            if idx_all is None:
                xb, yb = (self.x, self.y) if size == n else (self.x[begin:end], self.y[begin:end])
                out = self.step(self.params, self.m, self.v, self.t, xb, yb)
            else:
                out = self.gathered_step(self.params, self.m, self.v, self.t, self.x, self.y, idx_all[begin:end])
            self.params, self.m, self.v, self.t, loss, hits = out
            loss_sum, correct = loss_sum + loss * (end - begin), correct + hits
        return {"loss": float(loss_sum) / n, "accuracy": int(correct) / n}

    def evaluate(self) -> float:
        correct = 0
        for begin in range(0, self.xv.shape[0], 8192):
            pred = self.predict(self.params, self.xv[begin:begin + 8192])
            correct += int((pred == self.yv[begin:begin + 8192]).sum())
        return correct / self.xv.shape[0]


class FloorRun(LoopRun):
    """Only the matrix products of an epoch, into preallocated outputs, with the contender's BLAS.

    Per step: one product per layer forward; backward, ``x^T g`` for every layer's weight gradient and
    ``g W^T`` for every layer but the first (the input images need no gradient).
    """

    def __init__(self, spec: dict[str, Any], data: dict[str, Any]) -> None:
        import numpy as np

        self.validate = False
        self.row = Row.parse(spec["row"])
        x, y = data["x_train"], data["y_train"]
        self.n = x.shape[0]
        dims = self.row.dims(x.shape[1], int(y.max()) + 1)
        host = lambda *s: np.random.default_rng(0).random(s, dtype=np.float32)  # noqa: E731
        if spec["device"] == "cuda":
            try:
                import cupy

                self.library, self.device = "cupy", cupy.cuda.Device(0)
                # Filled on the device: 4096-4096/full needs GBs of operands, slow to draw on the host.
                self.sync, matmul = self.device.synchronize, cupy.matmul
                rand = lambda *s: cupy.random.rand(*s, dtype=cupy.float32)  # noqa: E731
            except ImportError:
                import torch

                self.library, self.device = "torch", torch.device("cuda")
                self.sync, matmul = torch.cuda.synchronize, torch.matmul
                rand = lambda *s: torch.rand(s, device=self.device)  # noqa: E731
        else:
            self.library, self.device, self.sync, matmul, rand = "numpy", "cpu", (lambda: None), np.matmul, host
        self.matmul = matmul
        self.plans: dict[int, list[tuple[Any, Any, Any]]] = {}
        for size in set(self.row.batches(self.n)):
            acts = [rand(size, d) for d in dims]          # layer inputs (and the output)
            grads = [rand(size, d) for d in dims]         # gradients w.r.t. each of them
            weights = [rand(a, b) for a, b in zip(dims[:-1], dims[1:])]
            wgrads = [rand(a, b) for a, b in zip(dims[:-1], dims[1:])]
            plan = [(acts[i], weights[i], acts[i + 1]) for i in range(len(weights))]
            for i in reversed(range(len(weights))):
                plan.append((acts[i].T, grads[i + 1], wgrads[i]))
                if i > 0:
                    plan.append((grads[i + 1], weights[i].T, grads[i]))
            self.plans[size] = plan
        self.products_per_step = len(next(iter(self.plans.values())))

    def epoch(self) -> dict[str, Any]:
        matmul = self.matmul
        for size in self.row.batches(self.n):
            for a, b, out in self.plans[size]:
                matmul(a, b, out=out)
        self.sync()
        return {"loss": None, "accuracy": None, "products_per_step": self.products_per_step}


def worker_main(spec: dict[str, Any]) -> None:
    channel = Channel()
    if spec.get("pin_cpus"):
        # XLA ignores its thread flags (jax 0.10: CPU time twice the wall time under
        # intra_op_parallelism_threads=1) but sizes its pool from the CPUs it may run on.
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:spec["pin_cpus"]])
    if spec.get("engine_path"):  # another checkout of nnbackend (e.g. the engine before a change)
        sys.path.insert(0, spec["engine_path"])
    try:
        data = load_arrays(spec["data_dir"])
        base = rss_mb()
        kind = spec["contender"]
        if kind in NNBACKEND:
            run: Any = NnbackendRun(spec, data)
        elif kind in ("pytorch", "torch_cuda"):
            run = TorchRun(spec, data)
        elif kind == "jax":
            run = JaxRun(spec, data)
        elif kind == "floor":
            run = FloorRun(spec, data)
        else:
            raise ValueError(f"unknown contender {kind!r}")
    except Exception as exc:  # noqa: BLE001 - an unusable contender is reported, not fatal
        channel.send(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return
    channel.send(ready=True, base_rss_mb=base)
    try:
        run.run(channel)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        channel.send(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        return
    channel.send(done=True, peak_rss_mb=rss_mb("VmHWM"), device_peak_mb=run.device_peak_mb())


# -- parent side ------------------------------------------------------------------------------------
class Worker:
    """A contender's worker process for one row, driven epoch by epoch."""

    def __init__(self, contender: str, row: Row, args: argparse.Namespace, data_dir: str, validate: bool,
                 env: dict[str, str], seed: int = SEED) -> None:
        self.contender, self.row = contender, row
        contender, *settings = contender.split("%")  # numpy%OPENBLAS_THREAD_TIMEOUT=4: this worker's env
        kind, _, engine_path = contender.partition("@")
        spec = {"contender": kind, "row": row.name, "device": args.device, "threads": args.threads,
                "data_dir": data_dir, "validate": validate, "engine_path": engine_path or None, "seed": seed,
                "pin_cpus": args.threads if args.threads_forced and hasattr(os, "sched_setaffinity") else None}
        env = dict(env)
        env.update(setting.split("=", 1) for setting in settings)
        if kind == "jax":
            env.setdefault("JAX_PLATFORMS", "cuda" if args.device == "cuda" else "cpu")
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with the other workers
        stderr: Any = None if args.verbose else subprocess.DEVNULL
        if args.worker_logs and not args.verbose:
            Path(args.worker_logs).mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.contender}-{row.name}-seed{seed}")
            stderr = open(Path(args.worker_logs) / f"{name}.err", "a")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=str(REPO),
        )
        if stderr not in (None, subprocess.DEVNULL):
            stderr.close()  # the child has its own descriptor now
        self.epochs: list[dict[str, Any]] = []
        self.error: str | None = None
        self.failed = False  # an error after a successful start: a bug, not an unusable library
        self.final: dict[str, Any] = {}
        self.base_rss_mb: float | None = None

    def wait_ready(self) -> None:
        """Read the worker's first message: ready (with its memory after loading data) or an error."""
        message = self._read()
        self.base_rss_mb = message.get("base_rss_mb")
        if "error" in message:
            self.error = message["error"]

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"worker exited (code {self.proc.wait()}) without a reply; rerun with --verbose, "
                             "or see --worker-logs"}
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.error is None and not self.final

    def epoch(self) -> dict[str, Any] | None:
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        message = self._read()
        if "error" in message:
            self.error, self.failed = message["error"], True
            return None
        self.epochs.append(message)
        return message

    def finish(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                if self.error is None and not self.final:
                    message = self._read()
                    if "error" in message:
                        self.error, self.failed = message["error"], True
                    else:
                        self.final = message
            except (BrokenPipeError, OSError):
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_workers(contenders: list[str], row: Row, args: argparse.Namespace, data_dir: str, validate: bool,
                  env: dict[str, str], seed: int = SEED) -> list[Worker]:
    """Start every contender's worker at once (imports and data loading overlap), then wait for all."""
    workers = [Worker(c, row, args, data_dir, validate, env, seed) for c in contenders]
    for worker in workers:
        worker.wait_ready()
    return workers


def busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (from /proc/stat), or None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def foreign_load(seconds: float = 0.5) -> float | None:
    """Cores kept busy by everything else on the machine over the next ``seconds``."""
    before, own = busy_seconds(), process_seconds(os.getpid())
    if before is None:
        return None
    time.sleep(seconds)
    return max(0.0, busy_seconds() - before - (process_seconds(os.getpid()) - own)) / seconds


def wait_for_quiet(limit: float, max_wait: float) -> float | None:
    """Wait (up to ``max_wait`` seconds) until other processes use less than ``limit`` cores."""
    deadline = time.monotonic() + max_wait
    load = foreign_load()
    while load is not None and load > limit and time.monotonic() < deadline:
        time.sleep(1.0)
        load = foreign_load()
    return load


def interleave(workers: list[Worker], args: argparse.Namespace, rounds: int, stop=None, first: int = 0) -> None:
    """Run epochs of every live worker round by round, rotating who goes first each round (worker
    ``first`` in round 0).

    Each epoch records how many cores other processes kept busy meanwhile (``foreign_cores``). A
    round is clean when every epoch in it saw less than ``--max-foreign`` cores of foreign load; after
    the warm-up rounds, rounds are added (up to ``--max-rounds``) until ``rounds`` clean ones exist.
    """
    r = clean = 0
    while True:
        live = [w for w in workers if w.alive and not (stop and stop(w))]
        if not live:
            return
        if stop is None and (clean >= rounds or r >= args.max_rounds):
            return
        if stop is not None and r >= rounds:  # time-to-target: every epoch counts, clean or not
            return
        wait_for_quiet(args.max_foreign, args.quiet_wait)
        shift = (r + first) % len(live)
        dirty = False
        for worker in live[shift:] + live[:shift]:
            time.sleep(args.pause)  # let the previous worker's spinning BLAS/OpenMP threads go to sleep
            before, own = busy_seconds(), process_seconds(worker.proc.pid) + process_seconds(os.getpid())
            start = time.perf_counter()
            message = worker.epoch()
            wall = time.perf_counter() - start
            if message is not None and before is not None:
                used = process_seconds(worker.proc.pid) + process_seconds(os.getpid()) - own
                message["foreign_cores"] = max(0.0, busy_seconds() - before - used) / max(wall, 1e-9)
                message["round"] = r
                dirty = dirty or message["foreign_cores"] > args.max_foreign
        r += 1
        if r > args.warmup and not dirty:
            clean += 1


def paired_ratio(a: list[float], b: list[float]) -> float | None:
    pairs = [x / y for x, y in zip(a, b) if y > 0]
    return statistics.median(pairs) if pairs else None


def clean_rounds(workers: list[Worker], warmup: int, limit: float) -> set[int]:
    """The rounds after the warm-up in which every live contender's epoch saw little foreign load."""
    live = [w for w in workers if not w.error]
    rounds = {e.get("round", i) for w in live for i, e in enumerate(w.epochs) if e.get("round", i) >= warmup}
    return {r for r in rounds if all(
        any(e.get("round", i) == r and (e.get("foreign_cores") or 0.0) <= limit for i, e in enumerate(w.epochs))
        for w in live)}


def summarize_row(workers: list[Worker], warmup: int, limit: float, wanted: int) -> dict[str, Any]:
    clean = clean_rounds(workers, warmup, limit)
    noisy = len(clean) < min(3, wanted)
    use = (lambda e, i: e.get("round", i) >= warmup) if noisy else (lambda e, i: e.get("round", i) in clean)
    times = {w.contender: [e["time"] for i, e in enumerate(w.epochs) if use(e, i)] for w in workers if not w.error}
    medians = {c: statistics.median(t) for c, t in times.items() if t}
    peers = [c for c in medians if c in PEERS]  # (a contender@path is never a peer)
    fastest = min(peers, key=medians.get) if peers else None
    out: dict[str, Any] = {"fastest_peer": fastest, "clean_rounds": sorted(clean), "noisy": noisy,
                           "contenders": {}}
    for w in workers:
        entry: dict[str, Any] = {"base_rss_mb": w.base_rss_mb}
        if w.error:
            entry["error"], entry["failed"] = w.error, w.failed
        else:
            t = times.get(w.contender, [])
            entry.update(
                epoch_times=[e["time"] for e in w.epochs], warmup_epochs=warmup, timed_epochs=len(t),
                foreign_cores=[e.get("foreign_cores") for e in w.epochs],
                median_s=medians.get(w.contender), min_s=min(t) if t else None,
                ratio_to_fastest_peer=paired_ratio(t, times[fastest]) if fastest and t else None,
                ratio_to_floor=paired_ratio(t, times["floor"]) if "floor" in times and t and w.contender != "floor" else None,
                peak_rss_mb=w.final.get("peak_rss_mb"), device_peak_mb=w.final.get("device_peak_mb"),
                last_loss=w.epochs[-1].get("loss") if w.epochs else None,
                last_accuracy=w.epochs[-1].get("accuracy") if w.epochs else None,
            )
            if w.contender == "floor" and w.epochs:
                entry["products_per_step"] = w.epochs[-1].get("products_per_step")
        out["contenders"][w.contender] = entry
    return out


def run_rows(args: argparse.Namespace, rows: list[Row], contenders: list[str], data_dir: str,
             env: dict[str, str], save=lambda: None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for row in rows:
        print(f"\n== {row.name}: starting {', '.join(contenders)}", file=sys.stderr, flush=True)
        workers = start_workers(contenders, row, args, data_dir, False, env)
        for w in workers:
            if w.error:
                print(f"   {w.contender}: unusable: {w.error}", file=sys.stderr, flush=True)
        try:
            interleave(workers, args, args.epochs)
        finally:
            for w in workers:
                w.finish()
        results[row.name] = summarize_row(workers, args.warmup, args.max_foreign, args.epochs)
        save(results)
        for c, entry in results[row.name]["contenders"].items():
            if "median_s" in entry:
                print(f"   {c:<16} median {entry['median_s']:.3f} s/epoch over {entry['timed_epochs']} epochs; all: "
                      + ", ".join(f"{t:.3f}" + ("*" if (f or 0) > args.max_foreign else "")
                                  for t, f in zip(entry["epoch_times"], entry["foreign_cores"])),
                      file=sys.stderr, flush=True)
        print(f"   clean rounds {results[row.name]['clean_rounds']} (* = epoch disturbed by other processes)",
              file=sys.stderr, flush=True)
    return results


def run_t97(args: argparse.Namespace, contenders: list[str], data_dir: str, env: dict[str, str]) -> dict[str, Any]:
    """Wall time to the target validation accuracy, once per seed (initial weights and batch order).

    After two epochs every contender sits within a few tenths of a percent of 97%, so float rounding
    decides whether a run needs 2 or 3 epochs; several seeds and the median say more than one run.
    """
    row = Row.parse(args.t97_row)
    contenders = [c for c in contenders if c.split("%")[0].partition("@")[0] != "floor"]
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for seed in range(args.t97_seeds):
        print(f"\n== time to {args.target:.0%} validation accuracy, {row.name}, seed {seed}", file=sys.stderr, flush=True)
        workers = start_workers(contenders, row, args, data_dir, True, env, seed)

        def reached(w: Worker) -> bool:
            return bool(w.epochs) and (w.epochs[-1].get("val_accuracy") or 0) >= args.target

        try:
            # The first epoch after the workers start is slower for whoever runs it (0.5 s of 3 s when
            # two contenders swapped places): each seed lets another contender go first, so none carries
            # that cost in more than one seed, and the median of 3 seeds sees past it.
            interleave(workers, args, args.t97_max_epochs, stop=reached, first=seed)
        finally:
            for w in workers:
                w.finish()
        for w in workers:
            entry: dict[str, Any] = {"seed": seed}
            if w.error:
                entry["error"], entry["failed"] = w.error, w.failed
            else:
                entry.update(
                    reached=reached(w), epochs=len(w.epochs), wall_s=sum(e["time"] for e in w.epochs),
                    val_accuracy=[e.get("val_accuracy") for e in w.epochs],
                    foreign_cores=[e.get("foreign_cores") for e in w.epochs],
                    peak_rss_mb=w.final.get("peak_rss_mb"), base_rss_mb=w.base_rss_mb,
                )
                print(f"   {w.contender:<16} {'reached' if entry['reached'] else 'NOT reached'} after "
                      f"{entry['epochs']} epochs, {entry['wall_s']:.2f} s", file=sys.stderr, flush=True)
            runs[w.contender].append(entry)
    out: dict[str, Any] = {"row": row.name, "target": args.target, "max_epochs": args.t97_max_epochs,
                           "seeds": args.t97_seeds, "contenders": {}}
    for c, entries in runs.items():
        done = [e for e in entries if "error" not in e]
        if not done:
            out["contenders"][c] = dict(entries[0])
            continue
        ok = [e for e in done if e["reached"]]
        out["contenders"][c] = {
            "reached": len(ok) == len(done), "reached_runs": len(ok), "runs": len(done),
            "epochs": statistics.median(e["epochs"] for e in done),
            "wall_s": statistics.median(e["wall_s"] for e in done),
            "epochs_each": [e["epochs"] for e in done], "wall_s_each": [e["wall_s"] for e in done],
            "peak_rss_mb": max((e["peak_rss_mb"] or 0) for e in done) or None,
            "per_seed": entries,
        }
    return out


# -- machine ----------------------------------------------------------------------------------------
def machine(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    import numpy as np

    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "threads": args.threads, "device": args.device,
        "env": {k: env[k] for k in sorted(env)
                if k.startswith(("OPENBLAS", "OMP_", "MKL_", "JAX_", "XLA_", "MALLOC_", "NNBACKEND_FUSED"))},
        "versions": {"numpy": np.__version__},
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # BLAS as a worker sees it: the workers' environment (thread counts) applies, not the parent's.
    probe = ("import json, numpy\ntry:\n from threadpoolctl import threadpool_info\n"
             " print(json.dumps(threadpool_info()))\nexcept ImportError:\n print('null')")
    try:
        pools = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                                          text=True, timeout=60, check=False).stdout or "null")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pools = None
    info["blas"] = "threadpoolctl not installed" if pools is None else [
        {k: p.get(k) for k in ("internal_api", "prefix", "version", "architecture", "num_threads", "threading_layer")}
        for p in pools if p.get("user_api") == "blas"]
    for module in ("array_api_compat", "array_api_strict", "torch", "jax", "jaxlib", "cupy"):
        try:
            info["versions"][module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - not installed (or unusable) here
            pass
    import nnbackend

    info["versions"]["nnbackend"] = nnbackend.__version__
    # Whether the numpy contenders get the compiled kernels (nnbackend.fused), as a worker sees it.
    probe = "from nnbackend import fused; print(fused.describe())"
    try:
        info["fused_kernels"] = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                                               text=True, timeout=120, check=False, cwd=REPO).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["fused_kernels"] = "unknown"
    try:
        info["git"] = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                     capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        pass
    if args.device == "cuda":
        try:
            info["gpu"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            info["gpu"] = "nvidia-smi not found"
    return info


# -- output -----------------------------------------------------------------------------------------
def fmt(value: Any, spec: str = ".3f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(result: dict[str, Any]) -> str:
    lines = ["| row | contender | s/epoch (median) | x fastest peer | x floor | peak RSS MiB (after data load) |",
             "|---|---|---|---|---|---|"]
    for row, entry in result["rows"].items():
        for c, e in entry["contenders"].items():
            if "error" in e:
                lines.append(f"| {row} | {c} | {'FAILED' if e.get('failed') else 'unusable'}: {e['error']} | | | |")
                continue
            peer = "(peer)" if c in PEERS else fmt(e["ratio_to_fastest_peer"], ".2f")
            if c == entry["fastest_peer"]:
                peer = "1 (fastest peer)"
            mem = f"{fmt(e['peak_rss_mb'], '.0f')} ({fmt(e['base_rss_mb'], '.0f')})"
            if e.get("device_peak_mb"):
                mem += f", device {e['device_peak_mb']:.0f}"
            noisy = " (noisy)" if entry.get("noisy") else ""
            lines.append(f"| {row} | {c} | {fmt(e['median_s'])}{noisy} | {peer} | "
                         f"{'-' if c == 'floor' else fmt(e['ratio_to_floor'], '.2f')} | {mem} |")
    t97 = result.get("time_to_target")
    if t97:
        seeds = t97.get("seeds", 1)
        lines += ["", f"Wall time to {t97['target']:.0%} validation accuracy ({t97['row']}, evaluated every epoch; "
                      f"median of {seeds} seed(s), each seed's runs side by side):", "",
                  "| contender | reached | epochs (each seed) | wall s, median (each seed) | peak RSS MiB |",
                  "|---|---|---|---|---|"]
        for c, e in t97["contenders"].items():
            if "error" in e:
                lines.append(f"| {c} | {'FAILED' if e.get('failed') else 'unusable'}: {e['error']} | | | |")
            else:
                each = ", ".join(f"{w:.2f}" for w in e.get("wall_s_each", [e["wall_s"]]))
                epochs = ", ".join(str(k) for k in e.get("epochs_each", [e["epochs"]]))
                reached = f"{e.get('reached_runs', int(e['reached']))}/{e.get('runs', 1)}"
                lines.append(f"| {c} | {reached} | {epochs} | {e['wall_s']:.2f} ({each}) | {fmt(e['peak_rss_mb'], '.0f')} |")
    return "\n".join(lines)


def machine_text(m: dict[str, Any]) -> str:
    blas = m.get("blas")
    if isinstance(blas, list):
        blas = "; ".join(f"{b['prefix']} {b['version']} ({b['internal_api']}), kernel {b['architecture']}, "
                         f"{b['num_threads']} threads ({b['threading_layer']})" for b in blas)
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    text = (f"- CPU: {m['cpu']}, {m['cores']} cores; threads per contender: {m['threads']}\n"
            f"- BLAS (NumPy): {blas}\n- Python {m['python']} on {m['platform']}\n- {versions}\n"
            f"- BLAS/OpenMP/JAX environment: {env}\n- engine commit: {m.get('git', '?')}")
    if "fused_kernels" in m:
        text += f"\n- nnbackend's compiled kernels (NumPy): {m['fused_kernels']}"
    if m.get("gpu"):
        text += f"\n- GPU: {m['gpu']}"
    return text


def update_readme(result: dict[str, Any], json_path: Path) -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{README_START}\n{README_END}\n"
    if README_START not in text:
        text += f"\n{README_START}\n{README_END}\n"
    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    s = result["settings"]
    body = (f"\n### Latest results: {result['date']}, {result['machine']['threads']} thread(s) per contender\n\n"
            f"Run: `{json_path.relative_to(REPO)}`, device {s['device']}, "
            f"{s['epochs']} timed epochs after {s['warmup']} warm-up, {s['n_train']} training images.\n\n"
            f"{machine_text(result['machine'])}\n\n{table(result)}\n")
    readme.write_text(head + README_START + body + README_END + tail)


# -- main -------------------------------------------------------------------------------------------
def prepare_data(args: argparse.Namespace, folder: str) -> int:
    import numpy as np

    import nnbackend as nb

    split = nb.data.paper_split(nb.data.load(args.dataset))
    x, y = split.x_train, split.y_train
    if args.n_train:
        x, y = x[: args.n_train], y[: args.n_train]
    arrays = {"x_train": x, "y_train": y, "x_val": split.x_val, "y_val": split.y_val}
    for name, value in arrays.items():
        np.save(Path(folder) / f"{name}.npy", np.ascontiguousarray(value))
    return int(x.shape[0])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: rows 128/128 and 128/full, 2 timed epochs, no time-to-97%%")
    p.add_argument("--rows", help=f"comma-separated rows (default cpu: {','.join(CPU_ROWS)}; cuda: {','.join(CUDA_ROWS)}; "
                                  "none: only the time to the target accuracy)")
    p.add_argument("--contenders", help=f"comma-separated, from {','.join(ALL_CONTENDERS)} "
                                        f"(default cpu: {','.join(CPU_CONTENDERS)}; cuda: {','.join(CUDA_CONTENDERS)}); "
                                        "numpy@PATH: nnbackend from another checkout, e.g. the engine before a change; "
                                        "numpy%%OPENBLAS_THREAD_TIMEOUT=4: an environment variable for that worker")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--epochs", type=int, help="timed epochs per row after the warm-up (default 5; --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every library: BLAS, PyTorch, XLA; each worker is also pinned to that "
                        "many CPUs (default: all cores, each library's own default)")
    p.add_argument("--dataset", default="mnist", help="nnbackend data set name (default mnist; tests use mnist-sample)")
    p.add_argument("--n-train", type=int, default=0, help="use only the first N training images (default: all)")
    p.add_argument("--t97", dest="t97", action="store_true", default=None, help="measure the time to the target accuracy")
    p.add_argument("--no-t97", dest="t97", action="store_false")
    p.add_argument("--target", type=float, default=0.97, help="validation accuracy for the time-to-target run")
    p.add_argument("--t97-row", default=T97_ROW)
    p.add_argument("--t97-max-epochs", type=int, default=15)
    p.add_argument("--t97-seeds", type=int, default=3, help="time-to-target runs, one per seed (default 3)")
    p.add_argument("--pause", type=float, default=0.2, help="seconds between two contenders' epochs (default 0.2)")
    p.add_argument("--max-foreign", type=float, default=0.25,
                   help="a round is clean when other processes kept fewer cores busy than this (default 0.25)")
    p.add_argument("--max-rounds", type=int, help="give up collecting clean rounds after this many (default 3 x epochs + warm-up)")
    p.add_argument("--quiet-wait", type=float, default=20.0,
                   help="before each round, wait up to this many seconds for other processes to go quiet (default 20)")
    p.add_argument("--openblas-thread-timeout", type=int, default=None,
                   help="set OPENBLAS_THREAD_TIMEOUT for the workers (4..30: 2^N cycles of spinning)")
    p.add_argument("--out", help="JSON path (default bench/results/bench_train-<date>[-quick].json)")
    p.add_argument("--readme", dest="readme", action="store_true", default=None, help="write the table into bench/README.md")
    p.add_argument("--no-readme", dest="readme", action="store_false")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    p.add_argument("--worker-logs", metavar="DIR", help="keep each worker's stderr in DIR/<contender>-<row>-seed<N>.err")
    p.add_argument("--require", default="numpy", metavar="LIST",
                   help="contenders that must run: one that cannot start counts as a failure, not as unusable "
                        "(default numpy; the GPU check names cupy)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = 2 if args.quick else 5
    if args.t97 is None:
        args.t97 = not args.quick
    args.threads_forced = args.threads is not None
    if args.threads is None:
        args.threads = os.cpu_count() or 1
    if args.max_rounds is None:
        args.max_rounds = args.warmup + 3 * args.epochs
    if args.readme is None:
        args.readme = not args.quick and not args.n_train and args.out is None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return 0
    rows = [] if args.rows == "none" else [Row.parse(r) for r in (args.rows.split(",") if args.rows else
                                   QUICK_ROWS if args.quick else CUDA_ROWS if args.device == "cuda" else CPU_ROWS)]
    contenders = (args.contenders.split(",") if args.contenders else
                  list(CUDA_CONTENDERS if args.device == "cuda" else CPU_CONTENDERS))
    def known(c: str) -> bool:
        c, *settings = c.split("%")
        kind, _, path = c.partition("@")
        return kind in ALL_CONTENDERS and (not path or Path(path, "nnbackend").is_dir()) and \
            all("=" in setting for setting in settings)

    unknown = [c for c in contenders if not known(c)]
    if unknown:
        raise SystemExit(f"unknown contender(s) {unknown}; choose from {', '.join(ALL_CONTENDERS)} "
                         "(NAME@PATH runs an nnbackend contender from the checkout at PATH; "
                         "NAME%VAR=VALUE sets an environment variable for that contender's worker)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if args.openblas_thread_timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = str(args.openblas_thread_timeout)
    if args.threads_forced:  # one thread count for every library in every worker
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
        if args.threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                "intra_op_parallelism_threads=1").strip()
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in env:
            print(f"warning: {var}={env[var]} is set and may slow NumPy's BLAS; run under "
                  "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)
    folder = tempfile.mkdtemp(prefix="nnbackend-bench-")
    try:
        n_train = prepare_data(args, folder)
        started = datetime.datetime.now()
        result: dict[str, Any] = {
            "date": started.isoformat(timespec="seconds"),
            "settings": {"rows": [r.name for r in rows], "contenders": contenders, "device": args.device,
                         "epochs": args.epochs, "warmup": args.warmup, "dataset": args.dataset, "n_train": n_train,
                         "lr": LR, "optimizer": "Adam", "dtype": "float32", "pause_s": args.pause,
                         "max_foreign_cores": args.max_foreign, "max_rounds": args.max_rounds,
                         "memory": "peak RSS = VmHWM of each contender's own worker process; base = RSS after "
                                   "imports and loading the data"},
            "machine": machine(args, env),
        }
        out = Path(args.out) if args.out else HERE / "results" / (
            f"bench_train-{started:%Y-%m-%d-%H%M}{'-quick' if args.quick else ''}"
            f"{'-cuda' if args.device == 'cuda' else ''}.json")
        out.parent.mkdir(parents=True, exist_ok=True)

        def save(rows: dict[str, Any] | None = None) -> None:  # after every row: a timeout keeps the rest
            if rows is not None:
                result["rows"] = rows
            result["seconds"] = (datetime.datetime.now() - started).total_seconds()
            out.write_text(json.dumps(result, indent=1))

        result["rows"] = run_rows(args, rows, contenders, folder, env, save)
        if args.t97:
            result["time_to_target"] = run_t97(args, contenders, folder, env)
        save()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n" + machine_text(result["machine"]) + "\n\n" + table(result))
    print(f"\nJSON: {out}")
    if args.readme:
        update_readme(result, out.resolve())
        print(f"table written to {HERE / 'README.md'}")
    entries = [e for row in result["rows"].values() for e in row["contenders"].items()]
    entries += list(result.get("time_to_target", {}).get("contenders", {}).items())
    required = set(args.require.split(","))
    failed = sorted({c for c, e in entries
                     if e.get("failed") or ("error" in e and c.split("%")[0].partition("@")[0] in required)})
    if failed:
        print(f"contenders that failed while running: {', '.join(failed)}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
