"""Every registered component is covered where it must be: one concept, several lists (the layer
registry, the parity matrix, the gradient and formula checks, the README). A new layer, loss or optimizer
that misses one of them fails here, naming the list (CONTRIBUTING.md has the checklist)."""

from __future__ import annotations

import inspect
from pathlib import Path

import nnbackend.layers as layers
from nnbackend import losses, optimizers, parity, runs
from nnbackend.commands import train
from nnbackend.layers.base import Layer

from . import test_gradients, test_optimizers

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CASES = {case.name for case in parity.CASES}


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def _public_layers() -> set[type]:
    return {cls for cls in _subclasses(Layer)
            if cls.__module__.startswith("nnbackend.layers") and not cls.__name__.startswith("_")
            and not inspect.isabstract(cls)}


def test_every_layer_class_can_be_saved_and_loaded():
    missing = sorted(cls.__name__ for cls in _public_layers() if cls.__name__ not in layers.LAYERS)
    assert not missing, f"add to LAYERS in nnbackend/layers/__init__.py (load_model needs it): {missing}"


def test_every_layer_has_a_parity_case_and_a_readme_entry():
    for name in layers.LAYERS:
        assert any(case.startswith(f"layer:{name}") for case in CASES), f"no parity case for {name} (parity.CASES)"
        assert f"`{name}`" in README, f"README's table of parts does not list {name}"


def test_every_activation_has_a_gradient_check():
    checked = set(test_gradients.LAYERS)
    for name, cls in layers.ACTIVATIONS.items():
        assert cls.__name__ in checked, f"no finite-difference check for {cls.__name__} (tests/test_gradients.py)"


def test_every_loss_has_a_parity_case_and_a_gradient_check():
    for cls in set(losses.LOSSES.values()):
        assert any(case.startswith(f"loss:{cls.__name__}") for case in CASES), f"no parity case for {cls.__name__}"
        assert any(key.startswith(cls.__name__) for key in test_gradients.LOSSES), \
            f"no finite-difference check for {cls.__name__} (tests/test_gradients.py)"


def test_every_optimizer_is_checked_against_its_formula_torch_and_the_parity_matrix():
    formulas = {row[0].split()[0] for row in test_optimizers.FORMULAS}
    torch_pairs = {row[0] for row in test_optimizers.TORCH_PAIRS}
    for cls in set(optimizers.OPTIMIZERS.values()):
        name = cls.__name__
        assert name in formulas, f"no formula check for {name} (FORMULAS in tests/test_optimizers.py)"
        assert name in torch_pairs, f"no torch.optim comparison for {name} (TORCH_PAIRS in tests/test_optimizers.py)"
        assert any(case.startswith(f"optimizer:{name}") for case in CASES), f"no parity case for {name}"
        assert f"`{name}`" in README, f"README's table of parts does not list {name}"


def test_every_layer_declares_the_shapes_it_builds():
    # load_model checks a file's arrays against state_shapes() before building: they must agree.
    import nnbackend as nb
    from nnbackend.random import Streams

    extra = [(lambda: nb.layers.Conv2D(2, 3, (3, 2)), (2, 6, 6)), (lambda: nb.layers.BatchNorm(3), (3, 4, 4)),
             (lambda: nb.layers.BatchNorm(5), (5,)), (lambda: nb.layers.Dense(None, 4), (7,))]
    for make, input_shape in [*test_gradients.LAYERS.values(), *extra]:
        layer = make()
        declared = layer.state_shapes(input_shape)
        layer.build(input_shape, nb.get_backend("numpy"), Streams(0))
        built = {key: tuple(value.shape) for key, value in {**layer.params, **layer.buffers}.items()}
        assert declared == built, type(layer).__name__


def test_every_optimizer_hyperparameter_has_a_command_line_option():
    options = set(train.HYPERPARAMETERS.values())
    for cls in set(optimizers.OPTIMIZERS.values()):
        taken = set(inspect.signature(cls.__init__).parameters) - {"self", "lr"}
        assert taken <= options, f"no option in commands/train.py for {cls.__name__}'s {sorted(taken - options)}"


def test_every_loss_can_be_chosen_on_the_command_line():
    made = {type(choice.make()) for choice in runs.LOSS_CHOICES.values()}
    for cls in set(losses.LOSSES.values()):
        assert cls in made, f"no runs.LOSS_CHOICES entry makes a {cls.__name__} (nnbackend train --loss)"
