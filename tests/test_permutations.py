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


def test_composition_table_of_a5_and_running_products_with_a_table():
    assert P.A5_COMPOSE.shape == (60, 60)
    assert all(sum(p[i] > p[j] for i in range(5) for j in range(i + 1, 5)) % 2 == 0 for p in P.A5_ELEMENTS)
    g = torch.tensor([[5, 17, 42, 3]])
    s = P.running_products(g, P.A5_COMPOSE)
    expected = [5]
    for x in g[0, 1:].tolist():
        expected.append(int(P.A5_COMPOSE[x, expected[-1]]))
    assert s[0].tolist() == expected
    with pytest.raises(ValueError, match="table"):
        P.running_products(g, torch.zeros(60, 59, dtype=torch.long))
    with pytest.raises(ValueError, match="g"):
        P.running_products(torch.tensor([[60]]), P.A5_COMPOSE)


def test_filler_format_has_the_written_positions_and_no_content():
    g, s = P.sample(4, 5, torch.Generator().manual_seed(0))
    x = P.with_fillers(g)
    assert x.shape == (4, 10) and torch.equal(x[:, 0::2], g) and (x[:, 1::2] == P.FILLER).all()
    assert P.interleave(g, s).shape == x.shape
    x_batch, s_batch = next(P.filler_batches(3, 5, seed=1))
    assert x_batch.shape == (3, 10) and torch.equal(P.running_products(x_batch[:, 0::2]), s_batch)


def test_filler_loss_and_accuracy_score_the_filler_positions():
    torch.manual_seed(0)
    model = mt.DTransformer(mt.TransformerConfig(vocab_size=P.FILLER_VOCAB, max_len=12, d_model=16, n_layers=1,
                                                 n_heads=2))
    g, s = P.sample(8, 6, torch.Generator().manual_seed(2))
    loss = P.filler_loss(model, P.with_fillers(g), s)
    logits = model(P.with_fillers(g))[:, 1::2, :P.ORDER]
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, P.ORDER), s.reshape(-1)))
    accuracy = P.filler_accuracy(model, g, s)
    assert accuracy.shape == (6,)
    assert torch.allclose(accuracy, (logits.argmax(-1) == s).float().mean(0))
    with pytest.raises(ValueError, match="g"):
        P.with_fillers(torch.tensor([[P.FILLER]]))
