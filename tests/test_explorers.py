"""The in-page explorers: every combination of the controls is stored, each distinct frame once,
rounded to 3 significant digits; the page's data decodes back to the frame function's values; the
chapters' explorers hold the measured numbers (not drawn by hand); bad input names the argument.
(The browser side is tests/browser/test_explorers.py.)"""

import json
import pathlib
import re

import pytest
import torch

import mini_transformer as mt
from conftest import small_config
from mini_transformer.analysis.gradflow import gradient_flow
from mini_transformer.analysis.myopia import myopic
from mini_transformer.analysis.paths import StateGraph, measured_cone
from mini_transformer.notebook import explorers as ex

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _figure(n_traces=1):
    import plotly.graph_objects as go

    return go.Figure([go.Scatter(x=[0], y=[0]) for _ in range(n_traces)])


def test_every_combination_is_stored_and_repeated_frames_once():
    calls = []

    def frame(a, b):
        calls.append((a, b))
        return {"data": {0: {"y": [a]}}}  # does not depend on b

    made = ex.explorer("t", _figure(), [ex.slider("a", "A", [1, 2, 3]), ex.dropdown("b", "B", {"x": 0, "y": 1})], frame)
    assert sorted(calls) == [(a, b) for a in (1, 2, 3) for b in (0, 1)]
    assert len(made.index) == 6 and len(made.frames) == 3
    assert made.frame(a=2, b=1) == made.frame(a=2, b=0) == {"data": {"0": {"y": [2]}}, "layout": {}}
    assert made.index == [0, 0, 1, 1, 2, 2]  # the last control varies fastest, as the page reads it


def test_the_static_first_view_is_the_initial_frame():
    made = ex.explorer("t", _figure(), [ex.slider("a", "A", [1, 2, 3], initial=3)],
                       lambda a: {"data": {0: {"y": [a * 10]}}, "layout": {"title": {"text": f"a = {a}"}}})
    assert made.figure["data"][0]["y"] == [30]
    assert made.figure["layout"]["title"]["text"] == "a = 3"


def test_numbers_are_rounded_to_three_significant_digits():
    assert ex.round_sig(0.000123456) == 0.000123
    assert ex.round_sig(123456.0) == 123000
    assert ex.round_sig(torch.tensor([[1.23456, 0.0], [float("nan"), -2.71828]])) == [[1.23, 0], [None, -2.72]]
    assert ex.round_sig({"a": (1, 2.5)}) == {"a": [1, 2.5]}
    with pytest.raises(TypeError, match="explorer"):
        ex.round_sig(object())


def test_the_html_holds_the_data_the_controls_and_no_plotly_js():
    made = ex.explorer("t", _figure(), [ex.slider("a", "A", [1, 2], labels=["one", "two"])],
                       lambda a: {"data": {0: {"y": [a]}}}, log_color=[(0, "y")])
    page = made.to_html()
    data = re.search(r'<script type="application/json" class="mt-explorer-data">(.*?)</script>', page, re.S).group(1)
    spec = json.loads(data.replace("<\\/", "</"))
    assert spec["frames"] == made.frames and spec["index"] == made.index and spec["log"] == [[0, "y"]]
    assert f'data-mt-explorer="{made.explorer_id}"' in page and 'type="range"' in page and "two" not in page.split("<output")[0]
    assert ex.IN_PAGE in page
    assert "plotly.min.js\"" not in page and "<script src" not in page  # plotly.js comes from the book
    assert made.data_bytes == len(made.data_json().encode())
    assert made._repr_mimebundle_()["text/html"] == page


def test_a_script_closing_tag_in_the_data_cannot_end_the_script():
    made = ex.explorer("t", _figure(), [ex.dropdown("a", "A", ["</script><b>x"])],
                       lambda a: {"layout": {"title": {"text": a}}})
    page = made.to_html()
    assert page.count("</script>") == 2  # the data's and the code's own


def test_bad_input_names_the_argument():
    fig = _figure()
    with pytest.raises(ValueError, match="kind"):
        ex.Control("a", "A", (1,), ("1",), kind="knob")
    with pytest.raises(ValueError, match="initial"):
        ex.slider("a", "A", [1, 2], initial=5)
    with pytest.raises(ValueError, match="labels"):
        ex.slider("a", "A", [1, 2], labels=["one"])
    with pytest.raises(ValueError, match="empty"):
        ex.slider("a", "A", [])
    with pytest.raises(ValueError, match="controls"):
        ex.explorer("t", fig, [], lambda: {})
    with pytest.raises(TypeError, match="Control"):
        ex.explorer("t", fig, ["a"], lambda a: {})
    with pytest.raises(ValueError, match="differ"):
        ex.explorer("t", fig, [ex.slider("a", "A", [1]), ex.slider("a", "B", [1])], lambda a: {})
    with pytest.raises(ValueError, match="trace indices"):
        ex.explorer("t", fig, [ex.slider("a", "A", [1])], lambda a: {"data": {3: {"y": [1]}}})
    with pytest.raises(ValueError, match="'data' and/or 'layout'"):
        ex.explorer("t", fig, [ex.slider("a", "A", [1])], lambda a: {"traces": {}})
    with pytest.raises(ValueError, match="log_color"):
        ex.explorer("t", fig, [ex.slider("a", "A", [1])], lambda a: {}, log_color=[(2, "y")])
    with pytest.raises(ValueError, match="at most"):
        ex.explorer("t", fig, [ex.slider("a", "A", range(200)), ex.slider("b", "B", range(200))], lambda a, b: {})
    made = ex.explorer("t", fig, [ex.slider("a", "A", [1, 2])], lambda a: {})
    with pytest.raises(ValueError, match="missing"):
        made.frame()
    with pytest.raises(ValueError, match="one of"):
        made.frame(a=7)


@pytest.fixture(scope="module")
def model_and_x():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config())
    return model, torch.randint(0, 11, (1, 6))


def test_the_cone_explorer_holds_the_measured_cones(model_and_x):
    model, x = model_and_x
    graph = StateGraph(2, 6)
    cones = {(i, t): measured_cone(model, x, i, t) for i in range(5) for t in range(6)}
    names = ["X0", "L1.attn", "L1.mlp", "L2.attn", "L2.mlp"]
    made = ex.cone_explorer(cones, graph, names, tokens=list("abcdef"))
    assert len(made.index) == 5 * 6
    shown = made.frame(state=3, position=4)["data"]["0"]["z"]
    assert shown == ex.round_sig(cones[(3, 4)])
    nonzero = {(a, s) for a, row in enumerate(shown) for s, v in enumerate(row) if v != 0}
    assert nonzero == graph.cone(3, 4)
    with pytest.raises(ValueError, match="every"):
        ex.cone_explorer({(0, 0): cones[(0, 0)]}, graph, names)
    with pytest.raises(ValueError, match="names"):
        ex.cone_explorer(cones, graph, names[:2])


def test_the_gradient_flow_explorer_holds_G_for_every_loss_position(model_and_x):
    model, x = model_and_x
    flow = gradient_flow(model, x)
    made = ex.gradient_flow_explorer({"trained": flow, "other": flow})
    assert len(made.index) == 2 * flow.n_positions
    assert made.frame(model="trained", t=3)["data"]["0"]["z"] == ex.round_sig(flow.G[:, :, 3])
    with pytest.raises(ValueError, match="flows"):
        ex.gradient_flow_explorer({})


def test_the_signature_figure_steps_through_both_directions_from_measured_data(model_and_x):
    model, x = model_and_x
    _, trace = mt.trace(model, x)
    vanilla = gradient_flow(model, x)
    with myopic(model, beta=0.0):
        myopic_flow = gradient_flow(model, x)
    made = ex.flow_directions_explorer(trace, {"vanilla": vanilla, "myopic": myopic_flow}, tokens=list("abcdef"))
    n_states = 5
    # forward: rows 0..step computed, whatever t and gradient say
    for step in range(n_states):
        f = made.frame(direction="forward", step=step, t=2, gradient="myopic")["data"]
        assert sorted(set(f["3"]["y"])) == list(range(step + 1))
        assert made.frame(direction="forward", step=step, t=0, gradient="vanilla") == made.frame(
            direction="forward", step=step, t=2, gradient="myopic")
    # backward, all the way down: the colours are G[:, s, t] of the chosen gradient, where nonzero
    t = 4
    for kind, flow in [("vanilla", vanilla), ("myopic", myopic_flow)]:
        g = made.frame(direction="backward", step=n_states, t=t, gradient=kind)["data"]["4"]
        expected = [(s, i) for i in range(n_states) for s in range(5) if flow.G[i, s, t] > 0]
        assert list(zip(g["x"], g["y"])) == expected
        assert g["marker"]["color"] == [ex.round_sig(flow.G[i, s, t].item()) for s, i in expected]
    # vanilla reaches earlier positions; the myopic gradient stays in the loss's own column
    assert set(made.frame(direction="backward", step=n_states, t=t, gradient="myopic")["data"]["4"]["x"]) == {t}
    assert min(made.frame(direction="backward", step=n_states, t=t, gradient="vanilla")["data"]["4"]["x"]) == 0
    # one step down from the loss: only the top state, only at t
    top = made.frame(direction="backward", step=1, t=t, gradient="vanilla")["data"]["4"]
    assert top["x"] == [t] and top["y"] == [n_states - 1]
    with pytest.raises(ValueError, match="flows"):
        ex.flow_directions_explorer(trace, {})


def test_the_vendored_plotly_js_is_the_pinned_one():
    vendored = ROOT / "book" / "_static" / "plotly" / "plotly.min.js"
    assert f"plotly.js v{ex.PLOTLY_JS_VERSION}" in vendored.read_text(encoding="utf-8")[:200]
    pins = (ROOT / "requirements.txt").read_text()
    plotly_pin = re.search(r"^plotly==(\S+)", pins, re.M).group(1)
    assert plotly_pin in (ROOT / "book" / "_static" / "plotly" / "README.txt").read_text()
    assert f"plotly=={plotly_pin}" in (ROOT / "binder" / "requirements.txt").read_text()


def _grids():
    nan = float("nan")
    trained = ex.AccuracyGrid((1, 2), (1, 2, 3), {0: [[1.0, 0.5, 0.2], [1.0, 1.0, 0.3]], 1: [[1.0, 0.95, nan], [1.0, 0.8, 0.1]]},
                              reach={1: 2, 2: 4}, reach_name="k = 2^L", k_name="k", chance=1 / 6)
    other = ex.AccuracyGrid((1, 2), (1, 2, 3), {2: [[0.9, nan, nan], [nan, nan, nan]]},
                            reach={1: 0, 2: 1}, reach_name="k = 2^(L-1) - 1", k_name="hops", chance=1 / 8)
    compiled = ex.AccuracyGrid((1, 2, 3), (1, 2, 3, 4), {None: torch.tensor([[1.0, 1, 0.2, 0.1], [1, 1, 1, 1], [1, 1, 1, 1]])},
                               reach={1: 2, 2: 4, 3: 8}, reach_name="k = 2^L", k_name="k", chance=1 / 6)
    return {"trained": trained, "other": other, "compiled": compiled}


def test_the_accuracy_grid_explorer_shows_each_seed_the_mean_and_the_lowest():
    made = ex.accuracy_grid_explorer(_grids())
    assert len(made.index) == 3 * (2 + 3)  # grids × (mean, lowest, seeds 0, 1, 2)
    z = lambda grid, seed: made.frame(grid=grid, seed=seed)["data"]["0"]["z"]
    assert z("trained", 0) == [[1, 0.5, 0.2], [1, 1, 0.3]]
    assert z("trained", "mean") == [[1, 0.725, 0.2], [1, 0.9, 0.2]]  # a cell one seed lacks: the seed that ran
    assert z("trained", "lowest") == [[1, 0.5, 0.2], [1, 0.8, 0.1]]
    assert z("trained", 2) == [[None] * 3] * 2  # a seed this grid does not have: blank, and the title says so
    assert "seed 2 was not run" in made.frame(grid="trained", seed=2)["layout"]["title"]["text"]
    assert z("other", 2)[0][0] == 0.9 and z("other", "mean")[1] == [None] * 3
    # dots: exactly the shown cells at ≥ 90%
    dots = made.frame(grid="trained", seed="lowest")["data"]["3"]
    assert list(zip(dots["x"], dots["y"])) == [(1, 1), (1, 2)]
    dots = made.frame(grid="trained", seed="mean")["data"]["3"]
    assert list(zip(dots["x"], dots["y"])) == [(1, 1), (1, 2), (2, 2)]
    # a compiled grid ignores the seed; its data is the array given
    assert made.frame(grid="compiled", seed="mean") == made.frame(grid="compiled", seed=1)
    assert z("compiled", 0) == [[1, 1, 0.2, 0.1], [1, 1, 1, 1], [1, 1, 1, 1]]
    # the reach line: the right edge of k ≤ reach[L] in each row, held inside the axis
    line = made.frame(grid="compiled", seed=0)["data"]["2"]
    assert line["x"] == [2.5, 2.5, 4.5, 4.5, 4.5, 4.5] and line["y"] == [0.5, 1.5, 1.5, 2.5, 2.5, 3.5]
    assert made.frame(grid="other", seed=0)["data"]["2"]["x"][:2] == [0.5, 0.5]  # reach 0: nothing within
    # it opens on a trained grid, so moving the seed changes the figure
    assert made.figure["data"][0]["z"] == z("trained", "mean")


def test_the_accuracy_grid_explorer_names_bad_input():
    good = _grids()["trained"]
    with pytest.raises(ValueError, match="ks must be consecutive"):
        ex.AccuracyGrid((1, 2), (1, 2, 4), good.accuracy, good.reach, "r", "k", 0.5)
    with pytest.raises(ValueError, match="shape"):
        ex.AccuracyGrid((1, 2), (1, 2), good.accuracy, good.reach, "r", "k", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.AccuracyGrid((1,), (1,), {0: [[1.5]]}, {1: 1}, "r", "k", 0.5)
    with pytest.raises(ValueError, match="reach"):
        ex.AccuracyGrid((1, 2), (1, 2, 3), good.accuracy, {1: 2}, "r", "k", 0.5)
    with pytest.raises(ValueError, match="None alone"):
        ex.AccuracyGrid((1,), (1,), {None: [[1.0]], 0: [[1.0]]}, {1: 1}, "r", "k", 0.5)
    with pytest.raises(ValueError, match="chance"):
        ex.AccuracyGrid((1,), (1,), {0: [[1.0]]}, {1: 1}, "r", "k", 1.5)
    with pytest.raises(ValueError, match="trained"):
        ex.accuracy_grid_explorer({"compiled": _grids()["compiled"]})
    with pytest.raises(TypeError, match="AccuracyGrid"):
        ex.accuracy_grid_explorer({"x": [[1.0]]})
    with pytest.raises(ValueError, match="threshold"):
        ex.accuracy_grid_explorer(_grids(), threshold=0)


def test_the_chain_gradient_explorer_holds_every_format_rule_and_loss():
    import numpy as np

    rng = np.random.default_rng(0)
    grids = {(f, r): rng.random((3, 3, 5)) for f in ("thoughts", "written") for r in ("vanilla", "myopic")}
    grids["thoughts", "myopic"][:, 2, :] = 0.0  # exact zeros stay blank (log colour)
    tokens = {"thoughts": ["g1", "θ1", "g2", "θ2", "g3"], "written": ["g1", "s1", "g2", "s2", "g3"]}
    made = ex.chain_gradient_explorer(grids, tokens, ["X0", "L1.attn", "L1.mlp"])
    assert len(made.index) == 2 * 2 * 3
    frame = made.frames[made.index[-1]]  # written, myopic, the last loss
    assert frame["layout"]["xaxis"]["ticktext"] == tokens["written"]
    data = frame["data"]
    z = (data.get(0) or data.get("0"))["z"]
    view = grids["written", "myopic"][2]
    np.testing.assert_allclose(np.array(z, dtype=float), np.array(ex.round_sig((view / view.max()).tolist())))
    assert f"largest G {view.max():.2g}" in frame["layout"]["title"]["text"]
    zeros = made.frames[made.index[5]]["data"]  # thoughts, myopic, the last loss: its zero row stays zero
    assert np.all(np.array((zeros.get(0) or zeros.get("0"))["z"], dtype=float)[2] == 0)
    with pytest.raises(ValueError, match="every .format, rule. pair"):
        ex.chain_gradient_explorer({("thoughts", "vanilla"): grids["thoughts", "vanilla"],
                                           ("written", "myopic"): grids["written", "myopic"]}, tokens,
                                          ["X0", "L1.attn", "L1.mlp"])
    with pytest.raises(ValueError, match="tokens"):
        ex.chain_gradient_explorer(grids, {"thoughts": tokens["thoughts"]}, ["X0", "L1.attn", "L1.mlp"])
    with pytest.raises(ValueError, match="state_names"):
        ex.chain_gradient_explorer(grids, tokens, ["X0"])
