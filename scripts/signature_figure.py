"""The book's signature figure as a static PNG, for readers of the repository (README.md shows it).

    python scripts/signature_figure.py      # writes book/images/signature_figure.png

It draws chapter 3's in-page explorer "two directions of flow" with matplotlib, from the data the
committed, executed notebook holds (the explorer's stored frames: measured attention reads and
gradient norms G = ‖∂ℓ_t/∂X_i[s]‖); no model is run here. Three views of the positions × states
grid of one window: the forward computation complete, then the vanilla and the myopic gradient
of the last loss coming back. Re-run it after chapter 3 is re-executed.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mini_transformer.notebook.plots import COLORS, SEQUENTIAL_CMAP, use_style  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "03_gradient_flow.ipynb"
OUT = ROOT / "book" / "images" / "signature_figure.png"
DATA = re.compile(r'<script type="application/json" class="mt-explorer-data">(.*?)</script>', re.S)


def explorer_specs(notebook: Path) -> list[dict]:
    """The data of every in-page explorer in a notebook's outputs (what the page's script reads)."""
    specs = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html")
            page = "".join(page) if isinstance(page, list) else page
            if page and "data-mt-explorer=" in page:
                specs += [json.loads(m.replace("<\\/", "</")) for m in DATA.findall(page)]
    return specs


def signature_spec(notebook: Path = CHAPTER) -> dict:
    """Chapter 3's "two directions of flow" explorer: the one with a "direction" control."""
    found = [s for s in explorer_specs(notebook) if any(c["label"] == "direction" for c in s["controls"])]
    if len(found) != 1:
        raise ValueError(f"{notebook}: expected one explorer with a 'direction' control, found {len(found)} "
                         "(is the chapter executed?)")
    return found[0]


def _deep(base, update):
    if not isinstance(base, dict) or not isinstance(update, dict):
        return update
    return {**base, **{k: _deep(base.get(k), v) for k, v in update.items()}}


def view(spec: dict, **chosen: str) -> dict:
    """The figure the page shows for the controls set to the given labels (by control label,
    spaces as underscores and brackets dropped: ``direction="backward pass"``); other controls stay
    at their initial value. Returns ``{"data": [traces], "layout": {...}}`` as the page merges it."""
    position = 0
    for control in spec["controls"]:
        key = re.sub(r"[^a-z]+", "_", control["label"].lower()).strip("_")
        label = chosen.pop(key, None)
        if label is not None and label not in control["labels"]:
            raise ValueError(f"{key} must be one of {control['labels']}, got {label!r}")
        index = control["labels"].index(label) if label is not None else control["initial"]
        position = position * len(control["labels"]) + index
    if chosen:
        raise ValueError(f"no control named {sorted(chosen)}")
    patch = spec["frames"][spec["index"][position]]
    data = [_deep(trace, patch["data"].get(str(k), {})) for k, trace in enumerate(spec["figure"]["data"])]
    return {"data": data, "layout": _deep(spec["figure"]["layout"], patch.get("layout", {}))}


def _segments(trace):
    xs, ys = trace.get("x", []), trace.get("y", [])
    return [((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(0, len(xs) - 1, 3)]


def draw_view(ax, shown: dict, norm, title: str):
    """One view of the grid: states (open circles), the residual (grey) and attention (orange)
    edges drawn, forward states lit (blue) or backward gradients coloured by G (log), the loss (star)."""
    nodes, vertical, slanted, lit, grads, loss = shown["data"]
    for (x0, y0), (x1, y1) in _segments(vertical):
        ax.plot([x0, x1], [y0, y1], color="#888888", lw=1.2, zorder=1)
    for (x0, y0), (x1, y1) in _segments(slanted):
        ax.plot([x0, x1], [y0, y1], color=COLORS["vermillion"], lw=1.1, alpha=0.8, zorder=1)
    ax.scatter(nodes["x"], nodes["y"], s=70, facecolors="white", edgecolors="#bbbbbb", zorder=2)
    if lit.get("x"):
        ax.scatter(lit["x"], lit["y"], s=70, color=COLORS["sky"], edgecolors="black", linewidths=0.5, zorder=3)
    points = None
    if grads.get("x"):
        points = ax.scatter(grads["x"], grads["y"], c=grads["marker"]["color"], s=70, cmap=SEQUENTIAL_CMAP,
                            norm=norm, edgecolors="black", linewidths=0.5, zorder=3)
    ax.scatter(loss["x"], loss["y"], marker="*", s=200, color=COLORS["vermillion"], edgecolors="black",
               linewidths=0.5, zorder=4)
    xaxis, yaxis = shown["layout"]["xaxis"], shown["layout"]["yaxis"]
    ax.set_xticks(xaxis["tickvals"], [html.unescape(t).replace("<br>", "\n") for t in xaxis["ticktext"]], fontsize=11)
    ax.set_yticks(yaxis["tickvals"], [re.sub(r"<[^>]+>", "", t) for t in yaxis["ticktext"]])
    ax.set_xlim(*xaxis["range"])
    ax.set_ylim(*yaxis["range"])
    ax.set_xlabel("position (the character there)")
    ax.set_title(title, fontsize=14)
    ax.grid(False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return points


def render(spec: dict, out: Path = OUT) -> Path:
    """The three views side by side, saved as a PNG at ``out``."""
    controls = {c["label"]: c["labels"] for c in spec["controls"]}
    last_step = controls["step"][-1]
    last_t = controls["loss position t (backward)"][-1]
    t = last_t.split()[0]
    forward = view(spec, direction="forward computation", step=last_step)
    backward = {kind: view(spec, direction="backward pass", step=last_step, loss_position_t_backward=last_t,
                           gradient_backward=kind) for kind in ("vanilla", "myopic")}
    colors = spec["figure"]["data"][4]["marker"]  # the explorer's log colour range (log10 of G)
    norm = matplotlib.colors.LogNorm(vmin=10 ** colors["cmin"], vmax=10 ** colors["cmax"])

    use_style()
    plt.rcParams.update({"font.size": 13})  # the README shows it about half size
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.4), constrained_layout=True, sharey=True)
    draw_view(axes[0], forward, norm, "Forward: each row is computed from the one below;\n"
                                      "attention (orange) reads only leftward")
    points = None
    for ax, (kind, shown) in zip(axes[1:], backward.items()):
        reached = sorted(set(shown["data"][4]["x"]))
        where = f"positions {reached[0]}–{reached[-1]}" if reached[0] != reached[-1] else f"position {reached[0]} only"
        points = draw_view(ax, shown, norm, f"Backward, {kind} gradient of ℓ$_{{{t}}}$:\nit reaches {where}")
    axes[0].set_ylabel("state of the residual stream")
    fig.colorbar(points, ax=axes[1:], label="G = ‖∂ℓ$_t$ / ∂X$_i$[s]‖ (log scale)", pad=0.01, shrink=0.9)
    fig.suptitle("Two directions of flow in a trained two-layer transformer (chapter 3; measured, not drawn by hand)",
                 fontsize=16)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=CHAPTER)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    out = render(signature_spec(args.notebook), args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")
    return out


if __name__ == "__main__":
    main()
