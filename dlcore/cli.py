"""Command line: ``dlcore train`` (also ``python -m dlcore train``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from backends import BackendError, get_backend
from dlcore.activations import ACTIVATIONS
from dlcore.datasets import planar
from dlcore.initializers import INITIALIZERS
from dlcore.model import Network, TrainingDiverged


def _layers(text: str) -> list[int]:
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers wants comma-separated integers like 2,4,1; got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network and report its accuracy")
    train.add_argument("--backend", default=None, help="auto (default, or $DLCORE_BACKEND), numpy, cupy")
    train.add_argument("--layers", type=_layers, default=[2, 4, 1], help="layer sizes n[0],...,n[L]")
    train.add_argument(
        "--hidden-activation", default="tanh", choices=[a for a in ACTIVATIONS if a != "linear"]
    )
    train.add_argument("--init", default="small", choices=INITIALIZERS)
    train.add_argument("--lr", type=float, default=1.2, help="learning rate")
    train.add_argument("--iterations", type=int, default=10_000)
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    train.add_argument("--quiet", action="store_true", help="only the final report")
    return parser


def train(args: argparse.Namespace) -> int:
    backend = get_backend(args.backend)
    if backend.note:
        print(backend.note)
    X, Y = planar(backend, seed=args.seed, dtype=args.dtype)
    net = Network(
        args.layers, args.hidden_activation, init=args.init, backend=backend, seed=args.seed, dtype=args.dtype
    )
    report = None if args.quiet else (lambda i, J: print(f"iteration {i:>6}: cost {J:.6f}"))
    start = time.perf_counter()
    net.fit(X, Y, args.lr, args.iterations, cost_every=max(1, args.iterations // 10), callback=report)
    backend.synchronize()
    seconds = time.perf_counter() - start
    print(f"train accuracy: {100 * net.accuracy(X, Y):.1f}%")
    print(f"backend: {backend.name} on {backend.device_name()}, {args.dtype}; wall time {seconds:.2f}s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": train}[args.command](args)
    except (BackendError, ValueError, TrainingDiverged) as exc:
        print(f"dlcore: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
