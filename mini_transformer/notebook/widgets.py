"""Interactive explorers for a live kernel (ipywidgets). The HTML book cannot run their Python
callbacks, so each chapter shows a static figure beside every explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt


def _explorer(controls: list, plot, figsize=(9, 3.8)):
    """Lay out ``controls`` above a figure that ``plot(ax)`` redraws whenever one of them changes."""
    import ipywidgets as widgets
    from IPython.display import display

    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=figsize)
            plot(ax)
            plt.show()

    for control in controls:
        control.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox(controls), out])
    display(box)
    return box


def gradient_flow_explorer(flows: dict, window: int = 16):
    """Pick a model (``flows`` maps a label to a :class:`~mini_transformer.analysis.gradflow.GradientFlow`)
    and a loss position t; see how ‖∂ℓ_t/∂X_i[s]‖ spreads over the positions × states grid."""
    import ipywidgets as widgets

    from .plots import plot_gradient_grid

    first = next(iter(flows.values()))
    which = widgets.Dropdown(options=list(flows), description="model")
    position = widgets.IntSlider(value=min(20, first.n_positions - 1), min=0, max=first.n_positions - 1,
                                 description="loss position t", style={"description_width": "initial"},
                                 continuous_update=False)

    def plot(ax):
        plot_gradient_grid(flows[which.value], position.value, ax=ax, window=window)
        ax.set_title(f"{which.value}: where the gradient of ℓ_{position.value} lands")

    return _explorer([which, position], plot)


def cone_explorer(model, x, names):
    """Pick a state and a position; see its dependency cone measured with autograd (chapter 2)."""
    import ipywidgets as widgets

    from ..analysis.paths import StateGraph, measured_cone
    from .plots import plot_cone

    length = x.shape[-1]
    graph = StateGraph(model.config.n_layers, length)
    state = widgets.Dropdown(options=[(name, i) for i, name in enumerate(names)], value=len(names) - 1,
                             description="state")
    position = widgets.IntSlider(value=length // 2, min=0, max=length - 1, description="position t",
                                 continuous_update=False)

    def plot(ax):
        J = measured_cone(model, x, state.value, position.value)
        plot_cone(J, graph, state.value, position.value, ax=ax, names=names)
        ax.set_title(f"cone of {names[state.value]} at position {position.value}")

    return _explorer([state, position], plot)
