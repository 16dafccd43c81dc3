"""The S3 word problem: group structure, labels, both formats, and the written-steps loop."""

import itertools

import pytest
import torch

import mini_transformer as mt
from mini_transformer.tasks import permutations as P


def test_composition_table_is_the_group_s3():
    identity = P.ELEMENTS.index((0, 1, 2))
    assert identity == 0
    for a, b, c in itertools.product(range(6), repeat=3):  # associativity
        assert P.COMPOSE[P.COMPOSE[a, b], c] == P.COMPOSE[a, P.COMPOSE[b, c]]
    assert all(P.COMPOSE[0, a] == a == P.COMPOSE[a, 0] for a in range(6))
    assert all(sorted(P.COMPOSE[a].tolist()) == list(range(6)) for a in range(6))  # Latin square
    assert not torch.equal(P.COMPOSE, P.COMPOSE.T)  # not commutative: order matters


def test_running_products_apply_each_new_element_last():
    g = torch.tensor([[1, 3, 4, 2]])
    s = P.running_products(g)
    state = (0, 1, 2)
    for t in range(4):
        perm = P.ELEMENTS[g[0, t]]
        state = tuple(perm[state[i]] for i in range(3))
        assert P.ELEMENTS[s[0, t]] == state


def test_formats_and_teacher_forced_loss():
    g, s = P.sample(3, 5, torch.Generator().manual_seed(0))
    x = P.interleave(g, s)
    assert x.shape == (3, 10) and torch.equal(x[:, 0::2], g) and torch.equal(x[:, 1::2], s + 6)
    (batch,) = next(P.written_batches(4, 5))
    assert batch.shape == (4, 10) and batch.max() < P.WRITTEN_VOCAB


def test_write_and_read_never_sees_the_answers():
    """A model that copies the previous token's id +6 would be right only by accident; the loop
    must feed the model's own tokens, so an oracle built from g alone is needed to score 100 %."""

    class Oracle(torch.nn.Module):
        config = mt.TransformerConfig(vocab_size=12, max_len=32, d_model=4, n_layers=1, n_heads=1)

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):  # recompute the product from the g tokens only (even positions)
            s = P.running_products(x[:, 0::2])
            logits = torch.full((*x.shape, 12), -1e9)
            logits[:, 0::2].scatter_(-1, (s + 6)[..., None], 0.0)
            return logits

    g, s = P.sample(5, 7, torch.Generator().manual_seed(1))
    assert torch.equal(P.write_and_read(Oracle(), g), s)
    assert P.written_accuracy(Oracle(), g, s).tolist() == [1.0] * 7


def test_one_layer_learns_a_short_product_silently():
    torch.manual_seed(0)
    model = mt.DTransformer(mt.TransformerConfig(vocab_size=6, max_len=4, d_model=32, n_layers=1, n_heads=2))
    mt.train(model, P.silent_loss, P.silent_batches(64, 4), 300, lr=3e-3, progress=False)
    g, s = P.sample(500, 4, torch.Generator().manual_seed(2))
    accuracy = P.silent_accuracy(model, g, s)
    assert accuracy[0] > 0.95 and accuracy[1] > 0.9  # one or two elements: one attention step


def test_bad_input():
    with pytest.raises(ValueError, match="g holds token id 6"):
        P.running_products(torch.tensor([[6]]))
    with pytest.raises(ValueError, match="length"):
        P.sample(2, 0)
