"""Myopic training, proved by test: the myopic gradient equals its definition Σ_t ∂ℓ_t/∂θ_t,
computed by brute force with one parameter copy per position."""

import math

import pytest
import torch
import torch.nn.functional as F

import mini_transformer as mt
from conftest import randomize_, small_config
from mini_transformer.algorithms import layer_norm
from mini_transformer.myopia import cosine, gradient_decomposition, myopic, parameter_gradients, set_myopia


def untied_position_losses(model, x, copies):
    """Run a DTransformer position by position, where position t computes with its own parameter
    copy ``copies[t]`` (a dict name → tensor): its embedding, layer norms, query, the key and value
    maps it applies to the states it reads (those states come from their own copies), MLP, final
    norm and unembedding. Returns the losses ℓ_0 … ℓ_{ℓ−2} of one sequence ``x (ℓ,)``."""
    cfg = model.config
    eps, H, dh, n = cfg.layer_norm_eps, cfg.n_heads, cfg.d_head, len(x)
    P = copies
    X = [P[t]["embedding.token.weight"][x[t]] + P[t]["embedding.position.weight"][t] for t in range(n)]
    for l in range(cfg.n_layers):
        pre = f"layers.{l}."
        read = [layer_norm(X[s], P[s][pre + "ln_attn.gamma"], P[s][pre + "ln_attn.beta"], eps) for s in range(n)]
        updated = []
        for t in range(n):
            p = {k[len(pre):]: v for k, v in P[t].items() if k.startswith(pre)}
            q = torch.einsum("hed,d->he", p["attn.W_q"], read[t]) + p["attn.b_q"]
            past = torch.stack(read[: t + 1])  # states 0…t, each normalised by its own copy
            k = torch.einsum("hed,sd->she", p["attn.W_k"], past) + p["attn.b_k"]  # t's key map
            v = torch.einsum("hed,sd->she", p["attn.W_v"], past) + p["attn.b_v"]  # t's value map
            a = torch.softmax((k * q).sum(-1) / math.sqrt(dh), dim=0)  # (s, h)
            y = (a[..., None] * v).sum(0).reshape(H * dh)
            updated.append(X[t] + p["attn.W_o"] @ y + p["attn.b_o"])
        X = []
        for t in range(n):
            p = {k[len(pre):]: v for k, v in P[t].items() if k.startswith(pre)}
            h = layer_norm(updated[t], p["ln_mlp.gamma"], p["ln_mlp.beta"], eps)
            hidden = F.gelu(p["mlp.W_mlp1"] @ h + p["mlp.b_mlp1"])
            X.append(updated[t] + p["mlp.W_mlp2"] @ hidden + p["mlp.b_mlp2"])
    losses = []
    for t in range(n - 1):
        final = layer_norm(X[t], P[t]["final_ln.gamma"], P[t]["final_ln.beta"], eps)
        logits = P[t]["unembedding.W_u"] @ final
        losses.append(-logits.log_softmax(-1)[x[t + 1]])
    return losses


def brute_force_gradients(model, x):
    """Σ_t ∂ℓ_t/∂θ_t (myopic) and Σ_t Σ_s ∂ℓ_t/∂θ_s (vanilla), of the mean loss over positions."""
    names = [name for name, _ in model.named_parameters()]
    n = len(x)
    copies = [{name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()} for _ in range(n)]
    losses = untied_position_losses(model, x, copies)
    scale = 1.0 / len(losses)
    myopic_grad = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for t, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, [copies[t][name] for name in names], retain_graph=True)
        for name, g in zip(names, grads):
            myopic_grad[name] += scale * g
    total = sum(losses) * scale
    all_copies = [copies[t][name] for t in range(n) for name in names]
    grads = torch.autograd.grad(total, all_copies, allow_unused=True)  # the last position's copy is unused
    vanilla_grad = {name: sum(grads[t * len(names) + i] for t in range(n) if grads[t * len(names) + i] is not None)
                    for i, name in enumerate(names)}
    return [myopic_grad[n_] for n_ in names], [vanilla_grad[n_] for n_ in names]


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
    vanilla_logits, vanilla_trace = model(x, return_trace=True)
    with myopic(model, beta=0.0):
        logits, trace = model(x, return_trace=True)
    assert torch.equal(logits, vanilla_logits)
    for a, b in zip(trace.patterns, vanilla_trace.patterns):
        assert torch.equal(a, b)


def test_myopic_states_get_no_gradient_from_later_losses(setting):
    from mini_transformer.gradflow import gradient_flow

    model, x = setting
    with myopic(model):
        flow = gradient_flow(model, x)
    assert torch.all(flow.future_share() == 0)


def test_transformer_bigram_sees_only_the_current_token():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config())
    x = torch.randint(0, 11, (1, 8))
    changed = x.clone()
    changed[0, :4] = (changed[0, :4] + 3) % 11
    with myopic(model, zero_past=True):
        a, b = model(x), model(changed)
    torch.testing.assert_close(a[0, 4:], b[0, 4:], atol=1e-6, rtol=0)  # the past tokens don't matter...
    assert not torch.allclose(model(x)[0, 4:], model(changed)[0, 4:])  # ...but do in the real model


def test_context_manager_restores_vanilla_and_set_myopia_validates(setting):
    model, x = setting
    with myopic(model, beta=0.3):
        assert model.layers[0].attn.past_gradient == 0.3
    assert model.layers[0].attn.past_gradient == 1.0
    with pytest.raises(ValueError, match="beta"):
        set_myopia(model, beta=1.5)
    assert cosine(parameter_gradients(model, mean_loss, x), parameter_gradients(model, mean_loss, x)) == pytest.approx(1.0)
