"""The compiled (hand-set) DTransformers of chapter 4: the Hillis–Steele scan for any finite group and
the two-layer S3 shortcut are exact where the construction says, and fail where it says."""

import itertools

import pytest
import torch

from mini_transformer.analysis import compiled as C
from mini_transformer.models import DTransformer
from mini_transformer.tasks import permutations as P


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: many tiny float64 products


def first_wrong(accuracy: torch.Tensor) -> int:
    """The largest k such that every k' ≤ k is right on every sequence (len if all are)."""
    wrong = (accuracy < 1).nonzero()
    return int(wrong[0]) if len(wrong) else len(accuracy)


def test_a5_table_is_the_alternating_group():
    T = P.A5_COMPOSE
    assert T.shape == (60, 60) and len(set(P.A5_ELEMENTS)) == 60
    assert all(sorted(row.tolist()) == list(range(60)) for row in T)
    a, b, c = torch.randint(0, 60, (3, 500), generator=torch.Generator().manual_seed(0))
    assert torch.equal(T[T[a, b], c], T[a, T[b, c]])  # associative
    assert C.identity_of(T) == 0 and not torch.equal(T, T.T)


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4, 5])
def test_scan_s3_is_exact_up_to_two_to_the_L_and_wrong_after(n_layers):
    model = C.compile_scan(P.COMPOSE, n_layers, max_len=33)
    assert isinstance(model, DTransformer) and model.config.n_layers == n_layers
    g, s = P.sample(600, 32, torch.Generator().manual_seed(n_layers))
    accuracy = (C.scan_products(model, g) == s).float().mean(0)
    horizon = 2 ** n_layers
    assert first_wrong(accuracy) == min(horizon, 32)
    if horizon < 32:  # beyond 2^L it is right only when the elements before the window multiply to e
        assert accuracy[horizon:].max() < 0.3


def test_scan_exhaustive_for_short_sequences():
    model = C.compile_scan(P.COMPOSE, 2, max_len=6)
    g = torch.tensor(list(itertools.product(range(6), repeat=5)))  # all 7776 sequences of length 5
    s = P.running_products(g)
    right = C.scan_products(model, g, chunk=2000) == s
    assert right[:, :4].all()  # k ≤ 2^2 exact on every input
    assert not right[:, 4].all()


def test_scan_a5_staircase():
    g, s = P.sample(40, 16, torch.Generator().manual_seed(1), table=P.A5_COMPOSE)
    for n_layers in (2, 3):
        accuracy = (C.scan_products(C.compile_scan(P.A5_COMPOSE, n_layers, 17), g) == s).float().mean(0)
        assert first_wrong(accuracy) == 2 ** n_layers
        assert accuracy[2 ** n_layers:].mean() < 0.1


def test_scan_reads_the_position_two_to_the_l_minus_one_back():
    reads = C.scan_reads(C.compile_scan(P.COMPOSE, 3, max_len=12), 12)
    assert reads == [[max(t - 2 ** (l - 1), 0) for t in range(12)] for l in (1, 2, 3)]


def test_scan_layer_norm_is_a_fixed_scaling():
    """The design makes layer norm's mean exactly zero and its variance 2C²/d_e up to ε."""
    from mini_transformer.models import trace

    model = C.compile_scan(P.COMPOSE, 2, max_len=9)
    g, _ = P.sample(20, 8, torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, states = trace(model, C.scan_input(g, 6))
    for X in states.states:
        assert X.mean(-1).abs().max() < 1e-4
        variance = X.var(-1, unbiased=False)
        nominal = 2 * C.BIG ** 2 / model.config.d_model
        assert ((variance / nominal) - 1).abs().max() < 1e-4


def test_shortcut_two_layers_exhaustive_for_short_sequences():
    model = C.compile_s3_shortcut(P.COMPOSE, max_len=64)
    assert model.config.n_layers == 2
    for k in (1, 2, 3, 4, 5):
        g = torch.tensor(list(itertools.product(range(6), repeat=k)))
        assert torch.equal(C.predict(model, g, chunk=2000), P.running_products(g)), k


def test_shortcut_exact_at_every_length_up_to_64():
    model = C.compile_s3_shortcut(P.COMPOSE, max_len=64)
    g, s = P.sample(500, 64, torch.Generator().manual_seed(3))
    # the extremes of the counts the MLPs decode: constant sequences of every element
    g = torch.cat([g, torch.arange(6)[:, None].expand(6, 64)])
    s = P.running_products(g)
    assert torch.equal(C.predict(model, g, chunk=100), s)
    with torch.no_grad():
        logits = model(g[:50])
    top2 = logits.topk(2, dim=-1).values
    assert (top2[..., 0] - top2[..., 1]).min() > 0.9 * C.READOUT  # a margin, not a tie


def test_shortcut_decomposition_matches_the_group():
    a, b = C.s3_decomposition(P.COMPOSE)
    assert sorted(zip(a, b)) == [(x, y) for x in range(3) for y in range(2)]
    # the sign of g = r^a f^b is (−1)^b
    assert all(P.SIGN[g] == (-1) ** b[g] for g in range(6))


def test_shortcut_beyond_max_len_is_refused():
    model = C.compile_s3_shortcut(P.COMPOSE, max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="table"):
        C.compile_scan(torch.zeros(3, 4, dtype=torch.long), 2, 8)
    with pytest.raises(ValueError, match="table"):
        C.compile_scan(torch.zeros(3, 3, dtype=torch.long), 2, 8)  # rows are not permutations
    with pytest.raises(ValueError, match="table"):
        C.compile_scan(P.COMPOSE.float(), 2, 8)
    with pytest.raises(ValueError, match="n_layers"):
        C.compile_scan(P.COMPOSE, 0, 8)
    with pytest.raises(ValueError, match="S3"):
        C.compile_s3_shortcut(P.A5_COMPOSE, 8)
    abelian = torch.tensor([[(a + b) % 6 for b in range(6)] for a in range(6)])
    with pytest.raises(ValueError, match="S3"):
        C.compile_s3_shortcut(abelian, 8)
    with pytest.raises(ValueError, match="g"):
        C.scan_input(torch.tensor([[6]]), 6)
    with pytest.raises(ValueError, match="closed"):
        P.composition_table([(0, 1, 2), (1, 2, 0)])
