"""Command line: ``dlcore train | predict | info | bench`` (also ``python -m dlcore ...``).

Every failure a user can cause ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlcore.activations import ACTIVATIONS, get_activation
from dlcore.backends import BackendError, get_backend, storage
from dlcore.backends.comm import MPIComm, get_communicator, launcher_rank, launcher_size
from dlcore.data import Normalization, load_dataset, train_test_split
from dlcore.datasets import DATASETS, GENERATED
from dlcore.distributed import DataParallel
from dlcore.initializers import INITIALIZERS
from dlcore.metrics import confusion_matrix, rmse
from dlcore.minibatch import train_validation_split
from dlcore.model import Network
from dlcore.optimizers import OPTIMIZERS
from dlcore.persistence import NotAModelFile
from dlcore.training import (
    DIVERGENCE_FACTOR,
    ConsoleProgress,
    History,
    Plan,
    TrainingDiverged,
    format_cost,
    recorded_l2_cost,
)

#: --iterations when neither --iterations nor --epochs is given
DEFAULT_ITERATIONS = 10_000
DEFAULT_SAMPLES = 400  # --samples: the course's planar set
#: --lr when not given: the course's 1.2 for its planar classifier; for regression 0.1 (at 1.2 gradient
#: descent on standardized targets oscillates: R^2 0.91 against 0.999 at 0.1 on a linear problem)
DEFAULT_LR, REGRESSION_LR = 1.2, 0.1
#: --lr for adam and rmsprop, which scale each parameter's step to about alpha (1.2 is gradient descent's:
#: planar 78.8% / 60.0% test accuracy with it, 93.8% with 0.01, 88.8% / 90.0% with Keras's 0.001)
ADAPTIVE_LR = 0.01
ADAPTIVE = ("adam", "rmsprop")
#: the most classes whose test confusion matrix train prints (one row and column each)
MAX_CONFUSION_CLASSES = 30
BACKEND_HELP = (
    "auto (default, or $DLCORE_BACKEND), numpy, torch, cupy, array_api_strict; optional :device "
    "(cupy:1, torch:cuda:0)"
)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, batch schedulers), handled like Ctrl-C; exit code 143."""


#: exit codes of an interrupted run: 128 + the signal number
EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE = 130, 143, 141


def _stopped(exc: BaseException) -> tuple[str, int]:
    """("interrupted" or "terminated (SIGTERM)", exit code) for a KeyboardInterrupt or :class:`Terminated`."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)", EXIT_TERMINATED
    return "interrupted", EXIT_INTERRUPTED


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


class _Help(argparse.HelpFormatter):
    """Help that shows every option's default (unless it is None/False or the text already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default is not None
            and default is not False
            and default is not argparse.SUPPRESS
            and "default" not in text
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus the --help hint) and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------------------------
# Argument types
# ----------------------------------------------------------------------------------------------
def _layers(text: str) -> list[int]:
    try:
        dims = [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers wants comma-separated integers like 2,4,1; got {text!r}"
        ) from None
    if len(dims) < 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"--layers wants at least two positive sizes like 2,4,1; got {text!r}"
        )
    return dims


def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], wants: str) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)``, refused with "wants ..." unless ``ok(value)``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"wants {wants}; got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
_seed = _checked(int, lambda v: v >= 0, "an integer >= 0")
_learning_rate = _checked(float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
_fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1), e.g. 0.2")
_non_negative = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
_divergence_factor = _checked(
    float, lambda v: v == 0 or (math.isfinite(v) and v > 1), "0 (off) or a finite number > 1, e.g. 1000"
)
HIDDEN_ACTIVATIONS = [a for a in ACTIVATIONS if a not in ("linear", "softmax")]


def _hidden_activation(text: str) -> str:
    """A hidden activation spec as in model files: relu, tanh, sigmoid, leaky_relu or leaky_relu:0.2."""
    try:
        name = get_activation(text).name
    except (ValueError, KeyError, TypeError) as exc:
        if text.startswith("leaky_relu:"):  # the name was right, the slope not: say why
            raise argparse.ArgumentTypeError(str(exc)) from None
        name = None
    if name is None or name not in HIDDEN_ACTIVATIONS:
        raise argparse.ArgumentTypeError(
            f"wants one of {', '.join(HIDDEN_ACTIVATIONS)} (leaky_relu:SLOPE, e.g. leaky_relu:0.2); "
            f"got {text!r}"
        )
    return text


_file_name = _checked(str, lambda v: v != "", "a file name (or leave the option out)")
_keep_prob = _checked(float, lambda v: 0.0 < v <= 1.0, "a probability in (0, 1], e.g. 0.8 (1 = no dropout)")

#: --header's choices as the data loaders' ``header``
HEADERS = {"auto": None, "yes": True, "no": False}


def _header_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--header",
        choices=HEADERS,
        default="auto",
        help="whether a CSV's first line names the columns (auto: when it holds no number, or its "
        "label is text above numeric labels)",
    )


def build_parser() -> argparse.ArgumentParser:
    from dlcore import __version__

    parser = _Parser(
        prog="dlcore",
        description="Train and use L-layer networks (binary and multi-class classifiers, regressors) on "
        "NumPy, PyTorch, CuPy or array-api-strict.",
    )
    parser.add_argument("--version", action="version", version=f"dlcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,info,bench}")

    train = sub.add_parser("train", help="train a network, report its accuracy, optionally save and plot it")
    train.add_argument("--backend", default=None, help=BACKEND_HELP)
    train.add_argument(
        "--dataset",
        default="planar",
        metavar="NAME|PATH",
        help=f"built-in {', '.join(GENERATED)} (default: planar), digits (scikit-learn's 8x8 digits, "
        "10 classes; needs scikit-learn) or a .csv / .npz file",
    )
    train.add_argument(
        "--samples",
        type=_positive_int,
        default=None,
        help=f"examples in a generated built-in dataset (default: {DEFAULT_SAMPLES})",
    )
    _header_option(train)
    train.add_argument(
        "--layers",
        type=_layers,
        default=None,
        help="layer sizes n[0],...,n[L] (default: n_x,4,n_out; n_x,64,C for C classes)",
    )
    train.add_argument(
        "--task",
        default=None,
        choices=["binary", "multiclass", "regression"],
        help="default: from the labels (0/1 binary, integers multiclass, real values regression)",
    )
    train.add_argument(
        "--hidden-activation",
        type=_hidden_activation,
        default="tanh",
        metavar="{" + ",".join(HIDDEN_ACTIVATIONS) + "}",
        help="g of the hidden layers; leaky_relu:SLOPE sets the slope (leaky_relu:0.2)",
    )
    train.add_argument("--init", default="small", choices=INITIALIZERS, help="initial weights")
    train.add_argument(
        "--lr",
        type=_learning_rate,
        default=None,
        help=f"learning rate alpha (default {DEFAULT_LR:g}, {REGRESSION_LR:g} for regression; "
        f"{ADAPTIVE_LR:g} with --optimizer {' or '.join(ADAPTIVE)})",
    )
    train.add_argument(
        "--iterations",
        type=_positive_int,
        default=None,
        help=f"gradient steps (default: {DEFAULT_ITERATIONS} unless --epochs is given)",
    )
    train.add_argument(
        "--epochs", type=_positive_int, default=None, help="passes over the data (instead of --iterations)"
    )
    train.add_argument(
        "--decay-rate",
        type=_non_negative,
        default=0.0,
        help="learning-rate decay: alpha = alpha0 / (1 + decay_rate * epoch)",
    )
    train.add_argument(
        "--validation-split",
        type=_fraction,
        default=0.0,
        help="fraction of the training split held out to watch the validation cost (0 = none)",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="early stopping: stop when the validation cost has not improved for this many cost checks "
        "and keep the best parameters (needs --validation-split)",
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=None, help="mini-batch size (default: the full batch)"
    )
    train.add_argument("--optimizer", default="gd", choices=list(OPTIMIZERS), help="update rule")
    train.add_argument("--l2", type=_non_negative, default=0.0, help="L2 regularization lambda")
    train.add_argument(
        "--keep-prob", type=_keep_prob, default=1.0, help="dropout keep probability (default 1: no dropout)"
    )
    train.add_argument("--seed", type=_seed, default=1, help="seeds the data, the split and the weights")
    train.add_argument(
        "--device-rng",
        action="store_true",
        help="draw shuffles and dropout masks on the GPU (faster; not bit-identical to the CPU's)",
    )
    train.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "float64", "bfloat16", "float16"],
        help="float precision (default: float64); bfloat16/float16 mean --precision with that dtype",
    )
    train.add_argument(
        "--precision",
        choices=["mixed", "bfloat16", "float16"],
        default=None,
        help="compute in a low dtype with float32 master weights (mixed: bfloat16 on torch, float16 on "
        "numpy and cupy; float16 scales the loss dynamically)",
    )
    train.add_argument("--test-fraction", type=_fraction, default=0.2, help="held out for testing")
    train.add_argument(
        "--no-normalize", action="store_true", help="do not standardize the features (nor regression targets)"
    )
    train.add_argument(
        "--cost-every",
        type=_positive_int,
        default=None,
        help="print and check (NaN/inf) the cost every N iterations (with mini-batches: every N epochs; "
        "default: about 10 times in a run)",
    )
    train.add_argument(
        "--divergence-factor",
        type=_divergence_factor,
        default=DIVERGENCE_FACTOR,
        metavar="F",
        help="stop as diverged when the cost rises above F times its first value "
        f"(default {DIVERGENCE_FACTOR:g}; 0 = off)",
    )
    train.add_argument(
        "--out", metavar="MODEL.npz", type=_file_name, default=None, help="save the trained model here"
    )
    train.add_argument(
        "--plot",
        metavar="FILE.png",
        type=_file_name,
        default=None,
        help="draw the cost curve and, for 2-D data, the decision regions (.png, .pdf, .svg, ...)",
    )
    train.add_argument(
        "--quiet", action="store_true", help="print only errors and the final report (no progress)"
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training as one rank of an MPI job: mpiexec -n 4 dlcore train --distributed ... "
        "(every rank reads the same data; NCCL between GPUs with --backend cupy; needs dlcore[mpi])",
    )

    predict = sub.add_parser("predict", help="write predictions (CSV) of a saved model for new data")
    predict.add_argument("--model", required=True, metavar="MODEL.npz", help="a model saved by train --out")
    predict.add_argument(
        "--data",
        required=True,
        metavar="NAME|PATH",
        help=f"a .csv (features, label optional), .npz (X, Y optional) or a built-in dataset "
        f"({', '.join(DATASETS)})",
    )
    _header_option(predict)
    predict.add_argument("--backend", default=None, help=BACKEND_HELP)
    predict.add_argument(
        "--out", metavar="FILE.csv", type=_file_name, default=None, help="write here instead of stdout"
    )
    predict.add_argument("--seed", type=_seed, default=1, help="seed of a generated built-in --data set")

    sub.add_parser("info", help="backends available here (and why not), GPU, library versions, BLAS")
    bench_help = "the benchmark report (loops vs vectorized, steps vs floor): dlcore bench --help"
    sub.add_parser("bench", help=bench_help, add_help=False)
    return parser


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file (an existing one by any name, or one yet to be written)."""
    if Path(a).exists() and Path(b).exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _say_auto(backend: Any, file: Any = None) -> None:
    """Say which backend ``auto`` chose and why (e.g. the fall back to NumPy without a GPU)."""
    if backend.note:
        print(backend.note, file=file or sys.stdout)


def _percent(fraction: float) -> str:
    """``fraction`` in percent to 0.1, never rounded to a perfect or a null score it is not: 3,999 right
    of 4,000 printed "100.0%"."""
    if 0.9995 <= fraction < 1.0:  # would round to 100.0
        return ">99.9%"
    if 0.0 < fraction < 0.0005:  # would round to 0.0
        return "<0.1%"
    return f"{100 * fraction:.1f}%"


def _setup(args: argparse.Namespace, backend: Any) -> tuple:
    """Load the data, split it and build the network: this rank's own work, no collective in it (a
    rank that fails here must not leave the others waiting)."""
    known = args.dataset in DATASETS or Path(args.dataset).is_file()  # else load_dataset says what it is
    if args.samples is not None and args.dataset not in GENERATED and known:
        raise ValueError(
            f"--samples sets the size of a generated set ({', '.join(GENERATED)}); {args.dataset} holds "
            "its own examples: drop --samples"
        )
    if args.dataset in GENERATED:
        args.samples = args.samples or DEFAULT_SAMPLES  # resolved: the ranks compare it
    if not args.quiet:
        _say_auto(backend)
    X, Y, classes = load_dataset(
        args.dataset,
        backend,
        seed=args.seed,
        # standardized data is cast after the standardization (Network.check_X): read it exact
        dtype=args.dtype if args.no_normalize else "float64",
        m=args.samples,
        task=args.task,
        with_classes=True,
        header=HEADERS[args.header],
    )
    if Y is None:
        raise ValueError(f"{args.dataset} has no labels Y; training needs them")
    if classes is not None and len(classes) < 2:  # a model file names 2 or more classes
        raise ValueError(
            f"{args.dataset}: every label is {classes[0]!r}; "
            "a classifier needs examples of two classes or more"
        )
    X_train, Y_train, X_test, Y_test = train_test_split(X, Y, args.test_fraction, backend, seed=args.seed)
    task = args.task
    if task is None and classes is not None and len(classes) > 2:  # names: classes, not numbers
        task = "multiclass"
    net = Network.for_data(
        X,
        Y,
        args.layers,
        args.hidden_activation,
        task=task,
        init=args.init,
        backend=backend,
        seed=args.seed,
        dtype=args.dtype,
    )
    args.classes = classes  # class names (text labels): printed, saved in the model, written by predict
    return net, X, Y, X_train, Y_train, X_test, Y_test


#: train's options that may differ between data-parallel ranks: where the data lies (the ranks' data is
#: compared, and the class names read from it), on which device, and what only rank 0 does (print, save,
#: draw)
RANK_OWN = ("command", "dataset", "backend", "distributed", "quiet", "out", "plot", "classes")


def _start_mpi(args: argparse.Namespace) -> MPIComm | None:
    """``--distributed``: MPI started on this rank (every rank but 0 silent from here on, rank 0 speaking
    for the job), so that a rank failing later tells the others instead of leaving them waiting in
    MPI_Init; without it, ``None``, and a warning when an MPI launcher started several copies."""
    size = launcher_size()
    if not args.distributed:
        if size is not None and size > 1 and launcher_rank() == 0:
            warnings.warn(
                f"started by an MPI launcher as {size} processes without --distributed: {size} independent "
                "copies are training the same model; add --distributed to train one model together",
                UserWarning,
                stacklevel=2,
            )
        return None
    if size is None:
        raise ValueError(
            "--distributed needs an MPI launcher to start the ranks: mpiexec -n 2 dlcore train "
            "--distributed ... (pip install 'dlcore[mpi]' brings MPICH's mpiexec)"
        )
    try:
        world = MPIComm()
    except BackendError:  # e.g. no MPI library: the same on every rank, so rank 0 alone says it
        if launcher_rank() not in (None, 0):
            _silence_rank()
        raise
    if world.rank != 0:  # only rank 0 prints, draws and saves
        _silence_rank()
        args.out = args.plot = None
    return world


def _data_parallel(
    args: argparse.Namespace, backend: Any, world: MPIComm | None
) -> tuple[DataParallel | None, Any]:
    """This rank's part of the MPI job ``world`` (NCCL between CuPy GPUs, each rank on the GPU numbered by
    its rank on its machine) and the backend to train on; ``(None, backend)`` without ``--distributed``."""
    if world is None:
        return None, backend
    parallel = DataParallel(get_communicator("auto", backend), terminate_error=Terminated)
    local = getattr(parallel.comm, "local_rank", None)
    if local is not None and backend.device_spec() in (None, "0"):  # NCCL: one GPU per rank
        backend = get_backend(f"{backend.name}:{local}")
    if parallel.rank == 0 and not args.quiet:
        print(f"distributed: {parallel.size} ranks over {parallel.comm.name.upper()}")
    return parallel, backend


def _silence_rank() -> None:
    """A rank other than 0: its output goes nowhere (rank 0 speaks for the job; a rank's own failure
    still reaches stderr through :meth:`DataParallel.abort_on_error`)."""
    global _SILENT
    _SILENT = True
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)
    warnings.simplefilter("ignore")


#: set on data-parallel ranks other than 0: their errors (the same as rank 0's) are not printed again
_SILENT = False


class _OutputWithoutReader:
    """stdout for ``train``: once its reader goes away (``dlcore train --out m.npz | head -3``) what the
    run prints is dropped and the run goes on to its end and its save, instead of ending with nothing
    saved (a Ctrl-C still stops it, keeping the parameters, as always)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.out.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.out.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        _quiet_stdout()  # what the buffer still holds goes to /dev/null at exit

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self.out, name)


def train(args: argparse.Namespace) -> int:
    with contextlib.redirect_stdout(_OutputWithoutReader(sys.stdout)):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    world = _start_mpi(args)  # --distributed: MPI runs on every rank before anything can fail on one
    with DataParallel(world).agreement() if world is not None else contextlib.nullcontext():
        if args.epochs is not None and args.iterations is not None:
            raise ValueError(
                "give --epochs or --iterations, not both (an iteration is one mini-batch update, an epoch "
                "one pass over the data)"
            )
        if args.patience is not None and not args.validation_split:
            raise ValueError("--patience needs --validation-split (e.g. --validation-split 0.1)")
        if args.epochs is None and args.iterations is None:
            args.iterations = DEFAULT_ITERATIONS
        if args.dtype in ("bfloat16", "float16"):  # --dtype bfloat16 is --precision bfloat16
            if args.precision not in (None, args.dtype):
                raise ValueError(f"--dtype {args.dtype} and --precision {args.precision} disagree; give one")
            args.precision, args.dtype = args.dtype, None
        if args.precision and args.dtype not in (None, "float32"):
            raise ValueError(f"--precision keeps float32 master weights; drop --dtype {args.dtype}")
        args.dtype = args.dtype or ("float32" if args.precision else "float64")
        backend = get_backend(args.backend)  # e.g. cupy on the one machine without a GPU
    if args.precision == "mixed" and backend.low_precision_dtypes():  # the dtype "mixed" means here
        args.precision = backend.low_precision_dtypes()[0]
    parallel, backend = _data_parallel(args, backend, world)
    # data-parallel: a rank whose set-up fails tells the others, which raise its message too (a rank that
    # failed before MPI started left the others waiting in MPI_Init for good)
    with parallel.agreement() if parallel is not None else contextlib.nullcontext():
        if parallel is None or parallel.rank == 0:  # where the model and the picture are written
            _check_outputs(args)
        net, X, Y, X_train, Y_train, X_test, Y_test = _setup(args, backend)
    if args.lr is None:
        regression = REGRESSION_LR if net.task == "regression" else DEFAULT_LR
        args.lr = ADAPTIVE_LR if args.optimizer in ADAPTIVE else regression
    if parallel is not None:  # collective from here on: first make sure every rank trains alike
        # the options as resolved (an explicit default is no other option); e.g. --no-normalize on one
        # rank hung the job in the next collective
        parallel.check_same_options(
            **{f"--{k.replace('_', '-')}": v for k, v in vars(args).items() if k not in RANK_OWN}
        )
        parallel.check_same_data(X=X_train, Y=Y_train)
    X_fit, Y_fit, held = X_train, Y_train, None
    if args.validation_split:  # held out here, so that the normalization never sees it
        rng = backend.rng(args.seed, on_device=args.device_rng)
        X_fit, Y_fit, *held = train_validation_split(X_train, Y_train, args.validation_split, rng)
    net.normalization = None if args.no_normalize else Normalization.fit(X_fit, backend, parallel)
    if net.task == "regression" and not args.no_normalize:  # one learning rate then suits any target's scale
        net.target_normalization = Normalization.fit(Y_fit, backend, parallel, rows="target")
    if X_test.shape[1]:  # what the report will score, checked now (float32's range once standardized):
        net.check_XY(X_test, Y_test)  # a refusal after training lost the model it had not saved yet
    m_train = X_fit.shape[1]
    held_out = X_train.shape[1] - m_train
    if not args.quiet:
        n_x, m = X.shape
        validation = f"{held_out} validation, " if held_out else ""
        split = f"{m_train} train, {validation}{X_test.shape[1]} test"
        print(
            f"data: {args.dataset}, m = {m} examples ({split}), "
            f"n_x = {n_x} features{'' if net.normalization else ', not normalized'}; network "
            f"{net.layer_dims}, {args.hidden_activation} hidden units, {net.task}"
            + (", targets standardized" if net.target_normalization else "")
            + (f"; classes {', '.join(args.classes)}" if args.classes else "")
        )

    general = (
        args.epochs
        or args.batch_size
        or args.optimizer != "gd"
        or args.l2
        or args.keep_prob < 1
        or args.decay_rate
        or args.validation_split
    )
    plan = Plan.of(m_train, args.batch_size, args.iterations, args.epochs)
    T = plan.batches_per_epoch
    if general:  # mini-batches / optimizers / regularization: the cost is checked per epoch
        every_epochs = args.cost_every or max(1, plan.epochs // 10)
        progress = ConsoleProgress(
            plan.total_iterations, every_epochs * T, quiet=args.quiet, steps_per_epoch=T
        )
        cost_every = every_epochs
    else:
        every = args.cost_every or max(1, args.iterations // 10)
        progress = ConsoleProgress(args.iterations, every, quiet=args.quiet)
        # a picture's cost curve wants ~100 points (each one host sync); the printed lines stay every `every`
        cost_every = math.gcd(every, max(1, args.iterations // 100)) if args.plot else every
    options = {
        "epochs": args.epochs,
        "iterations": None if args.epochs else args.iterations,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "l2": args.l2,
        "keep_prob": args.keep_prob,
        "cost_every": cost_every,
        "device_rng": args.device_rng,
        "divergence_factor": args.divergence_factor,
        "decay_rate": args.decay_rate,
        "validation_data": held,
        "patience": args.patience,
        "seed": args.seed,
        "precision": args.precision,
    }
    start = time.perf_counter()
    history = None
    try:  # one block from training to the save: a Ctrl-C anywhere in it keeps the parameters
        # a signal acts once the update under way is done (train's between_updates; DataParallel's)
        history = net.fit(
            X_fit, Y_fit, args.lr, callback=progress, progress=progress.update, comm=parallel, **options
        )
        progress.close()
        backend.synchronize()
        seconds = time.perf_counter() - start
        if history.val_costs:  # part of the result, --quiet too: whose parameters are kept
            print(_validation_summary(history, args.patience, "epoch" if T > 1 else "iteration"))
        dtype = f"{args.dtype} masters, {args.precision} compute" if args.precision else args.dtype
        _report(net, X_fit, Y_fit, held, X_test, Y_test, backend, dtype, seconds, args.classes)
        if args.out:
            final = _final_cost(net, history, X_fit, Y_fit, args.l2, plan)
            _save(net, args.out, _model_info(args, backend, final, progress.done, history))
            print(f"model saved to {args.out}")
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep the work done so far
        progress.close()
        info = _model_info(args, backend, history.costs[-1] if history else None, progress.done, history)
        return _save_interrupted(args, net, progress.done, info, finished=history is not None, stop=exc)
    except TrainingDiverged as exc:  # the old --out file, if any, is left as it was
        if not args.out:
            raise
        raise TrainingDiverged(
            f"{exc} Nothing was saved to {args.out}.", exc.iteration, exc.learning_rate, exc.history
        ) from None
    finally:
        progress.close()
    if args.plot:
        _plot(args, net, history, backend, X, Y)
        print(f"picture saved to {args.plot}")
    return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """--out and --plot name files that can be written, not each other nor the dataset: before training."""
    if args.out and storage.descriptor(args.out) == 1:  # the model's bytes amid the progress lines
        raise ValueError(f"--out {args.out}: train prints its progress on stdout; give the model a file name")
    if args.out and args.plot and _same_file(args.out, args.plot):
        raise ValueError(f"--out and --plot both name {args.out}: the picture would replace the model")
    if args.plot:
        from dlcore.backends.plotting import check_output

        check_output(args.plot)
    storage.check_writable(args.out, "--out")
    if args.out and args.dataset not in DATASETS and _same_file(args.out, args.dataset):
        raise ValueError(f"--out {args.out} is the dataset itself; choose another file name")


def _validation_summary(history: History, patience: int | None, unit: str) -> str:
    """One line on the validation cost: its last and best values, and whether early stopping ended the run
    (``unit``: what the cost lines count, "epoch" or "iteration"; a check made after the update that
    followed iteration 9000's line is named "update 9001", not "iteration 9001", which no line shows)."""
    best = min((c for c in history.val_costs if not math.isnan(c)), default=math.nan)  # nan first: min's nan
    kept = f"{unit} {history.best_epoch}" if unit == "epoch" else f"update {history.best_epoch}"
    if history.stopped_early:
        return (
            f"early stopping: the validation cost did not improve for {patience} checks; kept the parameters "
            f"of {kept} (validation cost {format_cost(best)})"
        )
    if history.best_epoch is not None:  # --patience without a stop: the best parameters are kept too
        where = "at" if unit == "epoch" else "after"
        return f"validation cost: best {format_cost(best)} {where} {kept}, whose parameters were kept"
    return f"validation cost: {format_cost(history.val_costs[-1])} at the end (best {format_cost(best)})"


def _report(
    net: Network,
    X_train,
    Y_train,
    validation,
    X_test,
    Y_test,
    backend: Any,
    dtype: str,
    seconds: float,
    classes=None,
) -> None:
    """Train (the columns trained on), validation (``(X_val, Y_val)`` or None) and test accuracy (R^2 and
    RMSE for regression; the confusion matrix for several classes), backend, wall time. Data-parallel:
    after fit every rank holds the same parameters and all of X, so each computes the numbers one process
    would (no collective; only rank 0 prints them)."""
    held = [("validation", *validation)] if validation else []
    for name, X, Y in (("train", X_train, Y_train), *held, ("test", X_test, Y_test)):
        if not X.shape[1]:
            print(f"{name} {'R^2' if net.task == 'regression' else 'accuracy'}: n/a (--test-fraction 0)")
        elif net.task == "regression":
            error = rmse(net.predict_proba(X), backend.asarray(Y))
            r2 = f"{net.score(X, Y):.4f}" if X.shape[1] > 1 else "n/a (1 example)"  # (it printed 0.0000)
            print(f"{name} R^2: {r2}, RMSE {error:.4g}")
        else:
            print(f"{name} accuracy: {_percent(net.score(X, Y))}")
    if net.task == "multiclass" and X_test.shape[1]:
        _print_confusion(net, X_test, Y_test, backend, classes)
    print(f"backend: {backend.name} on {backend.device_name()}, {dtype}; wall time {seconds:.2f}s")


def _print_confusion(net: Network, X: Any, Y: Any, backend: Any, classes: Any = None) -> None:
    """The test confusion matrix: row = true class, column = predicted class (with the class names)."""
    if net.n_classes > MAX_CONFUSION_CLASSES:
        print(f"test confusion matrix: not printed for {net.n_classes} classes")
        return
    labels = backend.xp.astype(Y, backend.xp.int64) if Y.shape[0] == 1 else net.head.predict(Y)
    C = backend.to_numpy(confusion_matrix(labels, net.predict(X), net.n_classes))
    width = max(3, len(str(int(C.max()))))
    print("test confusion matrix (rows: true class, columns: predicted):")
    print("     " + " ".join(f"{j:>{width}}" for j in range(C.shape[1])))
    for i, row in enumerate(C):
        print(f"{i:>4} " + " ".join(f"{int(v):>{width}}" for v in row))
    if classes:
        print("classes: " + ", ".join(f"{i} = {name}" for i, name in enumerate(classes)))


def _final_cost(net: Network, history: History, X: Any, Y: Any, l2: float, plan: Plan) -> float:
    """The training cost of the parameters being saved: the last one recorded, or, where early stopping
    restored earlier parameters, theirs, measured now as the recorded ones are (L2's term included): the
    last recorded one belonged to parameters thrown away."""
    if history.best_epoch is None:
        return history.costs[-1]
    J = net.cost(X, Y)
    if l2:
        J += float(recorded_l2_cost(net.params, l2, plan))
    return J


def _model_info(
    args: argparse.Namespace, backend: Any, final_cost: float | None, updates: int, history: Any = None
) -> dict:
    """The training settings stored in a model file's metadata: ``iterations`` is the number of updates
    made, ``epochs`` the number asked for with --epochs (else null)."""
    return {
        "dataset": args.dataset,
        "learning_rate": args.lr,
        "iterations": updates,
        "epochs": args.epochs,
        "decay_rate": args.decay_rate,
        "validation_split": args.validation_split,
        "patience": args.patience,
        "stopped_early": bool(history.stopped_early) if history is not None else False,
        "best_epoch": history.best_epoch if history is not None else None,  # whose parameters were kept
        **({"classes": list(args.classes)} if getattr(args, "classes", None) else {}),
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "l2": args.l2,
        "keep_prob": args.keep_prob,
        "precision": args.precision,  # the compute dtype (None: the model's dtype)
        "seed": args.seed,
        "init": args.init,
        "trained_on": f"{backend.name} ({backend.device_name()})",
        "final_cost": final_cost,
        "interrupted": final_cost is None,
    }


def _save(net: Network, path: str, info: dict) -> None:
    """Save atomically; if that fails (read-only or full disk, the directory removed or replaced while
    training ran), rescue the model into the temp directory."""
    try:
        net.save(path, info=info)
    except (OSError, ValueError) as exc:
        name = Path(path).name
        name = name if len(name.encode()) <= 100 and name.endswith(".npz") else "model.npz"
        rescue = Path(tempfile.gettempdir()) / f"dlcore-rescued-{os.getpid()}-{name}"
        try:
            net.save(rescue, info=info)
        except (OSError, ValueError):
            raise exc from None
        raise type(exc)(f"{exc}; the trained model was saved to {rescue} instead") from None


def _save_interrupted(
    args: argparse.Namespace,
    net: Network,
    iteration: int,
    info: dict,
    finished: bool = False,
    stop: BaseException | None = None,
) -> int:
    """Ctrl-C or SIGTERM during training (or after it, before the save): save the current parameters (if
    finite, whole and trained at all) to --out; exit code 130 (Ctrl-C) or 143 (SIGTERM)."""
    what, code = _stopped(stop or KeyboardInterrupt())
    where = f"{what} after training finished" if finished else f"{what} after iteration {iteration}"
    if not args.out:
        print(f"dlcore: {where}; nothing was saved (give --out FILE to keep the parameters)", file=sys.stderr)
        return code
    if getattr(stop, "mid_update", False):  # a second signal: some layers took the update, others not
        once = "one Ctrl-C" if code == EXIT_INTERRUPTED else "one SIGTERM"
        print(
            f"dlcore: {what} twice, during update {iteration + 1}: its parameters are part-updated, so "
            f"nothing was saved to {args.out} ({once} stops after the update under way and saves)",
            file=sys.stderr,
        )
        return code
    if iteration == 0 and not finished:  # the initial parameters: not worth replacing a file with
        print(f"dlcore: {what} before the first update; nothing was saved to {args.out}", file=sys.stderr)
        return code
    xp = net.xp
    if not all(bool(xp.all(xp.isfinite(v))) for v in net.params.values()):
        print(f"dlcore: {where}; the parameters are not finite: nothing saved to {args.out}", file=sys.stderr)
        return code
    _save(net, args.out, info)
    print(f"dlcore: {where}; the current parameters were saved to {args.out}", file=sys.stderr)
    return code


LOSS_NAMES = {
    "binary": "binary cross-entropy",
    "multiclass": "categorical cross-entropy",
    "regression": "mean squared error / 2",
}


def _plot(args, net: Network, history: History, backend, X, Y) -> None:
    from dlcore.backends.plotting import plot_training

    # the network normalizes the raw grid itself, from float64 as train read X (features at 1e8 + N(0, 1)
    # rounded to float32 first collapsed onto a few values: bands, not the boundary)
    dtype = "float64" if net.normalization is not None else args.dtype

    def proba(grid: Any) -> Any:
        return backend.to_numpy(net.predict_proba(backend.asarray(grid, dtype=dtype)))

    batch = f"batch {args.batch_size}" if args.batch_size else "full batch"
    plot_training(
        args.plot,
        history.iterations,
        history.costs,
        backend.to_numpy(X),
        backend.to_numpy(Y),
        proba,
        title=f"{args.dataset}: layers {net.layer_dims}, {args.hidden_activation}, {args.optimizer}, "
        f"lr {args.lr:g}, {batch}",
        loss=LOSS_NAMES.get(net.task, "cost")
        + (" (standardized targets)" if net.target_normalization else ""),
        task=net.task,
        classes=getattr(args, "classes", None),
    )


def predict(args: argparse.Namespace) -> int:
    if args.out:
        storage.check_writable(args.out, "--out")
        data = () if args.data in DATASETS else (("--data", args.data),)
        for flag, other in (("--model", args.model), *data):
            if _same_file(args.out, other):
                raise ValueError(f"--out {args.out} is the same file as {flag}; choose another file name")
    backend = get_backend(args.backend)
    try:
        net = Network.load(args.model, backend)
    except NotAModelFile as exc:
        raise ValueError(f"{exc}; save one with dlcore train --out MODEL.npz") from None
    names = (net.info or {}).get("classes")  # class names, when the labels were text
    X, Y, _ = load_dataset(
        args.data,
        backend,
        seed=args.seed,
        dtype=net.dtype_name if net.normalization is None else "float64",  # as train read it
        n_features=net.layer_dims[0],
        task="binary" if net.task == "binary" else None,
        classes=names,
        with_classes=True,
        header=HEADERS[args.header],
    )
    n_x, n_out = net.layer_dims[0], net.layer_dims[-1]
    if Y is not None and net.task == "regression" and Y.shape[0] != n_out:  # a data file: one target a row
        raise ValueError(
            f"{args.data}'s last column was read as a target, but the model predicts {n_out} targets per "
            f"example: give its {n_x} feature columns only"
        )
    if X.shape[0] != n_x:
        hint = f"; X is stored as (m, n_x): store X.T, shape ({n_x}, m)" if X.shape[1] == n_x else ""
        raise ValueError(f"{args.data} has {X.shape[0]} features; the model {args.model} expects {n_x}{hint}")
    if args.out and storage.descriptor(args.out) == 1:  # --out /dev/stdout: stdout, as without --out
        args.out = None
    _say_auto(backend, sys.stdout if args.out else sys.stderr)  # keep stdout pure CSV
    P = backend.to_numpy(net.predict_proba(X))  # (n[L], m); the network normalizes X itself
    predicted = backend.to_numpy(net.predict(X))  # the head's rule: 0/1, class index, or the values
    accuracy = ""
    if Y is not None:  # Y checked as training checks it, before its labels are looked up by name below
        metric = net.score(X, Y)  # (a label beyond the class names was an IndexError there)
        if net.task != "regression":
            accuracy = f"; accuracy: {_percent(metric)}"
        else:  # R^2 of one example is 0 by convention, not a score (train says so too)
            accuracy = f"; R^2: {metric:.4f}" if X.shape[1] > 1 else "; R^2: n/a (1 example)"
    # values as their dtype's shortest repr (a float32 0.479939, not 0.4799390137195587): NumPy scalars' str
    truth = None if Y is None else list(backend.to_numpy(Y).reshape(-1))
    if net.task == "regression":
        header = "index," + ",".join(f"prediction{k if len(P) > 1 else ''}" for k in range(len(P)))
        rows = [f"{i}," + ",".join(map(str, P[:, i])) for i in range(P.shape[1])]
        true = ["," + str(t) for t in truth] if truth else None  # (an f-string formats as a Python float)
    else:  # binary: P(y = 1) and the label; several classes: every class's probability and the class

        def label(k: Any) -> str:
            return _csv_cell(names[int(k)]) if names else str(int(k))

        if len(P) == 1:  # P(y = 1): with class names, the second name's (which "probability" never said)
            header = "index," + (_csv_cell(f"probability_{names[1]}") if names else "probability") + ",label"
        else:
            columns = names or [str(k) for k in range(len(P))]
            header = "index," + ",".join(_csv_cell(f"probability_{c}") for c in columns) + ",label"
        rows = [f"{i}," + ",".join(map(str, P[:, i])) + f",{label(c)}" for i, c in enumerate(predicted[0])]
        if truth and Y is not None and Y.shape[0] > 1:  # one-hot truth (an .npz): the class indices
            truth = list(backend.to_numpy(net.head.predict(Y)).reshape(-1))
        true = [f",{label(t)}" for t in truth] if truth else None

    def write(f) -> None:
        f.write(header + (",true_label" if true else "") + "\n")
        for i, row in enumerate(rows):
            f.write(row + (true[i] if true else "") + "\n")

    count = f"{len(rows)} prediction{'s' if len(rows) != 1 else ''}"
    if args.out:
        from dlcore.backends.storage import write_text_atomic

        write_text_atomic(args.out, write)
        print(f"wrote {count} to {args.out}{accuracy}")
    else:
        try:
            write(sys.stdout)
            sys.stdout.flush()  # a reader that went away (| head) shows here, inside main's handler
        except BrokenPipeError:
            raise
        except OSError as exc:  # > /dev/full, a full disk: the bare "[Errno 28] No space left on device"
            raise OSError(f"cannot write the predictions to stdout: {exc.strerror or exc}") from None
        print(count + accuracy, file=sys.stderr)
    return 0


def _csv_cell(text: str) -> str:
    """``text`` as one CSV cell (quoted when it holds a comma, a quote or a line break)."""
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def info(args: argparse.Namespace) -> int:
    from dlcore.backends.info import describe

    d = describe()
    versions = d["versions"]
    print(f"dlcore {versions['dlcore'] or '(not installed)'} on Python {versions['python']}")
    print("backends:")
    for name, why in d["backends"].items():
        print(f"  {name:<17} {'available' if not why else 'not available: ' + why}")
    auto = get_backend("auto")
    print(f"  {'auto':<17} -> {auto.name} on {auto.device_name()}")
    chosen = os.environ.get("DLCORE_BACKEND")  # what train and predict use without --backend
    if chosen:
        try:
            default = get_backend(None)
            print(f"  $DLCORE_BACKEND={chosen} -> {default.name} on {default.device_name()}")
        except (BackendError, ValueError) as exc:
            print(f"  $DLCORE_BACKEND={chosen}: not available: {exc}")
    if d["gpus"]:
        for g in d["gpus"]:
            driver = f", driver {g['cuda_driver']}" if g["cuda_driver"] else ""
            print(
                f"GPU: {g['name']}, {_gib(g['total_bytes'])} total, {_gib(g['free_bytes'])} free; "
                f"CUDA runtime {g['cuda_runtime']}{driver} ({g['backend']})"
            )
    else:
        print("GPU: none usable")
    print("libraries: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python" and v))
    missing = [k for k, v in versions.items() if v is None]
    if missing:
        print("not installed: " + ", ".join(missing))
    print(f"NumPy BLAS: {d['blas']}")
    print(f"host memory pool: {d['host_memory_pool']}")
    print(f"numba fused kernels: {d['fused_kernels']}")
    return 0


def bench(argv: Sequence[str]) -> int:
    """``dlcore bench ...`` runs :func:`dlcore.benchmarks.report.main` (installed with dlcore)."""
    try:
        from dlcore.benchmarks.report import main as report_main
    except ImportError as exc:
        print(
            f"dlcore: error: cannot import the benchmark report ({exc}); reinstall dlcore "
            '(python -m pip install --force-reinstall dlcore, or pip install -e ".[dev]" in a clone)',
            file=sys.stderr,
        )
        return 2
    return int(report_main(list(argv)) or 0)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"train": train, "predict": predict, "info": info}


def _one_line_warnings(command: str | None) -> Callable[..., None]:
    """``warnings.showwarning`` for ``command``: one line on stderr, in its words (see CLI_WORDS)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"dlcore: warning: {_cli_words(str(message), command)}", file=sys.stderr)

    return show


@contextlib.contextmanager
def _signals() -> Any:
    """SIGTERM raises :class:`Terminated` (handled like Ctrl-C) and SIGINT raises KeyboardInterrupt while
    the command runs; the previous handlers come back afterwards. Only in the main thread."""
    try:
        previous = {
            signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated),
            signal.SIGINT: signal.getsignal(signal.SIGINT),
        }
    except ValueError:  # not the main thread: leave the handlers alone
        yield
        return
    if previous[signal.SIGINT] is not signal.SIG_IGN:  # also replaces the import-time quiet handler
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null after the reader went away, so the exit flush does not complain."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


#: the library's Python words in an error or warning, as each command spells the fix (the library's
#: messages name no CLI flag; predict has no --dtype: the model's dtype is the one it was trained in)
CLI_WORDS = {
    "train": {
        "header=True": "--header yes",
        "header=False": "--header no",
        "dtype='float64'": "--dtype float64",
        "task='regression'": "--task regression",
        "task='multiclass'": "--task multiclass",
        "pass keep_prob=1 (l2 regularizes": "leave out --keep-prob (--l2 regularizes",
        "keep_prob=": "--keep-prob ",
        "(layer_dims [n_x, n_h, 1])": "(--layers n_x,n_h,1)",
        "validation_split=": "--validation-split ",
        "test_fraction": "--test-fraction",
        "use more examples": "use more examples (--samples, for a built-in set)",
        "use precision='bfloat16' (a backend that has it: torch), a static loss scale "
        "(MixedPrecision(optimizer, 'float16', loss_scale=1024)), or l2=0": (
            "use --precision bfloat16 (the torch backend), or leave out --l2"
        ),
    },
    "predict": {
        "header=True": "--header yes",
        "header=False": "--header no",
        "use dtype='float64'": "train the model with --dtype float64",
    },
}


def _cli_words(message: str, command: str | None) -> str:
    for python, flag in CLI_WORDS.get(command or "", {}).items():
        message = message.replace(python, flag)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 130 interrupted, 143 terminated by
    SIGTERM, 141 when the reader of stdout went away, as for ``dlcore predict ... | head``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with _signals(), warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(argv[0] if argv else None)
            if argv[:1] == ["bench"]:
                return bench(argv[1:])
            parser = build_parser()
            if not argv:  # bare `dlcore`: the help, not an error
                parser.print_help()
                return 0
            args = parser.parse_args(argv)
            return COMMANDS[args.command](args)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:  # stdout closed by its reader: end quietly, as Unix tools do
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except (BackendError, ValueError, TrainingDiverged, OSError) as exc:
        if not _SILENT:  # a data-parallel rank > 0: rank 0 prints the same error
            print(f"dlcore: error: {_cli_words(str(exc), argv[0] if argv else None)}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # one the estimates (dlcore.memory) missed: NumPy's "Unable to allocate ..."
        print(
            f"dlcore: error: out of memory ({exc}); use fewer examples or a smaller network", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt as exc:
        what, code = _stopped(exc)
        print(f"dlcore: {what}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
