"""The book's figures: one style (colour-blind-safe Okabe–Ito colours, labelled axes, white
backgrounds that stay readable in the book's dark mode), and the plots the chapters share."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from ..models import state_layer

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


def log_norm(values, floor_ratio: float = 1e-4):
    """A LogNorm from the largest value down to ``floor_ratio`` of it (zeros fall below), to share
    one colour scale between panels."""
    top = float(np.max(np.asarray(values)))
    return mpl.colors.LogNorm(vmin=top * floor_ratio, vmax=top)


def plot_gradient_grid(flow, t: int, ax=None, window: int = 16, norm=None, colorbar: bool = True):
    """The positions × states grid for one loss position t: a dot at (source position s, state l)
    coloured by G[i, s, t] = ‖∂ℓ_t/∂X_i[s]‖ (log scale), for the ``window`` positions up to t.
    The loss ℓ_t sits above position t. Positions after t get exactly zero (shown hollow)."""
    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    G = flow.G[:, :, t].cpu().numpy()  # (states, s)
    lo = max(0, t - window + 1)
    hi = min(flow.n_positions, t + 4)
    positions = np.arange(lo, hi)
    norm = norm or log_norm(G[:, lo:t + 1])
    cmap = plt.get_cmap(SEQUENTIAL_CMAP)
    for l in range(G.shape[0]):
        for s in positions:
            value = G[l, s]
            if value > 0:
                ax.scatter(s, l, s=140, color=cmap(norm(max(value, norm.vmin))), edgecolors="black", linewidths=0.4, zorder=3)
            else:
                ax.scatter(s, l, s=140, facecolors="none", edgecolors="#999999", linewidths=0.8, zorder=3)
    n_states = G.shape[0]
    ax.scatter([t], [n_states], marker="*", s=260, color=COLORS["vermillion"], zorder=4)
    ax.annotate(f"loss ℓ$_{{{t}}}$", (t, n_states), textcoords="offset points", xytext=(10, -4),
                color=COLORS["vermillion"])
    ax.set_yticks(range(n_states + 1), list(flow.names) + ["loss"])
    ax.set_xlabel("source position s")
    ax.set_ylabel("state of the residual stream")
    ax.set_xlim(lo - 0.7, hi - 0.3)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    ax.set_ylim(-0.6, n_states + 0.6)
    ax.grid(False)
    if colorbar:
        mappable = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
        plt.colorbar(mappable, ax=ax, label="‖∂ℓ$_t$/∂X$_l$[s]‖", pad=0.02)
    return ax


def plot_flow_heatmaps(flow, title: str | None = None, columns: int = 3):
    """One heatmap per state: G[i, s, t] with source position s down and loss position t across,
    log colour scale shared by all panels; entries that are exactly zero are white."""
    G = flow.G.cpu().numpy()
    n_states = G.shape[0]
    rows = -(-n_states // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.9 * rows), constrained_layout=True)
    axes = np.atleast_1d(axes).ravel()
    norm = log_norm(G)
    cmap = plt.get_cmap(SEQUENTIAL_CMAP).copy()
    cmap.set_bad("white")
    for l, ax in enumerate(axes[:n_states]):
        image = ax.imshow(np.ma.masked_equal(G[l], 0.0), norm=norm, cmap=cmap, origin="upper")
        ax.set_title(f"state {flow.names[l]}")
        ax.set_xlabel("loss position t")
        ax.set_ylabel("source position s")
        ax.grid(False)
    for ax in axes[n_states:]:
        ax.axis("off")
    fig.colorbar(image, ax=axes.tolist(), label="‖∂ℓ$_t$/∂X$_l$[s]‖ (white: exactly 0)", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def plot_distance_profiles(profiles: dict, names, states, ax=None):
    """Relative pull of the loss k positions ahead, mean_s G[i, s, s+k] / mean_s G[i, s, s], against
    k (log scale), one line per (label, state). ``profiles`` maps a label to ``flow.by_distance()``."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    styles = ["-", "--", ":", "-."]
    colors = list(COLORS.values())
    for (label, profile), style in zip(profiles.items(), styles):
        profile = profile.cpu().numpy()
        for state, color in zip(states, colors):
            relative = profile[state, 1:] / profile[state, 0]
            ax.plot(np.arange(1, len(relative) + 1), relative, style, color=color, lw=2,
                    label=f"{names[state]}, {label}")
    ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("distance k = t − s to the loss (positions)")
    ax.set_ylabel("pull of ℓ$_{s+k}$ relative to ℓ$_s$")
    ax.legend(fontsize=9)
    return ax


def plot_state_grid(trace, positions, ax=None, min_weight: float = 0.15, batch_index: int = 0):
    """The positions × states grid of one forward pass. Dots: states (i, t), coloured by the norm
    ‖X_i[t]‖ from the trace. Vertical arrows: the residual path, (i−1, t) → (i, t). Slanted
    arrows: attention reads, (i−1, s) → (i, t) for s < t, drawn when the largest weight over
    heads A[t, s] ≥ ``min_weight`` (opacity ∝ weight)."""
    ax = ax or plt.subplots(figsize=(10, 5))[1]
    states = trace.stack()[:, batch_index].detach().cpu()  # (2L+1, ℓ, d)
    norms = states.norm(dim=-1).numpy()
    positions = list(positions)
    n_states = states.shape[0]
    for i in range(1, n_states):
        for t in positions:
            ax.annotate("", (t, i - 0.12), (t, i - 1 + 0.12),
                        arrowprops=dict(arrowstyle="->", color="#777777", lw=1))
            layer, part = state_layer(i)
            if part == "attn":  # an attention update reads earlier positions
                weights = trace.patterns[layer - 1][batch_index].detach().cpu().amax(0)  # (ℓ, ℓ)
                for s in positions:
                    if s < t and weights[t, s] >= min_weight:
                        ax.annotate("", (t - 0.08, i - 0.12), (s + 0.08, i - 1 + 0.12),
                                    arrowprops=dict(arrowstyle="->", color=COLORS["vermillion"],
                                                    lw=1.5, alpha=float(min(1.0, weights[t, s]))))
    grid = np.array([[norms[i, t] for t in positions] for i in range(n_states)])
    xs, ys = np.meshgrid(positions, range(n_states))
    dots = ax.scatter(xs, ys, c=grid, s=220, cmap=SEQUENTIAL_CMAP, edgecolors="black", linewidths=0.5, zorder=3)
    plt.colorbar(dots, ax=ax, label="‖X$_i$[t]‖", pad=0.02)
    ax.set_yticks(range(n_states), trace.names)
    ax.set_xticks(positions)
    ax.set_xlabel("position t")
    ax.set_ylabel("state of the residual stream")
    ax.grid(False)
    return ax


def plot_cone(J, graph, i: int, t: int, ax=None, names=None, colorbar: bool = True):
    """Measured Jacobian norms ‖∂X_i[t]/∂X_{i'}[s]‖ (log colour; white = exactly 0), with the cone
    the graph predicts outlined in black."""
    ax = ax or plt.subplots(figsize=(8, 3.5))[1]
    values = J.cpu().numpy()
    cmap = plt.get_cmap(SEQUENTIAL_CMAP).copy()
    cmap.set_bad("white")
    image = ax.imshow(np.ma.masked_equal(values, 0.0), norm=log_norm(values, 1e-4), cmap=cmap,
                      origin="lower", aspect="auto")
    for a, s in graph.cone(i, t):
        ax.add_patch(mpl.patches.Rectangle((s - 0.5, a - 0.5), 1, 1, fill=False, edgecolor="black", lw=1))
    ax.scatter([t], [i], marker="*", s=160, color=COLORS["vermillion"], zorder=3)
    ax.set_xlabel("position s")
    ax.set_ylabel("state")
    if names is not None:
        ax.set_yticks(range(len(names)), names)
    ax.grid(False)
    if colorbar:
        plt.colorbar(image, ax=ax, label="‖∂X$_i$[t] / ∂X$_{i'}$[s]‖", pad=0.02)
    return ax


def plot_path_scaling(lengths, depths, graph_cls, axes=None):
    """Two panels from :class:`~mini_transformer.analysis.paths.StateGraph`: the longest input-to-output
    path against the context length ℓ (flat without written tokens, growing with them), and the
    number of input-to-output *position trajectories* (log scale; ``total_paths``: one edge per
    update, residual and sublayer merged, as in chapter 2, not Veit et al.'s block paths, which
    ``paths_by_blocks`` counts). Returns the axes."""
    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)[1]
    colors = list(COLORS.values())
    for color, n_layers in zip(colors, depths):
        silent = [graph_cls(n_layers, n) for n in lengths]
        axes[0].plot(lengths, [g.longest_path() for g in silent], "o-", color=color, label=f"L = {n_layers}")
        axes[0].plot(lengths, [graph_cls(n_layers, n, written=True).longest_path() for n in lengths], "s--",
                     color=color, alpha=0.6, label=f"L = {n_layers}, writing tokens")
        axes[1].plot(lengths, [g.total_paths() for g in silent], "o-", color=color, label=f"L = {n_layers}")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("longest path (updates in a chain)")
    axes[0].set_title("Chain length: bounded by depth unless tokens are written")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("input-to-output position trajectories")
    axes[1].set_title("Position trajectories: their number grows with ℓ")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length ℓ (positions)")
        ax.legend(fontsize=9, ncol=1 if ax is axes[1] else 2)
    return axes


def plot_accuracy_grid(rows: dict[str, list[float]], chance: float, ax=None, solved: float = 0.99):
    """Heatmap of accuracy, one row per model (e.g. depth), one column per number of elements composed
    k = 1 … n; cells at or above ``solved`` are marked with a dot. Returns the axes."""
    ax = ax or plt.subplots(figsize=(10, 0.6 * len(rows) + 1.6))[1]
    values = np.array(list(rows.values()))
    image = ax.imshow(values, vmin=chance, vmax=1.0, cmap=SEQUENTIAL_CMAP, aspect="auto")
    ys, xs = np.nonzero(values >= solved)
    ax.scatter(xs, ys, s=12, color="white", edgecolor="black", lw=0.5, label=f"accuracy ≥ {solved:.0%}")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xticks(range(values.shape[1]), range(1, values.shape[1] + 1))
    ax.set_xlabel("k: number of permutations composed")
    ax.set_ylabel("model")
    ax.grid(False)
    plt.colorbar(image, ax=ax, label=f"accuracy (chance {chance:.2f})", pad=0.02)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 1.18), fontsize=9)
    return ax


def plot_accuracy_by_k(curves: dict[str, list[float]], chance: float, ax=None):
    """Accuracy against the number k of elements composed, one line per model, chance dashed."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    markers = "os^vD<>"
    for (name, values), marker in zip(curves.items(), markers):
        ax.plot(range(1, len(values) + 1), values, marker=marker, ms=5, label=name)
    ax.axhline(chance, color=COLORS["black"], ls="--", lw=1, label=f"chance ({chance:.2f})")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("k: number of permutations composed")
    ax.set_ylabel("accuracy on held-out sequences")
    ax.legend()
    return ax
