"""The graph of states: path lengths, path counts, and cones checked against autograd."""

import pytest
import torch

import mini_transformer as mt
from conftest import small_config
from mini_transformer.analysis.paths import StateGraph, measured_cone


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_longest_path_is_two_per_layer_whatever_the_length(n_layers):
    lengths = [1, 2, 5, 17]
    assert [StateGraph(n_layers, n).longest_path() for n in lengths] == [2 * n_layers] * len(lengths)


def test_number_of_paths_grows_with_length():
    totals = [StateGraph(2, n).total_paths() for n in (1, 2, 4, 8, 16)]
    assert totals == sorted(totals) and totals[0] == 1 and totals[-1] > 100 * totals[1]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_written_tokens_make_the_longest_path_grow_with_length(n_layers):
    for n in (1, 2, 5, 9):
        assert StateGraph(n_layers, n, written=True).longest_path() == 2 * n_layers * n + n - 1


def test_written_token_edge():
    graph = StateGraph(1, 3, written=True)
    assert graph.parents(0, 0) == [] and graph.parents(0, 2) == [(2, 1)]
    # the input at 2 now depends on everything before it, through the token written at 1
    assert (1, 0) in graph.cone(0, 2) and (2, 1) in graph.cone(0, 2)
    assert graph.n_paths(0, 2) > StateGraph(1, 3).n_paths(0, 2)
    with pytest.raises(TypeError, match="written"):
        StateGraph(1, 3, written=1)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_written_positions_interleaved_longest_path(n_layers):
    # g1 s1 g2 s2 … g_n s_n: only the s positions (odd) are written; g_j's position is a plain input
    for n in (1, 2, 5, 16):
        graph = StateGraph(n_layers, 2 * n, written=True, written_positions=range(1, 2 * n, 2))
        assert graph.longest_path() == n * (2 * n_layers + 1) + 2 * n_layers
        assert graph.longest_path() < StateGraph(n_layers, 2 * n, written=True).longest_path() or n == 1
    assert StateGraph(1, 32, written=True, written_positions=range(1, 32, 2)).longest_path() == 50


def test_written_positions_edges_and_default():
    graph = StateGraph(1, 4, written=True, written_positions=[1, 3])
    assert graph.parents(0, 1) == [(2, 0)] and graph.parents(0, 3) == [(2, 2)]
    assert graph.parents(0, 2) == [] and graph.parents(0, 0) == []  # a given token: no sampling edge
    assert graph.written_positions == frozenset({1, 3})
    # every position after the first is the default, the old behaviour
    everywhere = StateGraph(2, 5, written=True, written_positions=range(1, 5))
    assert everywhere.edges() == StateGraph(2, 5, written=True).edges()
    assert everywhere.longest_path() == StateGraph(2, 5, written=True).longest_path()
    # no written position: the silent graph
    assert StateGraph(2, 5, written=True, written_positions=()).edges() == StateGraph(2, 5).edges()


def test_written_positions_bad_input_raises():
    with pytest.raises(ValueError, match="written_positions needs written=True"):
        StateGraph(1, 4, written_positions=[1])
    with pytest.raises(ValueError, match="written_positions"):
        StateGraph(1, 4, written=True, written_positions=[0])
    with pytest.raises(ValueError, match="written_positions"):
        StateGraph(1, 4, written=True, written_positions=[4])
    with pytest.raises(TypeError, match="written_positions"):
        StateGraph(1, 4, written=True, written_positions=3)
    with pytest.raises(TypeError, match="written_positions"):
        StateGraph(1, 4, written=True, written_positions=[1.0])


def test_path_counts_by_hand_for_one_layer():
    graph = StateGraph(1, 3)
    # one attention step: exactly one path from every s ≤ t, none from s > t
    assert [[graph.n_paths(s, t) for t in range(3)] for s in range(3)] == [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
    # two layers: paths from s to t are the positions r with s ≤ r ≤ t that the first attention can stop at
    two = StateGraph(2, 4)
    assert two.n_paths(0, 3) == 4 and two.n_paths(2, 3) == 2 and two.n_paths(3, 3) == 1


def test_cone_shape():
    graph = StateGraph(2, 6)
    cone = graph.cone(4, 3)  # the output at position 3
    assert all(s <= 3 for _, s in cone)
    assert (0, 0) in cone and (3, 3) in cone and (3, 2) not in cone  # an MLP update is position-wise
    assert graph.cone(2, 2) == {(2, 2), (1, 2), (0, 0), (0, 1), (0, 2)}


def test_bad_nodes_raise():
    graph = StateGraph(2, 4)
    with pytest.raises(ValueError, match="state index"):
        graph.cone(5, 0)
    with pytest.raises(ValueError, match="position"):
        graph.parents(1, 4)
    with pytest.raises(ValueError, match="n_layers"):
        StateGraph(0, 3)


@pytest.mark.parametrize("i, t", [(4, 5), (3, 2), (2, 4), (1, 0), (6, 6)])
def test_predicted_cone_equals_the_states_with_a_nonzero_jacobian(i, t):
    torch.manual_seed(0)
    model = mt.DTransformer(small_config(n_layers=3)).double()
    x = torch.randint(0, 11, (2, 8))
    J = measured_cone(model, x, i, t)
    measured = {(a, s) for a in range(J.shape[0]) for s in range(J.shape[1]) if J[a, s] > 0}
    assert measured == StateGraph(3, 8).cone(i, t)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_paths_by_blocks_is_veits_binomial_for_one_position_and_ends_with_the_trajectories(n_layers):
    from math import comb

    assert StateGraph(n_layers, 1).paths_by_blocks() == [comb(2 * n_layers, j) for j in range(2 * n_layers + 1)]
    for length in (2, 5, 9):
        graph = StateGraph(n_layers, length)
        counts = graph.paths_by_blocks()
        assert len(counts) == 2 * n_layers + 1  # never more than 2L blocks, whatever the length
        assert counts[0] == length  # the all-identity path of each position
        assert counts[-1] == graph.total_paths()  # through every block: the position trajectories
    with pytest.raises(ValueError, match="written"):
        StateGraph(n_layers, 3, written=True).paths_by_blocks()
