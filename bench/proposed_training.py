"""The Trainer change proposed in ``bench/proposed-training.patch``, as a subclass the benchmark runs.

``nnbackend/training.py`` belongs to the Trainer's owner; this file holds the proposed ``_train_epoch``
so that ``bench_train.py --contenders numpy_chunked`` can measure it beside the current Trainer
(``numpy``) in the same interleaved run. ``python bench/proposed_training.py`` rewrites the patch from
this file: the method below is copied into ``training.py`` as it stands.

The change: a batch larger than ``max_rows`` (default 8192) runs forward and backward in slices of at
most ``max_rows`` rows, summing the slices' gradients (each slice's mean-loss gradient weighted by its
share of the batch) and taking one optimizer step on the sum. The step is the same gradient-descent
step up to float rounding; what changes is memory and speed: a full-batch step on 56,000 MNIST images
holds one slice's activations (16 MiB per 512-wide layer) instead of the whole batch's (109 MiB), and
slices stay below glibc's 32 MiB mmap threshold, so their buffers are reused instead of page-faulted
anew on every step. With Dropout the masks are drawn per slice (same distribution, other values).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from nnbackend.inplace import writeable  # noqa: E402
from nnbackend.progress import Progress  # noqa: E402
from nnbackend.training import Trainer, _rows  # noqa: E402


class ProposedTrainer(Trainer):
    """:class:`~nnbackend.Trainer` with the proposed ``_train_epoch``."""

    # --- begin proposed method (copied into Trainer by the patch) ---
    #: The most rows one forward/backward pass handles; larger batches run in slices of this size with
    #: their gradients summed into one optimizer step (same step, a fraction of the memory).
    max_rows = 8192

    def _train_epoch(self, data: tuple[Any, Any, Any], batch_size: int, order: np.ndarray | None,
                     progress: Progress) -> dict[str, Any]:
        """One pass over ``data`` = (inputs, dense targets, labels or None), in ``order`` (host indices)
        or as stored. Only the epoch's two sums come back to the host.

        A batch of more than ``max_rows`` rows runs forward and backward in slices of ``max_rows``; each
        slice's gradient is weighted by its share of the batch and the sum drives one optimizer step.
        """
        model, optimizer, loss = self.model, self.optimizer, self.loss
        xd, td, ld = data
        xp, n = model.backend.xp, xd.shape[0]
        idx_all = None if order is None else xp.asarray(order, device=array_api_compat.device(xd))
        loss_sum = correct = 0
        for begin in range(0, n, batch_size):
            end = min(begin + batch_size, n)  # the Array API leaves out-of-range slice stops undefined
            summed = None
            for lo in range(begin, end, self.max_rows):
                hi = min(lo + self.max_rows, end)
                if lo == 0 and hi == n and idx_all is None:
                    xb, tb, lb = xd, td, ld
                else:
                    idx = None if idx_all is None else idx_all[lo:hi]
                    xb, tb, lb = (_rows(a, idx, lo, hi) for a in (xd, td, ld))
                out = model.forward(xb)
                value, grad = loss._value_and_gradient(out, tb)
                sliced = hi - lo < end - begin
                if sliced:
                    grad = grad * ((hi - lo) / (end - begin))  # a slice's share of the batch mean
                model.backward(grad)
                if sliced:
                    grads = model.gradients()
                    if summed is None:  # a copy: the next backward pass may write into these arrays
                        summed = {k: xp.asarray(g, copy=True) for k, g in grads.items()}
                    else:
                        for k, g in grads.items():
                            if writeable(summed[k]):
                                summed[k] += g
                            else:
                                summed[k] = summed[k] + g
                loss_sum = loss_sum + value * (hi - lo)
                if lb is not None:
                    correct = correct + xp.sum(xp.astype(xp.argmax(out, axis=1) == lb, xp.int64))
            if summed is None:
                optimizer.step(model)
            else:
                model.set_parameters(optimizer.update(model.parameters(), summed), check=False)
            progress.step()
        return {"loss": float(loss_sum) / n, "accuracy": int(correct) / n if ld is not None else None}
    # --- end proposed method ---


def _method_source() -> str:
    text = Path(__file__).read_text()
    start = text.index("# --- begin proposed method")
    start = text.index("\n", start) + 1
    return text[start:text.rindex("\n", 0, text.index("# --- end proposed method")) + 1]


def write_patch() -> Path:
    """Rewrite ``bench/proposed-training.patch`` against the current ``nnbackend/training.py``."""
    import difflib

    path = REPO / "nnbackend" / "training.py"
    old = path.read_text()
    start = old.index("    def _train_epoch(")
    stop = old.index("    # -- evaluation", start)
    new = old[:start] + _method_source() + "\n" + old[stop:]
    if "from .inplace import writeable" not in new:
        new = new.replace("from .history import History\n", "from .history import History\nfrom .inplace import writeable\n", 1)
    diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                "a/nnbackend/training.py", "b/nnbackend/training.py")
    out = Path(__file__).with_name("proposed-training.patch")
    out.write_text("".join(diff))
    return out


if __name__ == "__main__":
    print(f"wrote {write_patch()}")
