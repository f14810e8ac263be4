"""Benchmarks: loops against vectorized code on each device, and the training step against its
matrix-product floor and PyTorch. ``python -m pytest benchmarks --benchmark-only`` runs the suite;
``dlcore bench`` (:mod:`dlcore.benchmarks.report`) prints the Markdown table."""
