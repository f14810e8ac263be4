"""Benchmarks: loops against vectorized code on each device, and the training step against its
matrix-product floor and PyTorch. ``python -m pytest benchmarks --benchmark-only`` runs the suite;
``dlcore bench`` (:mod:`dlcore.benchmarks.report`) prints the Markdown table."""

import argparse
from collections.abc import Callable, Iterable


def description(doc: str) -> str:
    """A script's ``--help`` description: its docstring's first paragraph, without reST's double backticks."""
    return doc.split("\n\n")[0].replace("``", "")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (--rounds 0 ended in "no median for empty data")."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"wants an integer >= 1; got {text!r}")
    return value


def names_from(choices: Iterable[str]) -> Callable[[str], list[str]]:
    """An argparse type: one or more comma-separated names, each one of ``choices`` (in their order)."""
    choices = list(choices)

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            what = f"unknown {unknown[0]!r}" if unknown else "no name"
            raise argparse.ArgumentTypeError(f"{what}; choose from {','.join(choices)}")
        return list(dict.fromkeys(names))  # a name given twice was run twice

    return parse


def positive_ints(text: str) -> list[int]:
    """An argparse type: comma-separated integers >= 1 (400,4000)."""
    return [positive_int(n) for n in text.split(",")]
