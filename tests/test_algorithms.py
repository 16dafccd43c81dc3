"""Algorithms 1–7 against PyTorch's own operations, in float64."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import mini_transformer as mt
from mini_transformer.reference import copy_mhattention

TOL = dict(atol=1e-6, rtol=1e-6)


@pytest.fixture(autouse=True)
def _float64():
    """Every comparison in this file runs in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def qkv_weights(d_in, d_attn, d_out, d_z=None):
    d_z = d_in if d_z is None else d_z
    return (torch.randn(d_attn, d_in), torch.randn(1, d_attn), torch.randn(d_attn, d_z), torch.randn(1, d_attn),
            torch.randn(d_out, d_z), torch.randn(1, d_out))


def test_token_embedding_is_a_column_lookup():
    emb = mt.TokenEmbedding(7, 5)
    x = torch.tensor([[0, 3, 6, 3]])
    assert torch.equal(emb(x), F.embedding(x, emb.weight))
    assert torch.equal(emb(x)[0, 1], emb.weight[3])  # Alg. 1: e = W_e[:, v]


def test_sinusoidal_positions_follow_the_paper_formula():
    table = mt.sinusoidal_positions(max_len=10, d_model=6)
    # paper, 1-based: W_p[2i−1, t] = sin(t / ℓ_max^{2i/d_e}), W_p[2i, t] = cos(…)
    t, i = 4, 2
    assert table[t - 1, 2 * i - 2] == pytest.approx(math.sin(t / 10 ** (2 * i / 6)), abs=1e-6)
    assert table[t - 1, 2 * i - 1] == pytest.approx(math.cos(t / 10 ** (2 * i / 6)), abs=1e-6)
    emb = mt.PositionalEmbedding(10, 6, kind="sinusoidal")
    assert not list(emb.parameters())  # fixed, not trained
    assert torch.equal(emb(3), emb.weight[:3])


def test_single_query_attention_equals_sdpa():
    d_in, d_attn, d_out, ell = 6, 4, 5, 9
    W_q, b_q, W_k, b_k, W_v, b_v = qkv_weights(d_in, d_attn, d_out)
    e, context = torch.randn(d_in), torch.randn(ell, d_in)
    ours = mt.single_query_attention(e, context, W_q, b_q[0], W_k, b_k[0], W_v, b_v[0])
    q, k, v = W_q @ e + b_q[0], context @ W_k.T + b_k, context @ W_v.T + b_v
    ref = F.scaled_dot_product_attention(q[None, None], k[None], v[None])[0, 0]
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("kind", ["bidirectional", "causal"])
def test_attention_equals_sdpa(kind):
    batch, ell, d_x, d_attn, d_out = 3, 7, 6, 4, 5
    W_q, b_q, W_k, b_k, W_v, b_v = qkv_weights(d_x, d_attn, d_out)
    X = torch.randn(batch, ell, d_x)
    out, A = mt.attention(X, X, W_q, b_q, W_k, b_k, W_v, b_v, mt.attention_mask(kind, ell))
    ref = F.scaled_dot_product_attention(X @ W_q.T + b_q, X @ W_k.T + b_k, X @ W_v.T + b_v,
                                         is_causal=(kind == "causal"))
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(A.sum(-1), torch.ones(batch, ell), **TOL)


def test_cross_attention_equals_sdpa():
    batch, ell_x, ell_z, d_x, d_z, d_attn, d_out = 2, 5, 8, 6, 3, 4, 7
    W_q, b_q, W_k, b_k, W_v, b_v = qkv_weights(d_x, d_attn, d_out, d_z=d_z)
    X, Z = torch.randn(batch, ell_x, d_x), torch.randn(batch, ell_z, d_z)
    mask = mt.attention_mask("bidirectional", ell_x, ell_z)
    out, A = mt.attention(X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask)
    ref = F.scaled_dot_product_attention(X @ W_q.T + b_q, Z @ W_k.T + b_k, Z @ W_v.T + b_v)
    assert A.shape == (batch, ell_x, ell_z)
    torch.testing.assert_close(out, ref, **TOL)


@pytest.mark.parametrize("kind", ["bidirectional", "causal"])
def test_mhattention_equals_torch_multihead_attention(kind):
    E, H, ell, batch = 12, 3, 6, 2
    ours = mt.MHAttention(E, H, E // H)
    for p in ours.parameters():
        torch.nn.init.normal_(p)
    ref = nn.MultiheadAttention(E, H, batch_first=True)
    copy_mhattention(ours, ref)
    X = torch.randn(batch, ell, E)
    mask = mt.attention_mask(kind, ell)
    out, A = ours(X, mask=mask)
    ref_out, ref_A = ref(X, X, X, attn_mask=~mask, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(A, ref_A, **TOL)


def test_mhattention_cross_attention_equals_torch():
    E, H, batch = 8, 2, 3
    ours = mt.MHAttention(E, H, E // H)
    for p in ours.parameters():
        torch.nn.init.normal_(p)
    ref = nn.MultiheadAttention(E, H, batch_first=True)
    copy_mhattention(ours, ref)
    X, Z = torch.randn(batch, 4, E), torch.randn(batch, 9, E)
    out, _ = ours(X, Z, mask=mt.attention_mask("bidirectional", 4, 9))
    torch.testing.assert_close(out, ref(X, Z, Z, need_weights=False)[0], **TOL)


def test_layer_norm_equals_torch_layer_norm():
    d = 10
    ours = mt.LayerNorm(d)
    ref = nn.LayerNorm(d)
    with torch.no_grad():
        for p, q in ((ours.gamma, ref.weight), (ours.beta, ref.bias)):
            p.normal_()
            q.copy_(p)
    X = torch.randn(4, 5, d) * 3 + 1
    torch.testing.assert_close(ours(X), ref(X), **TOL)


def test_layer_norm_without_eps_is_the_paper_formula():
    e = torch.randn(9)
    gamma, beta = torch.randn(9), torch.randn(9)
    expected = (e - e.mean()) / e.var(unbiased=False).sqrt() * gamma + beta
    torch.testing.assert_close(mt.layer_norm(e, gamma, beta, eps=0.0), expected, **TOL)


def test_unembedding_equals_softmax_of_linear():
    W_u, e = torch.randn(13, 6), torch.randn(4, 6)
    torch.testing.assert_close(mt.unembedding(e, W_u), F.softmax(F.linear(e, W_u), dim=-1), **TOL)
    module = mt.Unembedding(6, 13)
    torch.testing.assert_close(module(e).softmax(-1), mt.unembedding(e, module.W_u), **TOL)


def test_gradcheck_attention():
    W = [w.requires_grad_() for w in qkv_weights(4, 3, 4)]
    X = torch.randn(2, 5, 4, requires_grad=True)
    mask = mt.attention_mask("causal", 5)
    assert torch.autograd.gradcheck(lambda X, *W: mt.attention(X, X, *W, mask)[0], (X, *W))


def test_gradcheck_mhattention():
    mha = mt.MHAttention(6, 2, 3)
    X = torch.randn(2, 4, 6, requires_grad=True)
    mask = mt.attention_mask("causal", 4)
    assert torch.autograd.gradcheck(lambda X: mha(X, mask=mask)[0], (X,))


def test_gradcheck_layer_norm():
    e = torch.randn(3, 7, requires_grad=True)
    gamma, beta = torch.randn(7, requires_grad=True), torch.randn(7, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: mt.layer_norm(*a), (e, gamma, beta))


@settings(max_examples=30, deadline=None)
@given(ell=st.integers(1, 12), d=st.integers(1, 6), batch=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_causal_attention_pattern_is_a_lower_triangular_distribution(ell, d, batch, seed):
    torch.manual_seed(seed)
    W = qkv_weights(d, d, d)
    X = torch.randn(batch, ell, d) * 5
    _, A = mt.attention(X, X, *W, mt.attention_mask("causal", ell))
    torch.testing.assert_close(A.sum(-1), torch.ones(batch, ell))
    assert torch.all(A.triu(1) == 0)  # no weight on future positions t_z > t_x
    assert torch.all(A >= 0)


def test_attention_mask_shapes_and_kinds():
    assert mt.attention_mask("causal", 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert mt.attention_mask("bidirectional", 2, 3).all() and mt.attention_mask("bidirectional", 2, 3).shape == (2, 3)
