"""Chapter 7's pieces: the chain format, thought edges in the state graph, the gradient through a
chain of thoughts, and the training arms of experiments/continuous_thoughts.py."""

import pytest
import torch
import torch.nn.functional as F

from mini_transformer import DTransformer, TransformerConfig
from mini_transformer.analysis.paths import StateGraph
from mini_transformer.analysis.thoughts import state_gradients, think
from mini_transformer.hooks import state_names, zero_deltas
from mini_transformer.experiments import continuous_thoughts as ct
from mini_transformer.tasks import permutations as s3


def test_chain_format_replaces_the_first_written_steps_by_placeholders():
    g = torch.tensor([[1, 2, 3, 4]])
    s = s3.running_products(g)
    written = s3.with_thoughts(g, s, 0)
    assert written.tolist() == s3.interleave(g, s)[:, :-1].tolist()  # the written format, last token dropped
    x = s3.with_thoughts(g, s, 2)
    assert x[0, 0::2].tolist() == g[0].tolist()
    assert x[0, 1::2].tolist() == [s3.THOUGHT, s3.THOUGHT, 6 + s[0, 2].item()]
    with pytest.raises(ValueError, match="n_thoughts"):
        s3.with_thoughts(g, s, 4)
    with pytest.raises(ValueError, match="s must be"):
        s3.with_thoughts(g, s[:, :2], 1)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_thought_edges_carry_gradient_and_sampling_edges_do_not(n_layers):
    n = 5
    length, odd = 2 * n - 1, range(1, 2 * n - 1, 2)
    written = StateGraph(n_layers, length, written=True, written_positions=odd)
    thought = StateGraph(n_layers, length, thought_positions=odd)
    filler = StateGraph(n_layers, length)
    climb = 2 * n_layers
    # n − 1 fed-back edges between n climbs: the same forward path for words and thoughts
    assert written.longest_path() == thought.longest_path() == n * climb + (n - 1)
    assert thought.longest_path(gradient=True) == thought.longest_path()
    assert written.longest_path(gradient=True) == filler.longest_path() == filler.longest_path(gradient=True) == climb
    assert thought.parents(0, 1) == [(climb, 0)] and thought.parents(0, 2) == []
    assert thought.carries_gradient((climb, 0), (0, 1)) and not written.carries_gradient((climb, 0), (0, 1))


def test_state_graph_rejects_bad_thought_positions():
    with pytest.raises(ValueError, match="thought_positions"):
        StateGraph(1, 4, thought_positions=[0])
    with pytest.raises(TypeError, match="thought_positions"):
        StateGraph(1, 4, thought_positions=[1.5])
    with pytest.raises(ValueError, match="not both"):
        StateGraph(1, 4, written=True, written_positions=[1], thought_positions=[1, 3])
    with pytest.raises(ValueError, match="paths_by_blocks"):
        StateGraph(1, 4, thought_positions=[1]).paths_by_blocks()
    with pytest.raises(TypeError, match="gradient"):
        StateGraph(1, 4).longest_path(gradient=1)


def one_layer():
    torch.manual_seed(0)
    return DTransformer(TransformerConfig(vocab_size=s3.THOUGHT_VOCAB, max_len=7, d_model=16, n_layers=1,
                                          n_heads=2)).double()


def test_the_answer_reaches_earlier_top_states_only_through_the_chain():
    model = one_layer()
    g, s = s3.sample(8, 4, torch.Generator().manual_seed(0))
    x = s3.with_thoughts(g, s, 3)

    def answer_loss(logits):
        return F.cross_entropy(logits[:, -1, 6:12], s[:, -1], reduction="sum")

    chained = state_gradients(model, x, x == s3.THOUGHT, answer_loss)
    cut = state_gradients(model, x, x == s3.THOUGHT, answer_loss, detach=True)
    top, g_positions = chained.shape[0] - 1, [0, 2, 4]
    # one layer: the top state of g_t is read only by the thought after it (and the unembedding at the end)
    assert (chained[top, g_positions] > 1e-4).all() and (cut[top, g_positions] == 0).all()
    assert (chained[top, 1::2] == 0).all()  # a thought's own top state feeds nothing
    assert chained[0, 0] > cut[0, 0] > 0  # the first input: through attention either way, more with the chain
    torch.testing.assert_close(chained[:, -1], cut[:, -1])  # the answer's own states: no chain above them
    # the gradient of the sum is the sum of the gradients: the same as a plain backward pass
    logits, _ = think(model, x, x == s3.THOUGHT)
    model.zero_grad()
    answer_loss(logits).backward()
    assert model.embedding.token.weight.grad.abs().sum() > 0


def test_chain_loss_supervises_what_the_arm_says():
    model = one_layer()
    g, s = s3.sample(4, 4, torch.Generator().manual_seed(1))
    x = s3.with_thoughts(g, s, 2)
    logits, _ = think(model, x, x == s3.THOUGHT)
    out = ct.answer_logits(logits)
    expected = F.cross_entropy(out[:, 2:].reshape(-1, 6), s[:, 2:].reshape(-1))  # written step 3 and the answer
    torch.testing.assert_close(ct.chain_loss(model, g, s, 2), expected)
    every = F.cross_entropy(out.reshape(-1, 6), s.reshape(-1))
    torch.testing.assert_close(ct.chain_loss(model, g, s, 2, supervise_thoughts=True), every)
    assert ct.chain_accuracy(model, g, s).shape == (4,)


def test_stages_of_each_arm():
    assert [st["n_thoughts"] for st in ct.stages("curriculum", 4)] == [0, 1, 2, 3]
    assert all(not st["supervise_thoughts"] and not st["detach"] for st in ct.stages("curriculum", 4))
    assert all(st["detach"] for st in ct.stages("curriculum_detached", 4))
    assert ct.stages("answer_only", 3) == [dict(n_thoughts=2, supervise_thoughts=False, detach=False)] * 3
    assert all(st["supervise_thoughts"] for st in ct.stages("decoded", 3))
    assert all(not st["feed"] for st in ct.stages("curriculum_pause", 3))
    # a pause in every slot, the loss at every step: decoded without its fed-back vectors
    assert ct.stages("decoded_pause", 3) == [dict(n_thoughts=2, supervise_thoughts=True, detach=True, feed=False)] * 3
    assert all(st["feed"] for st in ct.stages("decoded", 3))
    assert ct.stages("silent", 2) == [{}, {}]
    with pytest.raises(ValueError, match="arm"):
        ct.stages("coconut", 3)


def test_pauses_feed_nothing_back_and_baselines_score_their_own_format():
    model = one_layer()
    g, s = s3.sample(6, 4, torch.Generator().manual_seed(4))
    x = s3.with_thoughts(g, s, 3)
    pause_logits, fed = think(model, x, (x == s3.THOUGHT) & False)
    torch.testing.assert_close(pause_logits, model(x))  # a pause is the placeholder token as a plain input
    assert fed.shape[1] == 0
    assert ct.accuracy("curriculum_pause", model, g, s).shape == (4,)
    # decoded_pause is scored on the placeholders as plain inputs, the same as the pause logits above
    torch.testing.assert_close(ct.accuracy("decoded_pause", model, g, s),
                               (ct.answer_logits(pause_logits).argmax(-1) == s).float().mean(0))
    # the silent baseline reads g alone; the written one writes its own tokens: check against a manual loop
    torch.testing.assert_close(ct.silent_accuracy(model, g, s),
                               (model(g)[..., 6:12].argmax(-1) == s).float().mean(0))
    x_manual, right = g[:, :1], []
    for t in range(4):
        predicted = model(x_manual)[:, -1, 6:12].argmax(-1)
        right.append((predicted == s[:, t]).float().mean().item())
        if t < 3:
            x_manual = torch.cat([x_manual, (predicted + 6)[:, None], g[:, t + 1:t + 2]], 1)
    assert ct.written_accuracy(model, g, s).tolist() == pytest.approx(right)
    # the written arm's loss is the teacher-forced written format, every step supervised
    written_x = s3.with_thoughts(g, s, 0)
    out = ct.answer_logits(model(written_x))
    torch.testing.assert_close(ct.loss_of("written", {})(model, g, s),
                               F.cross_entropy(out.reshape(-1, 6), s.reshape(-1)))


def test_merge_joins_files_that_differ_in_their_arms(tmp_path):
    base = dict(lengths=(3,), steps_per_stage=2, d_model=16, n_heads=2, seeds=(0,), n_test=16)
    a = ct.run(ct.ThoughtConfig(arms=("curriculum",), **base), tmp_path / "a.json", progress=False)
    b = ct.run(ct.ThoughtConfig(arms=("silent",), **base), tmp_path / "b.json", progress=False)
    merged = ct.merge([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "m.json")
    assert merged["config"]["arms"] == ["curriculum", "silent"]
    assert merged["accuracy"] == {**a["accuracy"], **b["accuracy"]}
    ct.run(ct.ThoughtConfig(arms=("silent",), **{**base, "steps_per_stage": 3}), tmp_path / "c.json", progress=False)
    with pytest.raises(ValueError, match="more than their arms"):
        ct.merge([tmp_path / "a.json", tmp_path / "c.json"], tmp_path / "x.json")


def test_tiny_script_runs_and_resumes(tmp_path):
    out = tmp_path / "thoughts.json"
    config = ct.SCALES["tiny"]
    result = ct.run(config, out, progress=False, scale="tiny")
    assert set(result["accuracy"]) == {f"{a}/3/0" for a in config.arms}
    assert all(len(v) == 3 and all(0 <= a <= 1 for a in v) for v in result["accuracy"].values())
    again = ct.run(config, out, progress=False, scale="tiny")  # nothing left to train: read back
    assert again["accuracy"] == result["accuracy"]
    with pytest.raises(ValueError, match="another configuration"):
        ct.run(ct.ThoughtConfig(lengths=(3,), steps_per_stage=6, d_model=16, n_heads=2, seeds=(0,), n_test=64), out,
               progress=False)


def test_command_line_writes_the_scale(tmp_path):
    out = ct.main(["--scale", "tiny", "--out", str(tmp_path / "t.json"), "--threads", "1"])
    result = ct.load(out)
    assert result["scale"] == "tiny" and result["chance"] == pytest.approx(1 / 6)
    assert set(result["seconds"]) == set(result["accuracy"])


def test_state_gradients_match_finite_differences_through_the_chain_of_thoughts():
    """G[i, p] = ‖∂ loss / ∂X_i[p]‖, with the chain: nudge every coordinate of every state (the nudge
    also changes every thought fed from it) and difference the loss (float64, central differences)."""
    torch.manual_seed(0)
    model = DTransformer(TransformerConfig(vocab_size=s3.THOUGHT_VOCAB, max_len=7, d_model=4, n_layers=2,
                                           n_heads=2)).double()
    g, s = s3.sample(1, 4, torch.Generator().manual_seed(3))
    x = s3.with_thoughts(g, s, 2)
    thoughts = x == s3.THOUGHT

    def answer_loss(logits):
        return F.cross_entropy(logits[:, -1, 6:12], s[:, -1], reduction="sum")

    G = state_gradients(model, x, thoughts, answer_loss)
    # one batch row per nudge: state i, position p, coordinate k, sign ±
    names, (length, d), eps = state_names(model), x.shape[1:] + (model.config.d_model,), 1e-6
    nudges = [(i, p, k, sign) for i in range(len(names)) for p in range(length) for k in range(d) for sign in (1, -1)]
    deltas = zero_deltas(model, len(nudges), length)
    for row, (i, p, k, sign) in enumerate(nudges):
        deltas[names[i]][row, p, k] = sign * eps
    with torch.no_grad():
        logits, _ = think(model, x.expand(len(nudges), -1), thoughts.expand(len(nudges), -1), deltas=deltas)
        losses = F.cross_entropy(logits[:, -1, 6:12], s[:, -1].expand(len(nudges)), reduction="none")
    numeric = ((losses[0::2] - losses[1::2]) / (2 * eps)).reshape(len(names), length, d).norm(dim=-1)
    torch.testing.assert_close(G, numeric, rtol=1e-5, atol=1e-8)
    cut = state_gradients(model, x, thoughts, answer_loss, detach=True)  # without the chain: not the derivative
    assert not torch.allclose(cut, numeric, rtol=1e-3, atol=1e-6)
    assert (G[-1, :-1] > 0).sum() >= 2  # the chain carries gradient from the answer into earlier top states


def test_the_rounds_scales_pair_every_format_at_one_and_two_layers(tmp_path):
    one, two = ct.SCALES["rounds_L1"], ct.SCALES["rounds_L2"]
    assert (one.n_layers, two.n_layers) == (1, 2) and one.lengths == two.lengths == (4, 6, 8)
    assert {k: v for k, v in vars(one).items() if k != "n_layers"} == {k: v for k, v in vars(two).items() if k != "n_layers"}
    assert {"silent", "decoded_pause", "decoded", "written", "curriculum"} == set(one.arms)
    result = ct.run(ct.SCALES["rounds_tiny"], tmp_path / "r.json", progress=False, scale="rounds_tiny")
    assert set(result["accuracy"]) == {f"{a}/3/0" for a in ("silent", "decoded_pause", "decoded")}


def test_the_predicted_reach_counts_rounds():
    assert ct.predicted_reach("silent", 1) == ct.predicted_reach("decoded_pause", 1) == 2
    assert ct.predicted_reach("silent", 2) == ct.predicted_reach("decoded_pause", 2) == 4
    assert ct.predicted_reach("decoded", 1) == ct.predicted_reach("written", 2) == float("inf")
    with pytest.raises(ValueError, match="answer_only"):
        ct.predicted_reach("answer_only", 1)
