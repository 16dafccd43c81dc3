"""Myopic training, proved by test: the myopic gradient equals its definition Σ_t ∂ℓ_t/∂θ_t,
computed by brute force with one parameter copy per position."""

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config
from mini_transformer.analysis.untied import brute_force_gradients
from mini_transformer.analysis.myopia import (cosine, gradient_decomposition, myopia_beta, myopic,
                                              parameter_gradients, set_myopia)


def mean_loss(model, x):
    return mt.next_token_loss(model(x), x)


@pytest.fixture
def setting():
    torch.manual_seed(0)
    cfg = small_config(vocab_size=7, max_len=6, d_model=8, n_layers=2, n_heads=2, d_mlp=12)
    model = randomize_(mt.DTransformer(cfg).double(), scale=0.4)
    x = torch.randint(0, 7, (1, 6))
    return model, x


def test_myopic_gradient_equals_its_brute_force_definition(setting):
    model, x = setting
    bf_myopic, bf_vanilla = brute_force_gradients(model, x[0])
    parts = gradient_decomposition(model, mean_loss, x)
    for ours, ref in zip(parts["myopic"], bf_myopic):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-9)
    for ours, ref in zip(parts["vanilla"], bf_vanilla):  # the untied model is the same model
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-9)
    gap = max((a - b).abs().max().item() for a, b in zip(parts["vanilla"], parts["myopic"]))
    assert gap > 1e-3  # the two gradients really differ


def test_vanilla_is_myopic_plus_off_diagonal_and_beta_one_is_vanilla(setting):
    model, x = setting
    parts = gradient_decomposition(model, mean_loss, x)
    one = parameter_gradients(model, mean_loss, x, beta=1.0)
    for v, m, o, b1 in zip(parts["vanilla"], parts["myopic"], parts["off_diagonal"], one):
        torch.testing.assert_close(v, m + o, atol=1e-15, rtol=1e-12)  # float rounding of (v − m) + m
        torch.testing.assert_close(b1, v, atol=0, rtol=0)


def test_beta_scales_each_crossing_between_positions():
    """β multiplies the gradient at every read of another position's state, so a path that crosses
    positions k times is scaled by β^k: with one layer the gradient is linear in β, with two layers
    a polynomial of degree 2 (fitted at β = 0, 1/4, 1, it predicts β = 1/2)."""
    torch.manual_seed(1)
    x = torch.randint(0, 7, (2, 6))
    for n_layers in (1, 2):
        cfg = small_config(vocab_size=7, max_len=6, d_model=8, n_layers=n_layers, n_heads=2, d_mlp=12)
        model = randomize_(mt.DTransformer(cfg).double(), scale=0.4)
        g = {b: mt.myopia.flat(parameter_gradients(model, mean_loss, x, beta=b)) for b in (0.0, 0.25, 0.5, 1.0)}
        if n_layers == 1:
            predicted = g[0.0] + 0.5 * (g[1.0] - g[0.0])
        else:
            d1, dq = g[1.0] - g[0.0], g[0.25] - g[0.0]
            b = (d1 - 4 * dq) * 4 / 3
            a = d1 - b
            predicted = g[0.0] + a / 2 + b / 4
            assert (b.abs().max() > 1e-4), "two-hop paths should contribute"
        torch.testing.assert_close(g[0.5], predicted, atol=1e-12, rtol=1e-9)


def test_myopic_forward_pass_is_identical(setting):
    model, x = setting
    vanilla_logits, vanilla_trace = mt.trace(model, x)
    with myopic(model, beta=0.0):
        logits, trace = mt.trace(model, x)
    assert torch.equal(logits, vanilla_logits)
    for a, b in zip(trace.patterns, vanilla_trace.patterns):
        assert torch.equal(a, b)


def test_myopic_states_get_no_gradient_from_later_losses(setting):
    from mini_transformer.analysis.gradflow import gradient_flow

    model, x = setting
    with myopic(model):
        flow = gradient_flow(model, x)
    assert torch.all(flow.future_share() == 0)


def test_transformer_bigram_sees_only_the_current_token():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config())
    bigram = mt.DTransformer(small_config(zero_past=True))
    bigram.load_state_dict(model.state_dict())  # the same weights
    x = torch.randint(0, 11, (1, 8))
    changed = x.clone()
    changed[0, :4] = (changed[0, :4] + 3) % 11
    a, b = bigram(x), bigram(changed)
    torch.testing.assert_close(a[0, 4:], b[0, 4:], atol=1e-6, rtol=0)  # the past tokens don't matter...
    assert not torch.allclose(model(x)[0, 4:], model(changed)[0, 4:])  # ...but do in the real model


def test_context_manager_restores_vanilla_and_set_myopia_validates(setting):
    model, x = setting
    with myopic(model, beta=0.3):
        assert myopia_beta(model) == 0.3
    assert myopia_beta(model) == 1.0 and model.layers[0].attn.kernel is None
    with pytest.raises(TypeError, match="DTransformer"):
        set_myopia(mt.ETransformer(small_config()), beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        set_myopia(model, beta=1.5)
    assert cosine(parameter_gradients(model, mean_loss, x), parameter_gradients(model, mean_loss, x)) == pytest.approx(1.0)
