"""Continuous thoughts (analysis/thoughts.py): the fed-back state, its consistency and its gradient edge."""

import pytest
import torch

from mini_transformer import DTransformer, TransformerConfig
from mini_transformer.analysis.thoughts import think, thought_mask
from mini_transformer.hooks import hooked


def model_of(mask_kind="causal", n_layers=2):
    torch.manual_seed(0)
    return DTransformer(TransformerConfig(vocab_size=7, max_len=12, d_model=16, n_layers=n_layers, n_heads=2,
                                          mask_kind=mask_kind)).double()


THOUGHT = 6  # the placeholder token


def batch():
    x = torch.tensor([[1, 2, THOUGHT, 3, THOUGHT, THOUGHT, 4], [2, 0, THOUGHT, 5, THOUGHT, THOUGHT, 1]])
    return x, thought_mask(x, THOUGHT)


def test_no_thoughts_is_the_plain_model():
    model = model_of()
    x = torch.tensor([[1, 2, 3, 4]])
    logits, fed = think(model, x, torch.zeros_like(x, dtype=torch.bool))
    assert torch.equal(logits, model(x)) and fed.shape == (1, 0, 16)


def test_every_thought_is_the_final_pass_state_before_it():
    model = model_of()
    x, thoughts = batch()
    logits, fed = think(model, x, thoughts)
    top = {}
    positions = thoughts[0].nonzero().flatten().tolist()
    # rerun once with the thoughts fixed: causality means the pass reproduces them
    embed = model.embedding.position(x.shape[1])

    def fix(X0):
        X0 = X0.clone()
        for j, p in enumerate(positions):
            X0[:, p] = fed[:, j] + embed[p]
        return X0

    with hooked(model, {"X0": fix, "L2.mlp": lambda X: top.setdefault("X", X)}):
        again = model(x)
    torch.testing.assert_close(again, logits, rtol=0, atol=1e-12)
    for j, p in enumerate(positions):
        torch.testing.assert_close(fed[:, j], model.final_ln(top["X"][:, p - 1]), rtol=0, atol=1e-12)
    # the placeholder token's own embedding plays no part
    y = x.clone()
    y[thoughts] = 0
    torch.testing.assert_close(think(model, y, thoughts)[0], logits, rtol=0, atol=1e-12)




def test_gradient_reaches_the_position_before_a_thought_only_through_the_feedback():
    model = model_of(mask_kind="self", n_layers=1)
    x = torch.tensor([[1, 2, THOUGHT]])
    thoughts = thought_mask(x, THOUGHT)
    norms = {}
    for detach in (False, True):
        model.zero_grad()
        logits, _ = think(model, x, thoughts, detach=detach)
        torch.nn.functional.cross_entropy(logits[:, 2], torch.tensor([3])).backward()
        norms[detach] = model.embedding.token.weight.grad[2].norm().item()  # token 2 sits only at position 1
    assert norms[True] == 0.0 and norms[False] > 1e-6


def test_bad_inputs_are_named():
    model = model_of()
    x, thoughts = batch()
    with pytest.raises(TypeError, match="DTransformer"):
        think(torch.nn.Linear(2, 2), x, thoughts)
    with pytest.raises(ValueError, match="bool tensor"):
        think(model, x, thoughts.long())
    with pytest.raises(ValueError, match="same positions"):
        uneven = thoughts.clone()
        uneven[1, 3] = True
        think(model, x, uneven)
    first = torch.zeros_like(thoughts)
    first[:, 0] = True
    with pytest.raises(ValueError, match="position 0"):
        think(model, x, first)
