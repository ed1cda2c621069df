"""``nnbackend evaluate``: re-evaluate a saved model on the test part of a data set."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..backend import get_backend
from ..io import load_model
from ..losses import CrossEntropy
from ..runs import (RUN_FILES, RunConfig, evaluate_model, load_split, read_record, reported_losses,
                    test_images_seen_in_training, write_json)
from . import options

EXAMPLES = """\
examples:
  nnbackend evaluate runs/20250101-120000-mnist-sample-adam
  nnbackend evaluate runs/mnist-official/model.npz --data mnist --split official
  nnbackend evaluate runs/mnist-adam --subset all --out eval-full
  nnbackend evaluate runs/mnist-adam --backend torch --dtype float64
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="re-evaluate a saved model on a data set's test part",
        description="Evaluate a saved model (a run folder, or a model .npz file) on the test part of a data "
        "set and print the per-class report. Data set, split and subset default to those recorded in the "
        "run's config.json.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="RUN_OR_MODEL", help="a run folder (holding model.npz) or a .npz model file")
    options.add_data_options(parser, default=None)
    options.add_backend_options(parser, dtype_default=None)
    parser.add_argument("--out", type=options.output_folder, metavar="DIR", help="also write metrics.json and confusion.png into DIR")
    parser.set_defaults(handler=run, parser=parser)


def _locate(path: Path, *, data_given: bool) -> tuple[Path, RunConfig | None]:
    """The model file and the run configuration (config.json) beside it, if any."""
    if path.is_dir():
        model = path / "model.npz"
        if not model.is_file() and (path / "checkpoint.npz").is_file():
            raise FileNotFoundError(
                f"the run in {path} did not finish (no model.npz yet); continue it with 'nnbackend train "
                f"--out {options.shell_quote(str(path))} --resume', or evaluate its last checkpoint: "
                f"{options.shell_quote(str(path / 'checkpoint.npz'))}")
        if not model.is_file():
            raise FileNotFoundError(f"{path} holds no model.npz; pass a run folder written by 'nnbackend train'")
    elif path.is_file() or path.with_name(path.name + ".npz").is_file():
        model = path
    else:
        raise FileNotFoundError(f"{path}: no such run folder or model file")
    return model, _record_beside(model, data_given)


def _record_beside(model: Path, data_given: bool) -> RunConfig | None:
    """The run configuration in the config.json beside ``model``, if any; a damaged one is passed over
    (with a note) when ``--data`` says which data to use, and is an error otherwise."""
    if not (model.parent / "config.json").is_file():
        return None
    try:
        return read_record(model.parent)[1]
    except ValueError:
        if not data_given:
            raise
        print(f"note: {model.parent / 'config.json'} cannot be read (damaged); evaluating with the options given")
        return None


def run(args: argparse.Namespace) -> int:
    model_path, recorded = _locate(Path(args.model), data_given=args.data is not None)
    if recorded is None and args.data is None:
        args.parser.error(f"{model_path} has no config.json beside it to say which data it belongs to; pass --data NAME")
    out = Path(args.out) if args.out else None
    if out is not None:
        # Not into a run (even an unfinished one) or a grid: its files would make it look finished.
        options.refuse_clashes(out, (*RUN_FILES, "results.json"), "an evaluation")
        options.writable_folder(out)
    config = recorded or RunConfig(data=args.data, subset=None)
    changes = {}
    if args.data and args.data != config.data:
        changes.update(data=args.data, subset=None, data_dir=None)  # the run's subset was of its own data
    for field in ("data_dir", "split", "split_seed", "subset"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    if changes.get("subset") == ():  # --subset all
        changes["subset"] = None
    backend = get_backend(options.requested_backend(args.backend), dtype=args.dtype)
    model = load_model(model_path, backend=backend, dtype=args.dtype)
    config = dataclasses.replace(config, **changes, dtype=model.backend.dtype_name)
    print(f"backend: {model.backend.describe()}" + (f" ({model.backend.note})" if model.backend.note else ""))
    split = load_split(config, flatten=len(model.input_shape) == 1)
    if model.output_shape[0] != split.n_classes:
        raise ValueError(f"the model has {model.output_shape[0]} outputs but {config.data} has {split.n_classes} "
                         "classes; pass the --data it was trained on")
    print(f"model: {model_path} ({model.n_params:,} parameters)")
    print(split.summary())
    if recorded and recorded.data != config.data:
        print(f"note: this model was trained on {recorded.data}; these are {config.data} images, so its "
              "accuracy here says little")
    if recorded and recorded.subset and "subset" not in changes:
        print(f"note: the run's recorded subset {','.join(map(str, recorded.subset))} applies; "
              "--subset all evaluates on the whole test part")
    if recorded and (recorded.split, recorded.split_seed) != (config.split, config.split_seed):
        seen = test_images_seen_in_training(recorded, config)
        if seen:
            print(f"note: {seen:,} of these {len(split.y_test):,} test images were training images of this model "
                  f"(it trained on the {recorded.split} split shuffled with seed {recorded.split_seed}): the "
                  "accuracy is optimistic")
    if recorded:
        losses = reported_losses(model, config.loss)
    else:
        losses = {"cross_entropy": CrossEntropy(from_logits=not model.ends_with_softmax)}
    figures, report = evaluate_model(model, split.x_test, split.y_test, losses, split.class_names)
    loss_text = ", ".join(f"{k.removeprefix('loss:')} {v:.4f}" for k, v in figures.items() if k.startswith("loss:"))
    print(f"\ntest: accuracy {report.accuracy:.4f}, loss {loss_text} ({len(split.y_test):,} samples)\n")
    print(report.to_table())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "metrics.json", {
            "model": str(model_path), "data": split.description, "backend": model.backend.describe(),
            "test": {"samples": len(split.y_test), "accuracy": report.accuracy,
                     "loss": figures[f"loss:{config.loss}" if recorded else "loss:cross_entropy"],
                     "losses": {k.removeprefix("loss:"): v for k, v in figures.items() if k.startswith("loss:")},
                     "weighted": report.weighted, "macro": report.macro, "report": report.to_dict()},
        })
        print(f"wrote {out / 'metrics.json'}")
        try:
            from ..plots import plot_confusion_matrix

            plot_confusion_matrix(report.confusion, report.class_names, out / "confusion.png",
                                  title=f"{config.data}: test confusion matrix")
            print(f"wrote {out / 'confusion.png'}")
        except ImportError as exc:
            print(f"confusion.png skipped: {exc}")
    return 0
