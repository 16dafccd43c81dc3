"""Live explorers (ipywidgets): for the explorers that must recompute in Python when a control
moves (e.g. retraining a model with a new β). They need a running kernel (Binder, Colab); in the
HTML book their Python callbacks cannot run, so a page shows a static figure beside each one and
says which kind it is (``mini_transformer.notebook.explorers.LIVE``).

Explorers whose every state can be computed in advance run in the page instead, with no kernel:
see :mod:`~mini_transformer.notebook.explorers` (chapters 2 and 3 use only those)."""

from __future__ import annotations

import matplotlib.pyplot as plt


def live_explorer(controls: list, plot, figsize=(9, 3.8)):
    """Lay out ipywidgets ``controls`` above a figure that ``plot(ax)`` redraws (recomputing
    whatever it needs) whenever one of them changes, under a line that says it needs a kernel."""
    import ipywidgets as widgets
    from IPython.display import display

    from .explorers import LIVE

    if not controls:
        raise ValueError("controls must hold at least one ipywidgets control")
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
    box = widgets.VBox([widgets.HTML(f"<small>&#9654; {LIVE}</small>"), widgets.HBox(controls), out])
    display(box)
    return box
