"""Issue 15, "Feedback while it works": progress per update (counted, no host sync), Python and CLI."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dlcore import Network
from dlcore import training as training_module
from dlcore.training import ConsoleProgress


def _data(m=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, m))
    return X, (X[0:1] * X[1:2] > 0).astype(float)


def test_fit_progress_counts_every_update_without_reading_costs():
    X, Y = _data()
    seen, costs = [], []
    net = Network([2, 4, 1], backend="numpy")
    history = net.fit(
        X, Y, 0.1, epochs=3, batch_size=32, progress=seen.append, callback=lambda i, J: costs.append(i)
    )
    assert seen == list(range(1, 3 * 7 + 1))  # 200 / 32 -> 7 batches per epoch, one call per update
    assert costs == history.iterations


def test_fit_verbose_prints_costs_in_a_pipe(capsys):
    X, Y = _data()
    Network([2, 4, 1], backend="numpy").fit(X, Y, 0.1, iterations=50, cost_every=10, verbose=True)
    out = capsys.readouterr().out
    assert "iteration     10: cost" in out and "iteration     50: cost" in out
    Network([2, 4, 1], backend="numpy").fit(X, Y, 0.1, iterations=3000, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11 and lines[1].startswith("iteration    300: cost")  # about ten cost lines
    Network([2, 4, 1], backend="numpy").fit(X, Y, 0.1, epochs=20, batch_size=50, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert 10 <= len(lines) <= 21 and lines[1].startswith("epoch    2, iteration      8: cost")


def test_plain_lines_come_at_a_steady_cadence_with_rate_and_eta(monkeypatch):
    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr(training_module.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    progress = ConsoleProgress(100, 1000, interval=3.0, file=io.StringIO(), out=out)
    for i in range(1, 20):
        progress.update(i)
    lines = out.getvalue().splitlines()
    assert 4 <= len(lines) <= 7 and all("it/s" in line and "ETA" in line for line in lines)
    assert lines[0].startswith("iteration 3/100 (3%)")


def test_the_bar_advances_per_batch_on_a_terminal():
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    progress = ConsoleProgress(157, 1000, file=Terminal(), out=io.StringIO())
    assert progress.bar is not None
    for i in range(1, 11):
        progress.update(i)
    assert progress.bar.n == 10
    progress.close()


def test_quiet_prints_nothing(capsys):
    progress = ConsoleProgress(10, 1, quiet=True, interval=0)
    progress.update(5)
    progress(5, 0.5)
    assert capsys.readouterr() == ("", "")


def test_the_cli_prints_rate_lines_per_batch_in_a_pipe(capsys, monkeypatch):
    from dlcore.cli import main

    ticks = iter(float(t) for t in range(100_000))
    monkeypatch.setattr(training_module.time, "monotonic", lambda: next(ticks))  # 1 s per call
    argv = ["train", "--backend", "numpy", "--samples", "400", "--epochs", "1", "--batch-size", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rate_lines = [line for line in out.splitlines() if "it/s" in line]
    assert len(rate_lines) >= 10 and rate_lines[0].startswith("iteration ") and "/40 (" in rate_lines[0]
    assert main([*argv, "--quiet"]) == 0
    assert "it/s" not in capsys.readouterr().out
