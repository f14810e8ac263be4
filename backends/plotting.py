"""Training pictures with matplotlib (optional extra ``plot``): the cost curve and the decision boundary.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch, no display).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from dlcore.backends import storage

PLOT_FIX = 'pictures need matplotlib: pip install "dlcore[plot]"'


class PlotUnavailable(ValueError):
    """matplotlib is not installed; the message says how to get it."""


def check_available(path: Any = None) -> None:
    """Before any training: raise :class:`PlotUnavailable` when matplotlib cannot be imported, and a
    ValueError when ``path``'s suffix names no image format matplotlib writes."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable(PLOT_FIX)
    if path is None:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(str(path))[1][1:].lower()  # as savefig reads it (a bare ".png": none)
    if suffix == "pgf":  # drawn by a TeX system: without one, savefig failed after all the training
        from matplotlib import rcParams

        tex = rcParams["pgf.texsystem"]
        if shutil.which(tex) is None:
            raise ValueError(
                f"{path}: .pgf needs {tex} (a TeX system), which is not installed here; use .pdf or .svg"
            )
    if suffix not in formats:
        raise ValueError(
            f"{path}: {'.' + suffix if suffix else 'no file extension'} is not an image format; "
            f"use one of {', '.join('.' + f for f in sorted(formats))} (e.g. .png)"
        )


def check_output(path: Any, flag: str = "--plot") -> None:
    """Before any long run, for a picture to be written to ``path`` (given as ``flag``): matplotlib
    importable, the suffix an image format, the directory there and writable; errors begin with ``flag``."""
    try:
        check_available(path)
    except ValueError as exc:
        raise type(exc)(f"{flag}: {exc}") from None
    storage.check_writable(path, flag)


def plot_training(
    path: Any,
    iterations: Sequence[int],
    costs: Sequence[float],
    X: Any = None,
    Y: Any = None,
    predict_proba: Callable[[np.ndarray], np.ndarray] | None = None,
    title: str = "",
    loss: str = "binary cross-entropy",
    task: str = "binary",
    classes: Sequence[str] | None = None,
) -> None:
    """Save a picture: the cost J against the iteration and, for 2-D data, the decision regions.

    Args:
        path: the image file (its suffix picks the format; ``.png`` usual).
        iterations, costs: the cost curve (``History.iterations`` / ``History.costs``).
        X: host array (2, m) of raw inputs and Y: (1, m) labels (class indices; or one-hot (C, m)),
            for the second panel.
        predict_proba: maps a host (2, k) grid to the network's output: P(y=1) (1, k) for a binary
            classifier, the class probabilities (C, k), or the predicted values (regression).
        title: a figure title; loss: the head's loss, named on the y-axis; task: ``"binary"``,
            ``"multiclass"`` or ``"regression"``; classes: the class names for the legend.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(PLOT_FIX) from None

    boundary = X is not None and predict_proba is not None and np.shape(X)[0] == 2
    fig = Figure(figsize=(11, 4.5) if boundary else (6, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if boundary else 1, squeeze=False)[0]

    ax = axes[0]
    ax.plot(iterations, costs, color="tab:blue")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"cost J ({loss})")
    ax.set_title("learning curve")
    ax.grid(True, alpha=0.3)

    if boundary:
        _regions(axes[1], np.asarray(X, dtype=float), Y, predict_proba, task, classes)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, dpi=110)


def save_figure(fig: Any, path: Any, dpi: int) -> None:
    """``fig`` written to ``path`` atomically (an interrupted or failed save leaves the old picture whole),
    in the format its suffix names."""
    said = _Said()  # what matplotlib logs while saving (PostScript: "does not support transparency; ...")
    logger = logging.getLogger("matplotlib")
    logger.addHandler(said)
    try:
        with storage.atomic_writer(path) as f:
            fig.savefig(f, format=os.path.splitext(str(path))[1][1:].lower(), dpi=dpi)
    finally:
        logger.removeHandler(said)
    for message in dict.fromkeys(said.messages):  # as warnings: the CLI's one "dlcore: warning:" line each
        warnings.warn(f"{path}: {message}", stacklevel=3)


class _Said(logging.Handler):
    """Collects matplotlib's log messages of WARNING and above (without a handler of its own, logging's
    last resort would print them raw on stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _regions(ax: Any, X: np.ndarray, Y: Any, predict_proba: Callable, task: str, classes: Any) -> None:
    """The second panel: the decision regions (per class), or the predicted value for regression."""
    pad_x, pad_y = (np.ptp(X, axis=1) * 0.08) + 1e-9
    x1 = np.linspace(X[0].min() - pad_x, X[0].max() + pad_x, 300)
    x2 = np.linspace(X[1].min() - pad_y, X[1].max() + pad_y, 300)
    G1, G2 = np.meshgrid(x1, x2)
    grid = np.stack([G1.ravel(), G2.ravel()])  # (2, k), one point per column
    P = np.asarray(predict_proba(grid), dtype=float)
    P = P.reshape(-1, G1.size)
    Y = None if Y is None else np.asarray(Y)
    if Y is not None and Y.ndim == 2 and Y.shape[0] > 1 and task != "regression":
        Y = np.argmax(Y, axis=0)  # one-hot -> class indices
    values = np.zeros(X.shape[1]) if Y is None else Y.reshape(-1) if Y.ndim == 1 else Y[0]
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if task == "regression":
        cs = ax.contourf(G1, G2, P[0].reshape(G1.shape), levels=15, cmap="viridis", alpha=0.6)
        # on the contour's scale (its own range put a value in the colour the bar gives another)
        ax.scatter(X[0], X[1], s=12, c=values, cmap="viridis", norm=cs.norm, edgecolors="k", linewidths=0.3)
        ax.figure.colorbar(cs, ax=ax, label="prediction")
        ax.set_title("predicted value")
        return
    n = 2 if P.shape[0] == 1 else P.shape[0]
    names = list(classes) if classes else [str(k) for k in range(n)]
    if n <= 10:
        colors = [f"C{k}" for k in range(n)]
    else:  # C0..C9 gave class k and k + 10 one colour (and one marker)
        from matplotlib import colormaps

        cmap = colormaps["tab20" if n <= 20 else "turbo"]
        colors = [cmap(k if n <= 20 else k / (n - 1)) for k in range(n)]
    markers = "os^vD<>ph*"
    if P.shape[0] == 1:  # binary: P(y = 1), the 0.5 contour
        Pg = P[0].reshape(G1.shape)
        ax.contourf(G1, G2, Pg, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.35)
        ax.contour(G1, G2, Pg, levels=[0.5], colors="k", linewidths=1.2)
        colors = ["tab:red", "tab:blue"]
        ax.set_title("decision boundary (P = 0.5)")
    else:  # several classes: the region where each class is the most probable
        from matplotlib.colors import ListedColormap

        regions = np.argmax(P, axis=0).reshape(G1.shape)
        ax.contourf(G1, G2, regions, levels=np.arange(n + 1) - 0.5, cmap=ListedColormap(colors), alpha=0.3)
        ax.contour(G1, G2, regions, levels=np.arange(n) + 0.5, colors="k", linewidths=0.8)
        ax.set_title("decision regions (most probable class)")
    for k in range(n):
        sel = values == k
        if sel.any():
            ax.scatter(
                X[0, sel],
                X[1, sel],
                s=12,
                color=colors[k],
                marker=markers[k % len(markers)],
                edgecolors="k",
                linewidths=0.3,
                label=f"y = {names[k]}",
            )
    ax.legend(loc="upper right", fontsize=8)
