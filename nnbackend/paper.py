"""The paper's experiments as data: its grid of runs (tables 1-6), its per-class tables (7-8), and the
numbers it reported, one table per structure. ``nnbackend reproduce`` runs and reports these, and the
tables beyond the paper in :data:`BEYOND` (table 9: a CNN, the paper's first item of future work).

Settings shared by every run (from the design notes beside the repository, DESIGN.md): the paper's split (pool train + test, seed 42, 10% test, 80%
train, 10% validation), full batch, 260 epochs, evaluation every 20, ReLU hidden layers, a Softmax
output trained with the paper's loss (element-wise binary cross-entropy), hidden sizes 512 or 512, 256.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BEYOND",
    "BeyondTable",
    "CLASS_REPORTS",
    "FULL",
    "MLP_GRID",
    "PAPER_IMAGES",
    "QUICK",
    "TABLES",
    "ClassReportSpec",
    "GridSettings",
    "Reported",
    "RunSpec",
    "Table",
    "paper_test_images",
]


@dataclasses.dataclass(frozen=True)
class Reported:
    """What the paper reported for one run: validation accuracy and loss at the last epoch.

    ``diverged_by`` is the epoch by which the paper says the run had diverged.
    """

    val_accuracy: float
    val_loss: float | None = None
    diverged_by: int | None = None


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a table's row. Runs with equal :attr:`key` are the same run."""

    table: int
    data: str
    optimizer: str
    lr: float
    layers: tuple[int, ...] = (512,)
    paper: Reported | None = None
    model: str = "mlp"

    @property
    def key(self) -> str:
        """The run's name and folder, e.g. ``mnist-adam-lr0.005-512x256`` or ``mnist-cnn-adam-lr0.001``."""
        if self.model == "cnn":
            return f"{self.data}-cnn-{self.optimizer}-lr{self.lr:g}"
        return f"{self.data}-{self.optimizer}-lr{self.lr:g}-{'x'.join(map(str, self.layers))}"


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of the paper: its number, title, the column that varies and its rows."""

    number: int
    title: str
    varies: str  # "lr" or "layers"
    rows: tuple[RunSpec, ...]


@dataclasses.dataclass(frozen=True)
class BeyondTable:
    """A table beyond the paper: runs with their own training recipe (``full``; ``quick`` for smoke runs),
    each reported beside the paper's best result on the same data (its ``paper`` figures) and the
    accuracy it must reach on the test part (``target_test_accuracy``)."""

    number: int
    title: str
    rows: tuple[RunSpec, ...]
    full: GridSettings
    quick: GridSettings
    recipe: str
    target_test_accuracy: dict[str, float]


@dataclasses.dataclass(frozen=True)
class ClassReportSpec:
    """A per-class test table of the paper: the run whose model it reports and its weighted averages."""

    table: int
    title: str
    run: RunSpec
    weighted: tuple[float, float, float]  # precision, recall, F1


@dataclasses.dataclass(frozen=True)
class GridSettings:
    """How every run of the grid trains; :data:`FULL` is the paper's, :data:`QUICK` a smoke version."""

    epochs: int
    eval_every: int
    subset: tuple[int, int, int] | None = None  # (train, val, test) images of the paper split
    quick: bool = False
    batch_size: int | None = None  # full batch
    loss: str = "paper"
    activation: str = "relu"
    seed: int = 0
    lr_factor: float = 1.0  # learning-rate multiplier after every epoch


FULL = GridSettings(epochs=260, eval_every=20)
QUICK = GridSettings(epochs=30, eval_every=10, subset=(5000, 1000, 1000), quick=True)

_ONE, _TWO = (512,), (512, 256)

TABLE_1 = Table(1, "MNIST, gradient descent: learning rate", "lr", (
    RunSpec(1, "mnist", "gd", 0.1, paper=Reported(0.916, 0.050)),
    RunSpec(1, "mnist", "gd", 0.5, paper=Reported(0.958, 0.025)),
    RunSpec(1, "mnist", "gd", 1.0, paper=Reported(0.091, 4.186, diverged_by=160)),
))

TABLE_2 = Table(2, "MNIST, Adam: learning rate", "lr", (
    RunSpec(2, "mnist", "adam", 0.0005, paper=Reported(0.961)),
    RunSpec(2, "mnist", "adam", 0.001, paper=Reported(0.970)),
    RunSpec(2, "mnist", "adam", 0.005, paper=Reported(0.970)),
    RunSpec(2, "mnist", "adam", 0.01, paper=Reported(0.967)),
    RunSpec(2, "mnist", "adam", 0.05, paper=Reported(0.305)),
))

TABLE_3 = Table(3, "MNIST, Adam 0.005: one vs two hidden layers", "layers", (
    RunSpec(3, "mnist", "adam", 0.005, _ONE, paper=Reported(0.970, 0.020)),
    RunSpec(3, "mnist", "adam", 0.005, _TWO, paper=Reported(0.970, 0.028)),
))

TABLE_4 = Table(4, "Fashion-MNIST, gradient descent: learning rate", "lr", (
    RunSpec(4, "fashion-mnist", "gd", 0.01, paper=Reported(0.775, 0.122)),
    RunSpec(4, "fashion-mnist", "gd", 0.1, paper=Reported(0.833, 0.083)),
    RunSpec(4, "fashion-mnist", "gd", 0.5, paper=Reported(0.106, diverged_by=80)),
))

TABLE_5 = Table(5, "Fashion-MNIST, Adam: learning rate", "lr", (
    RunSpec(5, "fashion-mnist", "adam", 0.0005, paper=Reported(0.891)),
    RunSpec(5, "fashion-mnist", "adam", 0.001, paper=Reported(0.894)),
    RunSpec(5, "fashion-mnist", "adam", 0.005, paper=Reported(0.896)),
    RunSpec(5, "fashion-mnist", "adam", 0.01, paper=Reported(0.886)),
    RunSpec(5, "fashion-mnist", "adam", 0.05, paper=Reported(0.203)),
))

TABLE_6 = Table(6, "Fashion-MNIST, Adam 0.005: one vs two hidden layers", "layers", (
    RunSpec(6, "fashion-mnist", "adam", 0.005, _ONE, paper=Reported(0.896, 0.054)),
    RunSpec(6, "fashion-mnist", "adam", 0.005, _TWO, paper=Reported(0.884, 0.062)),
))

TABLE_7 = ClassReportSpec(7, "MNIST: per-class test report of the best model (Adam 0.005)",
                          RunSpec(7, "mnist", "adam", 0.005, _ONE), weighted=(0.9719, 0.9719, 0.9719))

TABLE_8 = ClassReportSpec(8, "Fashion-MNIST: per-class test report of the best model (Adam 0.005)",
                          RunSpec(8, "fashion-mnist", "adam", 0.005, _ONE), weighted=(0.9004, 0.9001, 0.8996))

CNN_FULL = GridSettings(epochs=10, eval_every=1, batch_size=128, loss="cross_entropy", lr_factor=0.8)
CNN_QUICK = dataclasses.replace(CNN_FULL, epochs=2, subset=(2000, 500, 500), quick=True)

TABLE_9 = BeyondTable(
    9, "Beyond the paper: a small CNN (nnbackend.models.cnn) beside the paper's best MLP",
    rows=(
        RunSpec(9, "mnist", "adam", 0.001, paper=Reported(0.970, 0.020), model="cnn"),
        RunSpec(9, "fashion-mnist", "adam", 0.001, paper=Reported(0.896, 0.054), model="cnn"),
    ),
    full=CNN_FULL, quick=CNN_QUICK,
    recipe="two blocks of 3x3 Conv2D (32, 64 channels, 'same') + BatchNorm + 2x2 MaxPool + ReLU, Dense 128 + "
           "ReLU, Dropout 0.25, Dense 10 (421,834 parameters); categorical cross-entropy; Adam lr 0.001, "
           "multiplied by 0.8 after every epoch; batch 128; 10 epochs",
    target_test_accuracy={"mnist": 0.990, "fashion-mnist": 0.910},
)

#: The paper's data per data set: its MNIST runs used a 42,000-image subset (33,600 train / 4,200 validation /
#: 4,200 test after its 80/10/10 split); its Fashion-MNIST runs, like ours, all 70,000 images.
PAPER_IMAGES = {"mnist": 42_000, "fashion-mnist": 70_000}


def paper_test_images(data: str) -> int:
    """How many test images the paper's numbers for ``data`` come from (10% of its pool)."""
    return PAPER_IMAGES[data] // 10


TABLES: dict[int, Table] = {t.number: t for t in (TABLE_1, TABLE_2, TABLE_3, TABLE_4, TABLE_5, TABLE_6)}
BEYOND: dict[int, BeyondTable] = {TABLE_9.number: TABLE_9}
CLASS_REPORTS: dict[int, ClassReportSpec] = {t.table: t for t in (TABLE_7, TABLE_8)}

MLP_GRID: list[RunSpec] = [row for table in TABLES.values() for row in table.rows]
"""Every run of tables 1-6, in table order (shared runs appear once per table that lists them)."""
