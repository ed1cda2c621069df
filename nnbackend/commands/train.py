"""``nnbackend train``: train a model (an MLP, or the CNN) on a data set and write a run folder."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

from ..io import CheckpointError
from ..layers import ACTIVATIONS
from ..optimizers import OPTIMIZERS
from ..runs import LOSS_CHOICES, MODELS, RUN_FILES, RunConfig, read_record, train_run
from ..training import TrainingInterrupted
from . import options

EXAMPLES = """\
examples:
  nnbackend train                                   # the shipped MNIST sample, ~10 s
  nnbackend train --data mnist --layers 512 --optimizer adam --lr 0.005 --epochs 20
  nnbackend train --data fashion-mnist --loss paper --optimizer gd --lr 0.1 --batch-size full \\
                  --epochs 260 --eval-every 20 --out runs/fashion-gd
  nnbackend train --optimizer gd --lr 0.05 --momentum 0.9 --nesterov --early-stopping 3
  nnbackend train --data mnist --model cnn --batch-size 128 --lr 0.001 --lr-factor 0.8 --epochs 10
"""

# Optimizer hyperparameter options: option dest -> constructor argument.
HYPERPARAMETERS = {
    "momentum": "momentum", "dampening": "dampening", "nesterov": "nesterov", "weight_decay": "weight_decay",
    "betas": "betas", "eps": "eps", "amsgrad": "amsgrad", "alpha": "alpha", "centered": "centered",
    "rho": "rho", "lr_decay": "lr_decay", "initial_accumulator_value": "initial_accumulator_value",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model (an MLP, or --model cnn) and write a run folder",
        description="Train a multi-layer perceptron (or, with --model cnn, a small CNN) and write a run folder: "
        "config.json, history.csv/.json, metrics.json, model.npz, curves.png, confusion.png and report.md.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_data_options(parser, default="mnist-sample")

    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=MODELS, default="mlp",
                       help="mlp: Dense layers (--layers, --activation); cnn: nnbackend.models.cnn(), two 3x3 "
                       "conv blocks with BatchNorm and max-pooling, a Dense 128 head (default: mlp)")
    model.add_argument("--layers", type=options.hidden_layers, default=None, metavar="SIZES",
                       help="mlp: hidden layer sizes, e.g. 512,256; '' for none (default: 128)")
    model.add_argument("--activation", choices=sorted(ACTIVATIONS), default=None,
                       help="mlp: the hidden layers' activation (default: relu)")
    model.add_argument("--loss", choices=list(LOSS_CHOICES), default="cross_entropy",
                       help="; ".join(f"{name}: {choice.description}" for name, choice in LOSS_CHOICES.items())
                       + " (default: cross_entropy)")

    opt = parser.add_argument_group("optimizer")
    opt.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam", help="(default: adam)")
    opt.add_argument("--lr", type=options.positive_float, metavar="LR",
                     help="learning rate (default: the optimizer's own, e.g. adam 0.001, gd 0.1)")
    opt.add_argument("--momentum", type=options.non_negative_float, help="gd, rmsprop: momentum factor in [0, 1)")
    opt.add_argument("--dampening", type=options.non_negative_float, help="gd: dampening of the momentum")
    opt.add_argument("--nesterov", action="store_true", default=None, help="gd: Nesterov momentum")
    opt.add_argument("--weight-decay", type=options.non_negative_float, help="every optimizer: L2 penalty "
                     "(adamw: decoupled)")
    opt.add_argument("--betas", type=options.float_list, metavar="B1,B2", help="adam, adamw: moment decay rates")
    opt.add_argument("--eps", type=options.positive_float, help="adam, adamw, rmsprop, adagrad, adadelta: "
                     "added to the denominator")
    opt.add_argument("--amsgrad", action="store_true", default=None, help="adam, adamw: the AMSGrad variant")
    opt.add_argument("--alpha", type=options.non_negative_float, help="rmsprop: smoothing constant")
    opt.add_argument("--centered", action="store_true", default=None, help="rmsprop: centred variant")
    opt.add_argument("--rho", type=options.non_negative_float, help="adadelta: decay rate")
    opt.add_argument("--lr-decay", type=options.non_negative_float, help="adagrad: learning-rate decay")
    opt.add_argument("--initial-accumulator-value", type=options.non_negative_float, metavar="V",
                     help="adagrad: the starting value of the sum of squared gradients")

    fit = parser.add_argument_group("training")
    fit.add_argument("--epochs", type=options.positive_int, default=10, help="(default: 10)")
    fit.add_argument("--batch-size", type=options.batch_size, default=64, metavar="N|full",
                     help="samples per step, or full for plain gradient descent (default: 64)")
    fit.add_argument("--max-rows", type=options.max_rows, default="auto", metavar="N|auto|none",
                     help="a bigger batch runs forward and backward in slices of N rows, gradients summed "
                     "into one step; bounds memory (default: auto, 2048 rows on a CPU, whole on a GPU)")
    fit.add_argument("--lr-factor", type=options.decay_factor, default=1.0, metavar="F",
                     help="multiply the learning rate by F (in (0, 1]) after every epoch (default: 1, constant)")
    fit.add_argument("--eval-every", type=options.positive_int, default=1, metavar="N",
                     help="evaluate on the validation part every N epochs and after the last (default: 1)")
    fit.add_argument("--early-stopping", type=options.positive_int, metavar="PATIENCE",
                     help="stop after PATIENCE evaluations without a lower validation loss, keeping the best weights")
    fit.add_argument("--min-delta", type=options.non_negative_float, default=0.0,
                     help="the smallest decrease that counts as an improvement for --early-stopping (default: 0)")
    fit.add_argument("--seed", type=options.non_negative_int, default=0, help="seeds the initial weights and the batch order (default: 0)")

    options.add_backend_options(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=options.output_folder, metavar="DIR", help="the run folder (default: runs/<timestamp>-<data>-<optimizer>)")
    out.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out DIR from its checkpoint.npz, with the options "
                     "recorded in its config.json (other model and training options are ignored)")
    chatter = out.add_mutually_exclusive_group()
    chatter.add_argument("-v", "--verbose", action="store_true", help="a line per epoch instead of a progress bar")
    chatter.add_argument("-q", "--quiet", action="store_true", help="no progress bar or evaluation lines")
    parser.set_defaults(handler=run, parser=parser)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` the options describe; a usage error for a hyperparameter the chosen
    optimizer does not take."""
    accepted = inspect.signature(OPTIMIZERS[args.optimizer].__init__).parameters
    hyperparameters = {}
    for dest, name in HYPERPARAMETERS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if name not in accepted:
            takes = ", ".join(f"--{p.replace('_', '-')}" for p in accepted if p != "self")
            args.parser.error(f"--{dest.replace('_', '-')} does not apply to the {args.optimizer} optimizer "
                              f"(it takes {takes})")
        hyperparameters[name] = list(value) if isinstance(value, tuple) else value
    if args.min_delta and not args.early_stopping:
        args.parser.error("--min-delta needs --early-stopping PATIENCE")
    if args.dampening is not None and not args.momentum:
        args.parser.error("--dampening damps the momentum: it needs --momentum (> 0) too")
    for option, value in (("--layers", args.layers), ("--activation", args.activation)):
        if args.model == "cnn" and value is not None:
            args.parser.error(f"{option} applies to --model mlp; the cnn's layers are fixed (nnbackend.models.cnn)")
    try:
        return _config(args, hyperparameters)
    except ValueError as exc:  # a value only the optimizer or the run can judge (momentum, betas, ...)
        args.parser.error(str(exc))


def _config(args: argparse.Namespace, hyperparameters: dict) -> RunConfig:
    return RunConfig(
        data=args.data, data_dir=args.data_dir, split=args.split or "paper",
        split_seed=42 if args.split_seed is None else args.split_seed, subset=args.subset or None,
        model=args.model, layers=(128,) if args.layers is None else args.layers, activation=args.activation or "relu",
        loss=args.loss, optimizer=args.optimizer, lr=args.lr,
        hyperparameters=hyperparameters, epochs=args.epochs, batch_size=args.batch_size, max_rows=args.max_rows,
        lr_factor=args.lr_factor,
        eval_every=args.eval_every, early_stopping=args.early_stopping, min_delta=args.min_delta,
        backend=options.requested_backend(args.backend), dtype=args.dtype, seed=args.seed,
    )


def default_out(config: RunConfig) -> Path:
    stem = f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{config.data}-{config.optimizer}"
    out, n = Path(stem), 1
    while out.exists():
        n += 1
        out = Path(f"{stem}-{n}")
    return out


def resumed_config(out: Path | None) -> tuple[RunConfig, list[str] | None]:
    """The configuration and command recorded in the run folder ``out``, for ``--resume``."""
    if out is None:
        raise ValueError("--resume needs --out DIR, the folder of the run to continue")
    if not (out / "config.json").is_file():
        raise ValueError(f"{out} holds no run to resume (no config.json); start it without --resume")
    if (out / "metrics.json").is_file():
        raise ValueError(f"the run in {out} already finished; nothing to resume")
    record, config = read_record(out)
    return config, record.get("command")


def _ignored_with_resume(args: argparse.Namespace) -> list[str]:
    """The options given beside --resume, which the recorded configuration overrides."""
    defaults = vars(args.parser.parse_args([]))
    kept = {"out", "resume", "quiet", "verbose"}
    return [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
            if name in defaults and name not in kept and value != defaults[name]]


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if args.resume:
        config, command = resumed_config(out)
        ignored = _ignored_with_resume(args)
        if ignored:
            print(f"note: --resume continues the run as recorded in {out / 'config.json'}; "
                  f"ignoring {', '.join(ignored)}")
        if not (out / "checkpoint.npz").is_file():
            print(f"note: {out} has no checkpoint.npz (the run stopped before its first one); "
                  "starting it again from epoch 1")
    else:
        config, command = config_from_args(args), ["nnbackend", *args.argv]
        out = out or default_out(config)
        if (out / "config.json").exists():
            raise ValueError(f"{out} already holds a run; pass another --out, add --resume to continue it, "
                             "or delete it first")
        options.refuse_clashes(out, (*RUN_FILES, "results.json", "runs"), "a training run")
    options.writable_folder(out)
    verbose = 0 if args.quiet else 2 if args.verbose else 1
    try:
        result = train_run(config, out, verbose=verbose, log=print, command=command, resume=args.resume)
    except CheckpointError as exc:
        if not args.resume:
            raise
        raise CheckpointError(f"{exc}; to start the run over, delete {out / 'checkpoint.npz'} and "
                              f"run the same command again") from None
    except TrainingInterrupted:
        print(f"nnbackend: interrupted; the checkpoint is in {out}. Continue with: "
              f"nnbackend train --out {options.shell_quote(str(out))} --resume", file=sys.stderr)
        return 130
    test = result.metrics["test"]
    losses = ", ".join(f"{name} {value:.4f}" for name, value in test["losses"].items())
    if result.history.stopped_epoch:  # the trainer said when and why it stopped
        print(f"kept the weights of epoch {result.history.best_epoch}, the best validation loss")
    if result.history.diverged:
        print(f"the run diverged at epoch {result.history.diverged_epoch}; the model kept the last finite weights")
    print(f"\ntest: accuracy {test['accuracy']:.4f}, loss {losses} ({test['samples']:,} samples)\n")
    print(result.report.to_table())
    print(f"run folder: {out}")
    return 0
