"""One matplotlib style for every figure, and saving figures atomically beside the store."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
}
plt.rcParams.update(STYLE)


def new_figure(ncols: int = 1, width: float = 5.2, height: float = 3.6):
    """A figure and its axes (a list when ncols > 1) in the house style."""
    fig, axes = new_grid(1, ncols, width, height)
    return fig, list(axes[0]) if ncols > 1 else axes[0][0]


def new_grid(nrows: int, ncols: int, width: float = 5.2, height: float = 3.6):
    """A figure and its (nrows, ncols) array of axes, each panel width × height inches."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                        layout="constrained")


def band(ax, x, values, label: str, color=None) -> None:
    """The median over seeds as a line and the min–max spread as a band. values: (seeds, x)."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    line = ax.plot(x, np.median(values, axis=0), label=label, color=color)[0]
    if values.shape[0] > 1:
        ax.fill_between(x, values.min(0), values.max(0), color=line.get_color(), alpha=0.2, lw=0)


def fractions(ax, x, found, label: str, color=None, fmt: str = "o-") -> None:
    """Fractions with their intervals as error bars; found: rows of (fraction, low, high, …)."""
    found = np.asarray(found, dtype=float)[:, :3]
    ax.errorbar(x, found[:, 0], yerr=[found[:, 0] - found[:, 1], found[:, 2] - found[:, 0]],
                fmt=fmt, color=color, capsize=3, label=label)


def confusion_matrix(ax, matrix, rows: list[str], columns: list[str], ylabel: str, title: str,
                     fontsize: int = 8) -> None:
    """A confusion matrix: each row's shares as shades, the counts written in, labels tilted."""
    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            ax.text(j, i, f"{count:.0f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=fontsize)
    ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
    ax.set(xlabel="named by the doctor", ylabel=ylabel, title=title)


def log_ticks(ax, values) -> None:
    """A log x axis labelled at exactly `values` (depths, sizes), with no minor labels."""
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def save_png(data: bytes, path: Path) -> Path:
    """Write a PNG atomically (temp file then rename), so no half-written figure is ever seen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.png")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path
