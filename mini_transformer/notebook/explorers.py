"""Explorers that run in the page: plotly figures whose controls (sliders, dropdowns) switch between
states of the figure computed in advance in the notebook, so they respond in the static HTML book
with no kernel behind it.

One helper, :func:`explorer`, makes every explorer of the book, so they look and behave alike: the
chapter builds a plotly figure and a function from the controls' values to what changes in it; the
helper evaluates that function at **every** combination of the controls, rounds the numbers to 3
significant digits, stores each distinct state once, and writes HTML with the controls, the data
and a short script that redraws the figure (``Plotly.react``) when a control moves. Values listed
in ``log_color`` are stored as they are and shown on a log colour scale by the page (zeros stay
blank), so data that spans decades stays readable and compact.

plotly.js itself is not in the output: the book serves its own copy on every page that has an
explorer (``book/_ext/explorer_assets.py``), so the page works offline. In a live notebook
(Jupyter, Binder, Colab), where the book's copy is absent, the script loads the same plotly.js
version once from ``LIVE_NOTEBOOK_PLOTLY``.

The figures of the chapters are below the helper: :func:`cone_explorer` (chapter 2),
:func:`gradient_flow_explorer` and :func:`flow_directions_explorer` (chapter 3),
:func:`accuracy_grid_explorer` (chapter 4). Explorers that
must recompute in a kernel (e.g. retraining) are ipywidgets, in :mod:`~mini_transformer.notebook.widgets`.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..models import state_layer
from .plots import COLORS

PLOTLY_JS_VERSION = "3.7.0"  # the plotly.js inside plotly==6.9.0 (requirements.txt), vendored in book/_static/plotly/
LIVE_NOTEBOOK_PLOTLY = f"https://cdn.plot.ly/plotly-{PLOTLY_JS_VERSION}.min.js"  # never used by the built book
IN_PAGE = "In-page explorer: it runs in your browser from data computed when this page was executed; no kernel needed."
LIVE = "Live explorer: it recomputes in Python, so it needs a running kernel (Binder or Colab)."
MAX_FRAMES = 20_000
VIRIDIS = "Viridis"  # perceptually uniform, colour-blind safe (as the matplotlib figures)


@dataclass(frozen=True)
class Control:
    """One control of an explorer: a ``"slider"`` or a ``"dropdown"`` named ``name`` (the keyword the
    frame function receives), shown as ``label``, over ``values`` (shown as ``labels``), starting at
    index ``initial``."""

    name: str
    label: str
    values: tuple
    labels: tuple[str, ...]
    kind: str = "slider"
    initial: int = 0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier, got {self.name!r}")
        if self.kind not in ("slider", "dropdown"):
            raise ValueError(f"kind must be 'slider' or 'dropdown', got {self.kind!r}")
        if len(self.values) == 0:
            raise ValueError(f"control {self.name!r}: values must not be empty")
        if len(self.labels) != len(self.values):
            raise ValueError(f"control {self.name!r}: {len(self.labels)} labels for {len(self.values)} values")
        if isinstance(self.initial, bool) or not isinstance(self.initial, int) or not 0 <= self.initial < len(self.values):
            raise ValueError(f"control {self.name!r}: initial must be an index in [0, {len(self.values)}), got {self.initial!r}")


def _control(kind, name, label, values, labels, initial):
    values = tuple(values)
    labels = tuple(str(v) for v in values) if labels is None else tuple(str(x) for x in labels)
    index = 0 if initial is None else (values.index(initial) if initial in values else -1)
    if initial is not None and index < 0:
        raise ValueError(f"control {name!r}: initial must be one of its values, got {initial!r}")
    return Control(name, label, values, labels, kind, index)


def slider(name: str, label: str, values: Sequence, labels: Sequence | None = None, initial=None) -> Control:
    """A slider over ``values`` (in order), starting at the value ``initial`` (default: the first)."""
    return _control("slider", name, label, values, labels, initial)


def dropdown(name: str, label: str, options, initial=None) -> Control:
    """A dropdown; ``options`` is a list of values (shown as they are) or a dict label → value."""
    if isinstance(options, dict):
        labels, values = list(options), list(options.values())
    else:
        values, labels = list(options), None
    return _control("dropdown", name, label, values, labels, initial)


def round_sig(value, digits: int = 3):
    """``value`` (a number, array, tensor or nested list/dict) with every float rounded to ``digits``
    significant digits and arrays turned into lists: what the page stores. NaN becomes None."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: round_sig(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_sig(v, digits) for v in value]
    if isinstance(value, (bool, np.bool_)) or value is None or isinstance(value, str):
        return bool(value) if isinstance(value, np.bool_) else value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if value == 0 or math.isinf(value):
            return 0 if value == 0 else value
        rounded = float(f"{value:.{digits}g}")
        return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
    raise TypeError(f"cannot store a {type(value).__name__} in an explorer")


@dataclass
class Explorer:
    """An explorer ready to show: display it in a notebook (its ``text/html`` output is what the
    book renders). ``frames`` holds each distinct state once; ``index[k]`` is the frame of the k-th
    combination of the controls (the last control varies fastest)."""

    title: str
    figure: dict
    controls: tuple[Control, ...]
    frames: list[dict]
    index: list[int]
    log_color: tuple[tuple[int, str], ...] = ()
    kind: str = "in-page"
    explorer_id: str = field(default="")

    def spec(self) -> dict:
        return {"figure": self.figure, "controls": [
            {"label": c.label, "kind": c.kind, "labels": list(c.labels), "initial": c.initial} for c in self.controls],
            "frames": self.frames, "index": self.index, "log": [list(pair) for pair in self.log_color]}

    def data_json(self) -> str:
        return json.dumps(self.spec(), separators=(",", ":"), allow_nan=False)

    @property
    def data_bytes(self) -> int:
        """Size of the data this explorer puts in the page, in bytes."""
        return len(self.data_json().encode())

    def frame(self, **values) -> dict:
        """The stored frame for the given control values (all of them), as the page would show it."""
        missing = {c.name for c in self.controls} - set(values)
        if missing:
            raise ValueError(f"give a value for every control: missing {sorted(missing)}")
        position = 0
        for control in self.controls:
            if values[control.name] not in control.values:
                raise ValueError(f"{control.name} must be one of {list(control.values)}, got {values[control.name]!r}")
            position = position * len(control.values) + control.values.index(values[control.name])
        return self.frames[self.index[position]]

    def to_html(self) -> str:
        data = self.data_json().replace("</", "<\\/")  # never close the script tag early
        key = html.escape(self.explorer_id)
        controls = []
        for k, control in enumerate(self.controls):
            label = html.escape(control.label)
            if control.kind == "dropdown":
                options = "".join(f'<option value="{j}"{" selected" if j == control.initial else ""}>{html.escape(text)}</option>'
                                  for j, text in enumerate(control.labels))
                widget = f'<select data-control="{k}" aria-label="{label}">{options}</select>'
            else:
                widget = (f'<input type="range" data-control="{k}" min="0" max="{len(control.values) - 1}" step="1" '
                          f'value="{control.initial}" aria-label="{label}" style="vertical-align:middle;width:14em">'
                          f' <output data-output="{k}">{html.escape(control.labels[control.initial])}</output>')
            controls.append(f'<label style="margin-right:1.5em;white-space:nowrap">{label} {widget}</label>')
        note = IN_PAGE if self.kind == "in-page" else LIVE
        return (f'<div class="mt-explorer" data-mt-explorer="{key}" style="margin:0.5em 0 1em 0">'
                f'<p class="mt-explorer-kind" style="font-size:0.85em;color:#555;margin:0 0 0.3em 0">'
                f'&#9654; {html.escape(note)}</p>'
                f'<div class="mt-explorer-controls" style="margin-bottom:0.3em">{"".join(controls)}</div>'
                f'<div class="mt-explorer-figure" style="width:100%;height:{self.figure["layout"].get("height", 400)}px"></div>'
                f'<script type="application/json" class="mt-explorer-data">{data}</script>'
                f'<script>{_SCRIPT.replace("__KEY__", json.dumps(self.explorer_id)).replace("__LIVE__", json.dumps(LIVE_NOTEBOOK_PLOTLY))}</script>'
                f'</div>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.to_html(),
                "text/plain": f"<{self.kind} explorer {self.title!r}: {len(self.frames)} frames, "
                              f"{self.data_bytes / 1e3:.0f} kB of data>"}


def explorer(title: str, figure, controls: Sequence[Control], frame: Callable[..., dict],
             log_color: Sequence[tuple[int, str]] = ()) -> Explorer:
    """The book's one way to make an explorer that runs in the page.

    ``figure`` is a plotly ``go.Figure`` (or its dict); ``frame(**values)`` receives one value per
    control (by its ``name``) and returns what changes: ``{"data": {trace_index: {property: value}},
    "layout": {property: value}}``, nested dicts for nested properties (``{"marker": {"color": …}}``).
    It is called for every combination of the controls' values. ``log_color`` lists the
    ``(trace_index, "dotted.property")`` whose values the page shows on a log colour scale
    (give the trace ``customdata`` hover text, e.g. ``%{customdata:.3g}``, for the real value; values
    ≤ 0 are left blank). Returns an :class:`Explorer`."""
    controls = tuple(controls)
    if not controls:
        raise ValueError("controls must hold at least one Control")
    if not all(isinstance(c, Control) for c in controls):
        raise TypeError("controls must be Control objects (see slider() and dropdown())")
    if len({c.name for c in controls}) != len(controls):
        raise ValueError(f"control names must differ, got {[c.name for c in controls]}")
    combinations = math.prod(len(c.values) for c in controls)
    if combinations > MAX_FRAMES:
        raise ValueError(f"{combinations} combinations of the controls: at most {MAX_FRAMES} fit in a page")
    figure = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else dict(figure)
    figure = round_sig({"data": list(figure.get("data", [])), "layout": dict(figure.get("layout", {}))})
    n_traces = len(figure["data"])
    for trace, path in log_color:
        if not 0 <= trace < n_traces:
            raise ValueError(f"log_color names trace {trace}, but the figure has {n_traces} traces")
    frames, index, seen = [], [], {}
    for combination in itertools.product(*(c.values for c in controls)):
        patch = frame(**{c.name: v for c, v in zip(controls, combination)})
        patch = _check_patch(patch, n_traces)
        text = json.dumps(patch, sort_keys=True, allow_nan=False)
        if text not in seen:
            seen[text] = len(frames)
            frames.append(patch)
        index.append(seen[text])
    initial = frames[index[_initial_position(controls)]]
    figure = _merge(figure, initial)  # the static first view equals the initial frame
    made = Explorer(title=title, figure=figure, controls=controls, frames=frames, index=index,
                    log_color=tuple((int(t), str(p)) for t, p in log_color))
    made.explorer_id = "mt-" + hashlib.sha1(made.data_json().encode()).hexdigest()[:10]
    return made


def _initial_position(controls) -> int:
    position = 0
    for control in controls:
        position = position * len(control.values) + control.initial
    return position


def _check_patch(patch, n_traces: int) -> dict:
    if not isinstance(patch, dict) or set(patch) - {"data", "layout"}:
        raise ValueError(f"frame must return a dict with keys 'data' and/or 'layout', got {patch!r:.80}")
    data = patch.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(k, int) and 0 <= k < n_traces for k in data):
        raise ValueError(f"frame's 'data' must map trace indices in [0, {n_traces}) to properties")
    return round_sig({"data": {str(k): v for k, v in sorted(data.items())}, "layout": patch.get("layout", {})})


def _merge(figure: dict, patch: dict) -> dict:
    def deep(base, update):
        if not isinstance(base, dict) or not isinstance(update, dict):
            return update
        out = dict(base)
        for key, value in update.items():
            out[key] = deep(base.get(key), value)
        return out

    data = [deep(trace, patch["data"].get(str(k), {})) for k, trace in enumerate(figure["data"])]
    return {"data": data, "layout": deep(figure["layout"], patch.get("layout", {}))}


# The page's side: read the controls, pick the stored frame, merge it into the base figure, apply the
# log colour scale, redraw. Plotly comes from the book (a <script> in the page's head); only in a live
# notebook, where the book's copy is absent, is it fetched once from LIVE_NOTEBOOK_PLOTLY.
_SCRIPT = r"""
(function () {
  var key = __KEY__, live = __LIVE__;
  var here = document.currentScript && document.currentScript.closest("[data-mt-explorer]");
  var root = here || Array.prototype.find.call(
    document.querySelectorAll('[data-mt-explorer="' + key + '"]'), function (el) { return !el.dataset.ready; });
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var spec = JSON.parse(root.querySelector(".mt-explorer-data").textContent);
  var plot = root.querySelector(".mt-explorer-figure");
  var inputs = root.querySelectorAll("[data-control]");
  function deep(base, update) {
    if (update === null || typeof update !== "object" || Array.isArray(update) ||
        base === null || typeof base !== "object" || Array.isArray(base)) { return update; }
    var out = Object.assign({}, base);
    Object.keys(update).forEach(function (k) { out[k] = deep(base[k], update[k]); });
    return out;
  }
  function logOf(v) {
    if (Array.isArray(v)) { return v.map(logOf); }
    return (typeof v === "number" && v > 0) ? Math.log10(v) : null;
  }
  function figure() {
    var position = 0;
    spec.controls.forEach(function (c, k) { position = position * c.labels.length + Number(inputs[k].value); });
    var patch = spec.frames[spec.index[position]];
    var data = spec.figure.data.map(function (trace, k) { return deep(trace, patch.data[String(k)] || {}); });
    spec.log.forEach(function (pair) {
      var trace = data[pair[0]], path = pair[1].split("."), holder = trace;
      for (var i = 0; i < path.length - 1; i++) { holder[path[i]] = Object.assign({}, holder[path[i]]); holder = holder[path[i]]; }
      var values = holder[path[path.length - 1]];
      if (values === undefined) { return; }
      trace.customdata = values;
      holder[path[path.length - 1]] = logOf(values);
    });
    return {data: data, layout: deep(spec.figure.layout, patch.layout || {})};
  }
  function draw() {
    inputs.forEach(function (input, k) {
      var shown = root.querySelector('[data-output="' + k + '"]');
      if (shown) { shown.textContent = spec.controls[k].labels[Number(input.value)]; }
    });
    var f = figure();
    window.Plotly.react(plot, f.data, f.layout, {responsive: true, displaylogo: false});
  }
  function start() {
    inputs.forEach(function (input) { input.addEventListener("input", draw); input.addEventListener("change", draw); });
    draw();
    if (window.ResizeObserver) {  // the page's column can settle after the first draw: follow its width
      new ResizeObserver(function () { if (plot._fullLayout) { window.Plotly.Plots.resize(plot); } }).observe(plot);
    }
  }
  function afterLoad() {
    if (window.Plotly) { start(); return; }
    if (!window.mtExplorerPlotly) {  // a live notebook: the book's plotly.js is not here; load it once
      window.mtExplorerPlotly = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = live;
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    window.mtExplorerPlotly.then(start, function () {
      plot.textContent = "This explorer needs plotly.js, which could not be loaded.";
    });
  }
  if (window.Plotly) { start(); }
  else if (document.readyState === "complete") { afterLoad(); }
  else { window.addEventListener("load", afterLoad, {once: true}); }
})();
"""


# ---------------------------------------------------------------------------------------------------
# The chapters' explorers


def _log_colorbar(values, floor_ratio: float = 1e-4, title: str = "") -> dict:
    """Colour range and decade ticks for log10 of positive ``values`` (down to ``floor_ratio`` of the max)."""
    top = float(np.max(values))
    if not top > 0:
        raise ValueError("a log colour scale needs at least one positive value")
    hi, lo = math.log10(top), math.log10(top * floor_ratio)
    ticks = list(range(math.ceil(lo), math.floor(hi) + 1))
    return {"cmin": lo, "cmax": hi, "colorbar": {"title": {"text": title, "side": "right"}, "tickvals": ticks,
                                                   "ticktext": [f"1e{k}" if k not in (0, 1) else str(10 ** k) for k in ticks]}}


def _grid_and_loss_star(n_states: int, n: int, scale: dict, hovertemplate: str) -> list:
    """The states × positions heatmap (trace 0: its ``z`` comes from each frame, on the log colour
    ``scale``) and the loss position's star on the row above it (trace 1: its ``x`` from each frame)."""
    import plotly.graph_objects as go

    return [go.Heatmap(z=np.zeros((n_states, n)).tolist(), x=list(range(n)), y=list(range(n_states)),
                       colorscale=VIRIDIS, zmin=scale["cmin"], zmax=scale["cmax"], colorbar=scale["colorbar"],
                       hoverongaps=False, xgap=1, ygap=1, hovertemplate=hovertemplate),
            go.Scatter(x=[0], y=[n_states], mode="markers+text", text=["loss"], textposition="middle right",
                       marker={"symbol": "star", "size": 16, "color": COLORS["vermillion"]}, hoverinfo="skip")]


def _layout(height: int, xaxis: dict, yaxis: dict, title: str) -> dict:
    return {"template": "simple_white", "height": height, "margin": {"l": 70, "r": 20, "t": 50, "b": 50},
            "title": {"text": title, "font": {"size": 14}}, "xaxis": xaxis, "yaxis": yaxis,
            "font": {"family": "sans-serif", "size": 12}, "showlegend": False}


def _runs(cells: set, row: int) -> list[tuple[int, int]]:
    """Maximal runs [a, b] of consecutive columns of ``row`` in ``cells`` (a set of (row, column))."""
    columns = sorted(s for a, s in cells if a == row)
    runs = []
    for s in columns:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return [tuple(r) for r in runs]


def _outline(cells: set) -> tuple[list, list]:
    """x, y of rectangles (None-separated) around each row's runs of ``cells``: the predicted cone."""
    xs, ys = [], []
    for row in sorted({a for a, _ in cells}):
        for a, b in _runs(cells, row):
            xs += [a - 0.5, b + 0.5, b + 0.5, a - 0.5, a - 0.5, None]
            ys += [row - 0.5, row - 0.5, row + 0.5, row + 0.5, row - 0.5, None]
    return xs, ys


def cone_explorer(cones, graph, names: Sequence[str], tokens: Sequence[str] | None = None) -> Explorer:
    """Chapter 2: pick a state and a position; see its dependency cone, measured with autograd.

    ``cones[(i, t)]`` is :func:`~mini_transformer.analysis.paths.measured_cone` of state i at
    position t (shape ``(2L+1, ℓ)``), for every state i and position t of ``graph`` (a
    :class:`~mini_transformer.analysis.paths.StateGraph`); ``tokens`` label the positions.
    Colour: ‖∂X_i[t]/∂X_{i'}[s]‖ on one log scale for every cone, blank where it is exactly zero;
    black outline: the cone the graph predicts."""
    import plotly.graph_objects as go

    n_states, length = graph.n_states, graph.length
    if len(names) != n_states:
        raise ValueError(f"names must name the {n_states} states, got {len(names)}")
    wanted = {(i, t) for i in range(n_states) for t in range(length)}
    if set(cones) != wanted:
        raise ValueError(f"cones must hold every (state, position) of the graph: {len(wanted)} pairs, got {len(cones)}")
    arrays = {key: np.asarray(J.detach().cpu().numpy() if hasattr(J, "detach") else J) for key, J in cones.items()}
    if any(J.shape != (n_states, length) for J in arrays.values()):
        raise ValueError(f"every cone must have shape ({n_states}, {length})")
    scale = _log_colorbar(np.stack(list(arrays.values())), title="‖∂X<sub>i</sub>[t] / ∂X<sub>i′</sub>[s]‖")
    ticks = [f"{s}<br>{tokens[s]!r}"[:16] if tokens is not None else str(s) for s in range(length)]
    figure = go.Figure([
        go.Heatmap(z=np.zeros((n_states, length)).tolist(), x=list(range(length)), y=list(range(n_states)),
                   colorscale=VIRIDIS, zmin=scale["cmin"], zmax=scale["cmax"], colorbar=scale["colorbar"],
                   hoverongaps=False, xgap=1, ygap=1,
                   hovertemplate="source: %{y} at s = %{x}<br>‖J‖ = %{customdata:.3g}<extra></extra>"),
        go.Scatter(x=[], y=[], mode="lines", line={"color": "black", "width": 1.5}, hoverinfo="skip"),
        go.Scatter(x=[0], y=[0], mode="markers", marker={"symbol": "star", "size": 16, "color": COLORS["vermillion"],
                                                          "line": {"color": "black", "width": 0.5}}, hoverinfo="skip"),
    ])
    figure.update_layout(**_layout(
        330, {"title": "position s", "tickmode": "array", "tickvals": list(range(0, length, max(1, length // 12))),
              "range": [-0.5, length - 0.5]},
        {"title": "state", "tickmode": "array", "tickvals": list(range(n_states)), "ticktext": list(names),
         "range": [-0.5, n_states - 0.5]}, ""))

    def frame(state, position):
        xs, ys = _outline(graph.cone(state, position))
        inside = len(graph.cone(state, position))
        return {"data": {0: {"z": arrays[(state, position)]}, 1: {"x": xs, "y": ys},
                         2: {"x": [position], "y": [state]}},
                "layout": {"title": {"text": f"cone of {names[state]} at position {position}: "
                                             f"{inside} state{'s' if inside != 1 else ''} inside (outline: predicted; blank: exactly 0)"}}}

    controls = [dropdown("state", "state", {name: i for i, name in enumerate(names)}, initial=n_states - 1),
                slider("position", "position t", range(length), labels=ticks and [t.replace("<br>", " ") for t in ticks],
                       initial=length // 2)]
    return explorer("dependency cones", figure, controls, frame, log_color=[(0, "z")])


def gradient_flow_explorer(flows: dict, tokens: Sequence[str] | None = None) -> Explorer:
    """Chapter 3: pick a model and a loss position t; see G[i, s, t] = ‖∂ℓ_t/∂X_i[s]‖ over the
    positions × states grid. ``flows`` maps a label (e.g. "trained", "at initialisation") to a
    :class:`~mini_transformer.analysis.gradflow.GradientFlow`; one log colour scale for all of them."""
    import plotly.graph_objects as go

    if not flows:
        raise ValueError("flows must map at least one label to a GradientFlow")
    first = next(iter(flows.values()))
    n_states, n = first.G.shape[0], first.n_positions
    if any(f.G.shape != first.G.shape for f in flows.values()):
        raise ValueError("every flow must have the same shape (states, positions, positions)")
    G = {label: f.G.detach().cpu().numpy() for label, f in flows.items()}
    scale = _log_colorbar(np.stack(list(G.values())), title="‖∂ℓ<sub>t</sub> / ∂X<sub>i</sub>[s]‖")
    names = list(first.names)
    figure = go.Figure(_grid_and_loss_star(
        n_states, n, scale, "state %{y}, source s = %{x}<br>G = %{customdata:.3g}<extra></extra>"))
    figure.update_layout(**_layout(
        340, {"title": "source position s", "range": [-0.5, n - 0.5]},
        {"title": "state of the residual stream", "tickmode": "array", "tickvals": list(range(n_states + 1)),
         "ticktext": names + ["loss ℓ<sub>t</sub>"], "range": [-0.5, n_states + 0.5]}, ""))

    def frame(model, t):
        values = G[model][:, :, t]
        return {"data": {0: {"z": values}, 1: {"x": [t], "text": [f"ℓ<sub>{t}</sub>"]}},
                "layout": {"title": {"text": f"{model}: where the gradient of ℓ<sub>{t}</sub> lands "
                                             f"(blank: exactly 0; positions after t get none)"}}}

    labels = [f"{t} {tokens[t]!r}" if tokens is not None else str(t) for t in range(n)]
    controls = [dropdown("model", "model", list(flows)), slider("t", "loss position t", range(n), labels, initial=min(20, n - 1))]
    return explorer("gradient flow", figure, controls, frame, log_color=[(0, "z")])


def flow_directions_explorer(trace, flows: dict, tokens: Sequence[str] | None = None, positions: int = 16,
                             min_weight: float = 0.15, batch_index: int = 0) -> Explorer:
    """The book's signature figure: on the positions × states grid of one model and one sequence,
    step through the **forward** computation (states computed row by row; attention reads only
    from the left, so information moves up and rightward) and the **backward** pass from a chosen
    loss ℓ_t (G[i, s, t] row by row from the top: the gradient moves down and leftward).

    ``trace`` is the :class:`~mini_transformer.models.ResidualTrace` of the sequence (its attention
    patterns give the drawn reads: largest weight over heads ≥ ``min_weight``); ``flows`` maps the
    kind of gradient to a :class:`~mini_transformer.analysis.gradflow.GradientFlow` of the same
    sequence, e.g. ``{"vanilla": …, "myopic": …}``: any labels, so later chapters can add theirs.
    A backward read is drawn where the measured gradient is nonzero at both of its ends."""
    import plotly.graph_objects as go

    if not flows:
        raise ValueError("flows must map at least one kind of gradient to a GradientFlow")
    n_states = len(trace.states)
    length = min(positions, next(iter(flows.values())).n_positions)
    if any(f.G.shape[0] != n_states or f.n_positions < length for f in flows.values()):
        raise ValueError(f"every flow must have {n_states} states and at least {length} positions")
    top = n_states  # the loss row
    G = {kind: f.G.detach().cpu().numpy()[:, :length, :length] for kind, f in flows.items()}
    scale = _log_colorbar(np.stack([g for g in G.values()]), title="G = ‖∂ℓ<sub>t</sub> / ∂X<sub>i</sub>[s]‖")
    weights = [p[batch_index].detach().cpu().amax(0).numpy()[:length, :length] for p in trace.patterns]
    reads = {}  # row i (an attention row) -> [(s, t)]: t reads s < t
    for i in range(1, n_states):
        layer, part = state_layer(i)
        reads[i] = [(s, t) for t in range(length) for s in range(t) if part == "attn" and weights[layer - 1][t, s] >= min_weight]
    columns = list(range(length))

    def segments(pairs):
        xs, ys = [], []
        for (x0, y0), (x1, y1) in pairs:
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        return xs, ys

    steps = list(range(n_states + 1))  # forward: rows 0..step computed; backward: step rows down from the loss
    all_nodes = [(s, i) for i in range(n_states) for s in columns]
    figure = go.Figure([
        go.Scatter(x=[s for s, _ in all_nodes], y=[i for _, i in all_nodes], mode="markers", hoverinfo="skip",
                   marker={"symbol": "circle-open", "size": 13, "color": "#bbbbbb", "line": {"width": 1}}),
        go.Scatter(x=[], y=[], mode="lines", hoverinfo="skip", line={"color": "#888888", "width": 1.5}),
        go.Scatter(x=[], y=[], mode="lines", hoverinfo="skip", line={"color": COLORS["vermillion"], "width": 2}),
        go.Scatter(x=[], y=[], mode="markers", hoverinfo="skip",
                   marker={"size": 14, "color": COLORS["sky"], "line": {"color": "black", "width": 0.5}}),
        go.Scatter(x=[], y=[], mode="markers", hovertemplate="s = %{x}, state %{y}<br>G = %{customdata:.3g}<extra></extra>",
                   marker={"size": 14, "color": [], "colorscale": VIRIDIS, "cmin": scale["cmin"], "cmax": scale["cmax"],
                           "colorbar": scale["colorbar"], "showscale": True, "line": {"color": "black", "width": 0.5}}),
        go.Scatter(x=[], y=[], mode="markers", hoverinfo="skip",
                   marker={"symbol": "star", "size": 17, "color": COLORS["vermillion"], "line": {"color": "black", "width": 0.5}}),
    ])
    ticks = [f"{s}<br>{tokens[s]!r}" if tokens is not None else str(s) for s in columns]
    figure.update_layout(**_layout(
        420, {"title": "position (the character there)", "tickmode": "array", "tickvals": columns, "ticktext": ticks,
              "range": [-0.6, length - 0.4]},
        {"title": "state", "tickmode": "array", "tickvals": list(range(n_states + 1)),
         "ticktext": list(trace.names) + ["loss ℓ"], "range": [-0.6, n_states + 0.6]}, ""))
    figure.update_layout(margin={"b": 70})

    def row_edges(i, backward_kind=None, t=None):
        vertical = [((s, i - 1), (s, i)) for s in columns]
        slanted = [((s, i - 1), (u, i)) for s, u in reads[i]]
        if backward_kind is not None:  # keep the edges the measured gradient of ℓ_t crosses
            g = G[backward_kind][:, :, t]
            vertical = [e for e in vertical if g[i - 1, e[0][0]] > 0 and g[i, e[1][0]] > 0]
            slanted = [e for e in slanted if g[i - 1, e[0][0]] > 0 and g[i, e[1][0]] > 0]
        return vertical, slanted

    def frame(direction, step, t, gradient):
        vertical, slanted, data = [], [], {}
        if direction == "forward":
            for i in range(1, min(step, n_states - 1) + 1):
                v, a = row_edges(i)
                vertical += v
                slanted += a
            lit = [(s, i) for i in range(min(step, n_states - 1) + 1) for s in columns]
            loss = columns if step == n_states else []
            data[3] = {"x": [s for s, _ in lit], "y": [i for _, i in lit]}
            data[4] = {"x": [], "y": [], "marker": {"color": []}}
            data[5] = {"x": loss, "y": [top] * len(loss)}
            last = min(step, n_states - 1)
            if step == 0:
                caption = "X0: each position holds its token's embedding plus its position's"
            elif step == n_states:
                caption = "every position predicts the next character: one loss ℓ<sub>t</sub> per position"
            else:
                layer, part = state_layer(last)
                caption = (f"layer {layer}'s attention: each position reads earlier ones (orange), never later ones"
                           if part == "attn" else f"layer {layer}'s MLP: each position on its own (straight up)")
            title = f"Forward, step {step} of {n_states}: {caption}"
        else:
            lowest = top - step  # rows lowest .. top-1 reached
            g = G[gradient][:, :, t]
            reached = [(s, i) for i in range(max(lowest, 0), n_states) for s in columns if g[i, s] > 0]
            for i in range(max(lowest, 0) + 1, n_states):
                v, a = row_edges(i, gradient, t)
                vertical += v
                slanted += a
            data[3] = {"x": [], "y": []}
            data[4] = {"x": [s for s, _ in reached], "y": [i for _, i in reached],
                       "marker": {"color": [g[i, s] for s, i in reached]}}
            data[5] = {"x": [t], "y": [top]}
            if step == 0:
                caption = f"the loss ℓ<sub>{t}</sub> at position {t}"
            else:
                spread = sorted({s for s, _ in reached})
                caption = (f"{gradient}: the gradient of ℓ<sub>{t}</sub> has reached "
                           f"{trace.names[max(lowest, 0)]}, at positions {spread[0]}–{spread[-1]}"
                           if spread and spread[0] != spread[-1] else
                           f"{gradient}: the gradient of ℓ<sub>{t}</sub> has reached {trace.names[max(lowest, 0)]}, "
                           f"at position {t} only")
            title = f"Backward from ℓ<sub>{t}</sub>, step {step} of {n_states}: {caption}"
        data[1] = dict(zip(("x", "y"), segments(vertical)))
        data[2] = dict(zip(("x", "y"), segments(slanted)))
        return {"data": data, "layout": {"title": {"text": title}}}

    labels = [f"{t} {tokens[t]!r}" if tokens is not None else str(t) for t in columns]
    # it opens on the backward pass complete, from the last loss: the most telling single view
    controls = [dropdown("direction", "direction", {"forward computation": "forward", "backward pass": "backward"},
                         initial="backward"),
                slider("step", "step", steps, initial=steps[-1]),
                slider("t", "loss position t (backward)", columns, labels, initial=length - 1),
                dropdown("gradient", "gradient (backward)", list(flows))]
    return explorer("two directions of flow", figure, controls, frame, log_color=[(4, "marker.color")])


@dataclass(frozen=True)
class AccuracyGrid:
    """One grid of :func:`accuracy_grid_explorer` (chapter 4): accuracy by depth L (rows) and k
    (columns), both runs of consecutive integers.

    ``accuracy`` maps a seed to a ``(len(depths), len(ks))`` array in [0, 1], NaN where no model
    was run; a compiled model (no training, hence no seed) has the single key ``None``.
    ``reach[L]`` is the largest k that a known construction handles with L layers (0: none), and
    ``reach_name`` says which construction; ``k_name`` titles the k axis; ``chance`` is the
    accuracy of a uniform guess."""

    depths: tuple[int, ...]
    ks: tuple[int, ...]
    accuracy: dict
    reach: dict
    reach_name: str
    k_name: str
    chance: float

    def __post_init__(self):
        for name in ("depths", "ks"):
            values = tuple(getattr(self, name))
            if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values) \
                    or list(values) != list(range(values[0], values[0] + len(values))):
                raise ValueError(f"{name} must be consecutive integers, got {values!r}")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        if not isinstance(self.accuracy, dict) or not self.accuracy:
            raise ValueError("accuracy must map at least one seed (or None for a compiled model) to an array")
        if None in self.accuracy and len(self.accuracy) > 1:
            raise ValueError("accuracy: a compiled model (key None) has no seeds; give None alone")
        if any(s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))) for s in self.accuracy):
            raise ValueError(f"accuracy's keys must be integer seeds or None, got {list(self.accuracy)}")
        shape = (len(self.depths), len(self.ks))
        arrays = {}
        for seed, values in self.accuracy.items():
            array = np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values, dtype=float)
            if array.shape != shape:
                raise ValueError(f"accuracy[{seed!r}] must have shape {shape} (depths, ks), got {array.shape}")
            if np.any((array[~np.isnan(array)] < 0) | (array[~np.isnan(array)] > 1)):
                raise ValueError(f"accuracy[{seed!r}] must lie in [0, 1] (NaN where not run)")
            arrays[None if seed is None else int(seed)] = array
        object.__setattr__(self, "accuracy", arrays)
        if set(self.reach) != set(self.depths):
            raise ValueError(f"reach must give a k for every depth {list(self.depths)}, got {sorted(self.reach)}")
        if not 0 < self.chance < 1:
            raise ValueError(f"chance must be in (0, 1), got {self.chance!r}")

    @property
    def compiled(self) -> bool:
        return None in self.accuracy

    def shown(self, seed) -> np.ndarray:
        """The cells shown for the seed choice: ``"mean"`` or ``"lowest"`` over the seeds run in
        each cell, or one seed (all NaN if that seed was not run); a compiled model ignores it."""
        if self.compiled:
            return self.accuracy[None]
        if seed in ("mean", "lowest"):
            stacked = np.stack(list(self.accuracy.values()))
            run = ~np.isnan(stacked)
            count = run.sum(0)
            if seed == "mean":
                total = np.where(run, stacked, 0).sum(0)
                return np.where(count > 0, total / np.maximum(count, 1), np.nan)
            return np.where(count > 0, np.where(run, stacked, np.inf).min(0), np.nan)
        if seed in self.accuracy:
            return self.accuracy[seed]
        return np.full((len(self.depths), len(self.ks)), np.nan)


SEED_CHOICES = {"mean over seeds": "mean", "lowest seed in each cell (the rule for k*)": "lowest"}


def accuracy_grid_explorer(grids: dict, threshold: float = 0.9, title: str = "the grid by depth and k") -> Explorer:
    """Chapter 4: pick a grid (trained or compiled models, one task each) and a seed; see accuracy
    by depth L and k as a heatmap, a dot on every cell at ≥ ``threshold``, and a dashed line at
    each depth's construction reach (``AccuracyGrid.reach``: cells left of it are within reach).

    ``grids`` maps the dropdown's label to an :class:`AccuracyGrid`. The seed control offers the
    mean and the lowest value over the seeds run in each cell (the lowest's dots give the largest
    k solved on every seed), then each seed found in any grid; a grid that lacks the chosen seed is
    shown blank, and a compiled grid ignores the seed."""
    import plotly.graph_objects as go

    if not isinstance(grids, dict) or not grids:
        raise ValueError("grids must map at least one label to an AccuracyGrid")
    if not all(isinstance(g, AccuracyGrid) for g in grids.values()):
        raise TypeError("grids' values must be AccuracyGrid objects")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    seeds = sorted({s for g in grids.values() for s in g.accuracy if s is not None})
    if not seeds:
        raise ValueError("at least one grid must hold trained models (integer seeds)")
    figure = go.Figure([
        go.Heatmap(z=[[0.0]], x=[1], y=[1], colorscale=VIRIDIS, zmin=0, zmax=1, xgap=1, ygap=1, hoverongaps=False,
                   colorbar={"title": {"text": "accuracy", "side": "right"}, "tickformat": ".0%"},
                   hovertemplate="L = %{y}, k = %{x}<br>%{customdata}<extra></extra>"),
        go.Scatter(x=[], y=[], mode="lines", hoverinfo="skip", line={"color": "white", "width": 5}),
        go.Scatter(x=[], y=[], mode="lines", hoverinfo="skip", line={"color": "black", "width": 2.5, "dash": "dash"}),
        go.Scatter(x=[], y=[], mode="markers", hoverinfo="skip",
                   marker={"symbol": "circle", "size": 8, "color": "white", "line": {"color": "black", "width": 1}}),
    ])
    figure.update_layout(**_layout(430, {"title": "k"}, {"title": "depth L (layers)"}, ""))
    figure.update_layout(margin={"l": 130, "t": 75})

    def staircase(grid):  # the reach line: right edge of the cells k ≤ reach[L], row by row
        lo, hi = grid.ks[0] - 0.5, grid.ks[-1] + 0.5
        xs, ys = [], []
        for L in grid.depths:
            edge = min(max(grid.reach[L] + 0.5, lo), hi)
            xs += [edge, edge]
            ys += [L - 0.5, L + 0.5]
        return xs, ys

    def cell_text(grid, shown, i, j):
        if np.isnan(shown[i, j]):
            return "not run"
        if grid.compiled:
            return f"accuracy {shown[i, j]:.3f} (compiled: no training, no seed)"
        runs = " / ".join("not run" if np.isnan(a[i, j]) else f"{a[i, j]:.3f}" for a in grid.accuracy.values())
        return f"shown {shown[i, j]:.3f}<br>seeds {', '.join(map(str, grid.accuracy))}: {runs}"

    def frame(grid, seed):
        g = grids[grid]
        shown = g.shown(seed)
        xs, ys = staircase(g)
        dots = [(k, L) for i, L in enumerate(g.depths) for j, k in enumerate(g.ks)
                if not np.isnan(shown[i, j]) and shown[i, j] >= threshold]
        if g.compiled:
            which = "compiled models: no training, no seed"
        elif seed == "mean":
            which = f"mean over seeds {', '.join(map(str, g.accuracy))}"
        elif seed == "lowest":
            which = f"lowest of seeds {', '.join(map(str, g.accuracy))} in each cell"
        elif seed in g.accuracy:
            which = f"seed {seed}"
        else:
            which = f"seed {seed} was not run for this grid (seeds {', '.join(map(str, g.accuracy))})"
        # every k up to 16 columns; else 1 and the powers of two from 4 (1, 2, 4 would collide)
        ticks = [k for k in g.ks if len(g.ks) <= 16 or k == 1 or (k >= 4 and (k & (k - 1)) == 0)]
        reach = [f"L = {L} (reach {g.reach[L]})" if g.reach[L] > 0 else f"L = {L} (reach: none)" for L in g.depths]
        return {"data": {0: {"x": list(g.ks), "y": list(g.depths), "z": np.where(np.isnan(shown), None, shown).tolist(),
                             "customdata": [[cell_text(g, shown, i, j) for j in range(len(g.ks))] for i in range(len(g.depths))]},
                         1: {"x": xs, "y": ys}, 2: {"x": xs, "y": ys},
                         3: {"x": [k for k, _ in dots], "y": [L for _, L in dots],
                             "marker": {"size": 8 if len(g.ks) <= 16 else 5}}},
                "layout": {"title": {"text": f"{grid}: {which}<br><span style='font-size:11px'>dots: ≥ {threshold:.0%}; "
                                             f"dashed: {g.reach_name}; chance {g.chance:.3g}; blank: not run</span>"},
                           "xaxis": {"title": {"text": g.k_name}, "range": [g.ks[0] - 0.5, g.ks[-1] + 0.5],
                                     "tickmode": "array", "tickvals": ticks, "ticktext": [str(k) for k in ticks],
                                     "tickangle": 0},
                           "yaxis": {"range": [g.depths[0] - 0.5, g.depths[-1] + 0.5], "tickmode": "array",
                                     "tickvals": list(g.depths), "ticktext": reach}}}

    trained = next(label for label, g in grids.items() if not g.compiled)
    controls = [dropdown("grid", "grid", {label: label for label in grids}, initial=trained),
                dropdown("seed", "seed", {**SEED_CHOICES, **{f"seed {s}": s for s in seeds}})]
    return explorer(title, figure, controls, frame)


def chain_gradient_explorer(grids: dict, tokens: dict, state_names: Sequence[str]) -> Explorer:
    """Chapter 7 (the signature figure's last selector): pick a way of adding positions (written
    tokens, filler tokens, continuous thoughts), a training rule (vanilla, myopic) and the loss
    position; see G = ‖∂ℓ/∂X_i[p]‖ over the states × positions grid of one model. ``grids`` maps
    ``(format, rule)`` to an array ``(losses, states, positions)``: one grid per loss position;
    ``tokens`` maps each format to its position labels. Each view is coloured relative to its own
    largest G (log scale), whose value its title gives."""
    import plotly.graph_objects as go

    if not grids:
        raise ValueError("grids must map at least one (format, rule) to an array (losses, states, positions)")
    arrays = {key: np.asarray(value, dtype=float) for key, value in grids.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"every grid must be one array (losses, states, positions) of the same shape, got {shapes}")
    n_losses, n_states, n = next(iter(shapes))
    formats = list(dict.fromkeys(f for f, _ in arrays))
    rules = list(dict.fromkeys(r for _, r in arrays))
    if set(arrays) != {(f, r) for f in formats for r in rules}:
        raise ValueError("grids must hold every (format, rule) pair")
    if set(tokens) != set(formats) or any(len(tokens[f]) != n for f in formats):
        raise ValueError(f"tokens must give {n} position labels for each format {formats}")
    if len(state_names) != n_states:
        raise ValueError(f"state_names must name the {n_states} states")
    # One colour scale per view, relative to the view's largest G: the trained thought model's
    # gradients (~1e-3) and the written format's (~1) differ by decades, so a shared scale would
    # leave one of them uniformly dark. The title gives the largest G of the view.
    scale = _log_colorbar(np.ones(1), title="G / largest G in this view")
    figure = go.Figure(_grid_and_loss_star(
        n_states, n, scale, "state %{y}, position %{x}<br>G / largest G = %{customdata:.3g}<extra></extra>"))
    figure.update_layout(**_layout(
        320, {"title": "position", "tickmode": "array", "tickvals": list(range(n)), "range": [-0.5, n - 0.5]},
        {"title": "state", "tickmode": "array", "tickvals": list(range(n_states + 1)),
         "ticktext": list(state_names) + ["loss"], "range": [-0.5, n_states + 0.5]}, ""))
    answer_positions = list(range(0, n, 2))  # the output after each g_t (the format g₁ w₁ g₂ w₂ … g_K)

    def frame(fmt, rule, t):
        p, view = answer_positions[t], arrays[fmt, rule][t]
        top = float(view.max())
        return {"data": {0: {"z": view / top if top > 0 else view},
                         1: {"x": [p], "text": ["ℓ"], "textposition": "middle right" if p < n - 1 else "middle left"}},
                "layout": {"xaxis": {"ticktext": list(tokens[fmt])},
                           "title": {"text": f"{fmt}, {rule}: where ∂ℓ after g<sub>{t + 1}</sub> lands "
                                             f"(largest G {top:.2g}; blank: 0)"}}}

    controls = [dropdown("fmt", "positions added", formats), dropdown("rule", "training rule", rules),
                slider("t", "loss after g_t", range(n_losses), [f"g{t + 1}" for t in range(n_losses)],
                       initial=n_losses - 1)]
    return explorer("where the answer's gradient goes", figure, controls, frame, log_color=[(0, "z")])
