"""Benchmarks: loops against vectorized code on each device, and the training step against its
matrix-product floor and PyTorch. ``python -m pytest benchmarks --benchmark-only`` runs the suite;
``dlcore bench`` (:mod:`dlcore.benchmarks.report`) prints the Markdown table."""


def description(doc: str) -> str:
    """A script's ``--help`` description: its docstring's first paragraph, without reST's double backticks."""
    return doc.split("\n\n")[0].replace("``", "")
