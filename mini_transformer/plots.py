"""The book's figures: one style (colour-blind-safe Okabe–Ito colours, labelled axes, white
backgrounds that stay readable in the book's dark mode), and the plots the chapters share."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# Okabe & Ito (2008), a palette distinguishable with the common colour-vision deficiencies.
COLORS = {
    "blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
    "purple": "#CC79A7", "sky": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}
SEQUENTIAL_CMAP = "viridis"  # perceptually uniform, colour-blind safe


def use_style() -> None:
    """Apply the book's matplotlib style."""
    mpl.rcParams.update({
        "axes.prop_cycle": mpl.cycler(color=list(COLORS.values())),
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "figure.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 11,
        "axes.titlesize": 12,
        "legend.frameon": False,
        "image.cmap": SEQUENTIAL_CMAP,
    })


def smooth(values, window: int = 20) -> np.ndarray:
    """Trailing moving average over ``window`` values (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_training(history, baselines: dict[str, float] | None = None, ax=None, title: str | None = None):
    """Training loss per step (light: raw, dark: smoothed), validation evaluations as points, and
    horizontal lines for baseline losses. Returns the axes."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    steps = np.arange(1, len(history.losses) + 1)
    ax.plot(steps, history.losses, color=COLORS["sky"], alpha=0.35, lw=1, label="training loss (per step)")
    ax.plot(steps, smooth(history.losses), color=COLORS["blue"], lw=2, label="training loss (smoothed)")
    if history.evaluations:
        eval_steps, values = zip(*history.evaluations)
        ax.plot(eval_steps, values, "o-", color=COLORS["vermillion"], ms=4, label="validation loss")
    styles = ["--", ":", "-."]
    for (name, value), style in zip((baselines or {}).items(), styles * 3):
        ax.axhline(value, color=COLORS["black"], ls=style, lw=1.2, label=f"{name} ({value:.2f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (nats per token)")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right")
    return ax
