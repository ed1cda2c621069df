"""Make ``nnbackend/data/sample/``: real MNIST images shipped in the package, so ``load("mnist-sample")``
works on a machine with no data and no network.

The official MNIST files are found through nnbackend's own search path (``--data-dir``,
``$NNBACKEND_DATA``, the cache, else a download). From each class the script draws, with a fixed seed,
``--train / 10`` images of the official train set and ``--test / 10`` of the official test set, keeps
them in their official order, and writes the four gzipped IDX files with a README and licence notice.
The output is byte-for-byte reproducible. It prints the SHA-256 sums to paste into the ``mnist-sample``
entry of ``nnbackend/data/registry.py``.

Run from the repository root: ``PYTHONPATH=. python scripts/make_mnist_sample.py``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from nnbackend.data import dataset_names, load, write_idx
from nnbackend.data.idx import read_content
from nnbackend.data.registry import MNIST_FILES, get_spec

OUT = Path(__file__).resolve().parents[1] / "nnbackend" / "data" / "sample"

README = """\
# MNIST sample

{n_train:,} training and {n_test:,} test images of MNIST, real and unmodified, so that
`nnbackend.data.load("mnist-sample")` works with no data installed and no network. It is for smoke runs,
examples and tests; the paper's experiments use the full data set (`load("mnist")`).

Made by `scripts/make_mnist_sample.py --seed {seed} --train {n_train} --test {n_test}` from the official
files (SHA-256 of their uncompressed content as registered for `mnist`): from each digit,
`numpy.random.default_rng({seed})` drew {per_train} images of the official training set and {per_test} of the
official test set without replacement (training set first, digits 0 to 9 in turn); the chosen images keep
their official order. Images are 28x28 uint8, labels uint8, in gzipped IDX files like the originals.

SHA-256 of the uncompressed content:

```
{sums}
```

Licence: CC BY-SA 3.0, see LICENSE.txt. MNIST was made by Yann LeCun, Corinna Cortes and
Christopher J.C. Burges (http://yann.lecun.com/exdb/mnist/).
"""

LICENSE = """\
The files in this folder are a selection of whole, unmodified images and labels from the MNIST
database of handwritten digits by Yann LeCun, Corinna Cortes and Christopher J.C. Burges
(http://yann.lecun.com/exdb/mnist/).

MNIST is licensed under the Creative Commons Attribution-Share Alike 3.0 license (CC BY-SA 3.0),
https://creativecommons.org/licenses/by-sa/3.0/. This selection is distributed under the same license.
The rest of nnbackend is under the MIT license; this license covers only the data in this folder.
"""


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of each label value, drawn without replacement, sorted: ``(10 * per_class,)``."""
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a folder holding the official MNIST files")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=4000, help="training images, a multiple of 10")
    parser.add_argument("--test", type=int, default=1000, help="test images, a multiple of 10")
    args = parser.parse_args()
    if args.train % 10 or args.test % 10:
        parser.error("--train and --test must be multiples of 10 (the same number from each digit)")

    mnist = load("mnist", data_dir=args.data_dir)
    rng = np.random.default_rng(args.seed)
    train = stratified(mnist.train_labels, args.train // 10, rng)
    test = stratified(mnist.test_labels, args.test // 10, rng)
    arrays = (
        mnist.train_images[train], mnist.train_labels[train].astype(np.uint8),
        mnist.test_images[test], mnist.test_labels[test].astype(np.uint8),
    )

    args.out.mkdir(parents=True, exist_ok=True)
    sums = {}
    for base, array in zip(MNIST_FILES, arrays):
        path = args.out / f"{base}.gz"
        write_idx(path, array)
        sums[base] = hashlib.sha256(read_content(path)).hexdigest()
    (args.out / "README.md").write_text(README.format(
        n_train=args.train, n_test=args.test, seed=args.seed, per_train=args.train // 10,
        per_test=args.test // 10, sums="\n".join(f"{s}  {b}" for b, s in sums.items()),
    ))
    (args.out / "LICENSE.txt").write_text(LICENSE)

    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({size:,} bytes) from {mnist.source}")
    registered = get_spec("mnist-sample").sha256 if "mnist-sample" in dataset_names() else {}
    if dict(registered) != sums:
        print("update the mnist-sample sha256 in nnbackend/data/registry.py:")
        for base, digest in sums.items():
            print(f'        "{base}": "{digest}",')


if __name__ == "__main__":
    main()
