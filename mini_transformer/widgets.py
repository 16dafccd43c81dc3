"""Interactive explorers for a live kernel (ipywidgets). The HTML book cannot run their Python
callbacks, so each chapter shows a static figure beside every explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt


def gradient_flow_explorer(flows: dict, window: int = 16):
    """Pick a model (``flows`` maps a label to a :class:`~mini_transformer.gradflow.GradientFlow`)
    and a loss position t; see how ‖∂ℓ_t/∂X_l[s]‖ spreads over the positions × states grid."""
    import ipywidgets as widgets
    from IPython.display import display

    from .plots import plot_gradient_grid

    first = next(iter(flows.values()))
    position = widgets.IntSlider(value=min(20, first.n_positions - 1), min=0, max=first.n_positions - 1,
                                 description="loss position t", style={"description_width": "initial"},
                                 continuous_update=False)
    which = widgets.Dropdown(options=list(flows), description="model")
    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(8, 3.8))
            plot_gradient_grid(flows[which.value], position.value, ax=ax, window=window)
            ax.set_title(f"{which.value}: where the gradient of ℓ_{position.value} lands")
            plt.show()

    position.observe(draw, names="value")
    which.observe(draw, names="value")
    draw()
    box = widgets.VBox([widgets.HBox([which, position]), out])
    display(box)
    return box
