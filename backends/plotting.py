"""Training pictures with matplotlib (optional extra ``plot``): the cost curve and the decision boundary.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch, no display).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PLOT_FIX = 'pictures need matplotlib: pip install "dlcore[plot]"'


class PlotUnavailable(ValueError):
    """matplotlib is not installed; the message says how to get it."""


def check_available(path: Any = None) -> None:
    """Before any training: raise :class:`PlotUnavailable` when matplotlib cannot be imported, and a
    ValueError when ``path``'s suffix names no image format matplotlib writes."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PlotUnavailable(f"--plot: {PLOT_FIX}")
    if path is None:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = str(path).rsplit(".", 1)[-1].lower() if "." in str(path).rsplit("/", 1)[-1] else ""
    if suffix not in formats:
        raise ValueError(
            f"--plot {path}: {'.' + suffix if suffix else 'no file extension'} is not an image format; "
            f"use one of {', '.join('.' + f for f in sorted(formats))} (e.g. .png)"
        )


def plot_training(
    path: Any,
    iterations: Sequence[int],
    costs: Sequence[float],
    X: Any = None,
    Y: Any = None,
    predict_proba: Callable[[np.ndarray], np.ndarray] | None = None,
    title: str = "",
) -> None:
    """Save a PNG: the cost J against the iteration and, for 2-D data, the decision boundary.

    Args:
        path: the image file (its suffix picks the format; ``.png`` usual).
        iterations, costs: the cost curve (``History.iterations`` / ``History.costs``).
        X: host array (2, m) of raw inputs and Y: (1, m) labels, for the boundary panel.
        predict_proba: maps a host (2, k) grid to P(y=1) of shape (1, k) (normalization included).
        title: a figure title.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable(f"--plot: {PLOT_FIX}") from None

    boundary = X is not None and predict_proba is not None and np.shape(X)[0] == 2
    fig = Figure(figsize=(11, 4.5) if boundary else (6, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if boundary else 1, squeeze=False)[0]

    ax = axes[0]
    ax.plot(iterations, costs, color="tab:blue")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost J (binary cross-entropy)")
    ax.set_title("learning curve")
    ax.grid(True, alpha=0.3)

    if boundary:
        X = np.asarray(X, dtype=float)
        labels = np.asarray(Y).reshape(-1) if Y is not None else np.zeros(X.shape[1])
        pad_x, pad_y = (np.ptp(X, axis=1) * 0.08) + 1e-9
        x1 = np.linspace(X[0].min() - pad_x, X[0].max() + pad_x, 300)
        x2 = np.linspace(X[1].min() - pad_y, X[1].max() + pad_y, 300)
        G1, G2 = np.meshgrid(x1, x2)
        grid = np.stack([G1.ravel(), G2.ravel()])  # (2, k), one point per column
        P = np.asarray(predict_proba(grid), dtype=float).reshape(G1.shape)
        ax = axes[1]
        ax.contourf(G1, G2, P, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.35)
        ax.contour(G1, G2, P, levels=[0.5], colors="k", linewidths=1.2)
        for label, color, marker in ((0, "tab:red", "o"), (1, "tab:blue", "s")):
            sel = labels == label
            ax.scatter(
                X[0, sel],
                X[1, sel],
                s=12,
                c=color,
                marker=marker,
                edgecolors="k",
                linewidths=0.3,
                label=f"y = {label}",
            )
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_title("decision boundary (P = 0.5)")
        ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
