"""Algorithms 8–10 against PyTorch's transformer layers; causality; the residual trace."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mini_transformer as mt
from conftest import randomize_, small_config
from mini_transformer.reference import TorchDecoder, copy_layer_norm, copy_mhattention, copy_mlp, torch_encoder_layer

TOL = dict(atol=1e-6, rtol=1e-6)


def test_dtransformer_equals_pre_ln_torch_encoder_with_causal_mask():
    cfg = small_config()
    model = randomize_(mt.DTransformer(cfg).double())
    x = torch.randint(0, cfg.vocab_size, (3, 10))
    torch.testing.assert_close(model(x), TorchDecoder.from_model(model).eval()(x), **TOL)


def test_etransformer_layers_equal_post_ln_torch_encoder():
    cfg = small_config()
    model = randomize_(mt.ETransformer(cfg).double())
    x = torch.randint(0, cfg.vocab_size, (2, 9))
    X = model.embedding(x)
    for layer in model.layers:
        ref = torch_encoder_layer(layer, norm_first=False, config=cfg).eval()
        torch.testing.assert_close(layer(X), ref(X), **TOL)
        X = layer(X)
    expected = model.final_ln(F.gelu(X @ model.W_f.T + model.b_f)) @ model.unembedding.W_u.T
    torch.testing.assert_close(model(x), expected, **TOL)


def test_edtransformer_layers_equal_torch_encoder_and_decoder_layers():
    cfg = small_config(n_dec_layers=3)
    model = randomize_(mt.EDTransformer(cfg).double())
    assert len(model.encoder) == 2 and len(model.decoder) == 3
    z, x = torch.randint(0, cfg.vocab_size, (2, 8)), torch.randint(0, cfg.vocab_size, (2, 5))
    Z = model.embedding(z)
    for layer in model.encoder:
        ref = torch_encoder_layer(layer, norm_first=False, config=cfg).eval()
        torch.testing.assert_close(layer(Z), ref(Z), **TOL)
        Z = layer(Z)
    X = model.embedding(x)
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    for layer in model.decoder:
        ref = nn.TransformerDecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_mlp, dropout=0.0, activation="relu",
                                         batch_first=True, dtype=torch.float64)
        copy_mhattention(layer.self_attn, ref.self_attn)
        copy_mhattention(layer.cross_attn, ref.multihead_attn)
        for ours, theirs in ((layer.ln_self, ref.norm1), (layer.ln_cross, ref.norm2), (layer.ln_mlp, ref.norm3)):
            copy_layer_norm(ours, theirs)
        copy_mlp(layer.mlp, ref.linear1, ref.linear2)
        torch.testing.assert_close(layer(X, Z), ref.eval()(X, Z, tgt_mask=causal), **TOL)
        X = layer(X, Z)
    torch.testing.assert_close(model(z, x), X @ model.unembedding.W_u.T, **TOL)


@pytest.mark.parametrize("t", [0, 4, 8])
def test_dtransformer_is_causal(t):
    cfg = small_config()
    model = mt.DTransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, 12))
    changed = x.clone()
    changed[:, t + 1:] = (changed[:, t + 1:] + 1) % cfg.vocab_size
    before, after = model(x), model(changed)
    torch.testing.assert_close(before[:, :t + 1], after[:, :t + 1], atol=0, rtol=0)
    assert not torch.allclose(before[:, t + 1:], after[:, t + 1:])


def test_edtransformer_decoder_is_causal_but_sees_all_of_z():
    cfg = small_config()
    model = mt.EDTransformer(cfg)
    z, x = torch.randint(0, cfg.vocab_size, (1, 6)), torch.randint(0, cfg.vocab_size, (1, 7))
    x2 = x.clone()
    x2[0, 5] = (x2[0, 5] + 1) % cfg.vocab_size
    torch.testing.assert_close(model(z, x)[:, :5], model(z, x2)[:, :5], atol=0, rtol=0)
    z2 = z.clone()
    z2[0, -1] = (z2[0, -1] + 1) % cfg.vocab_size
    assert not torch.allclose(model(z, x)[:, 0], model(z2, x)[:, 0])  # cross-attention is bidirectional


def test_etransformer_is_bidirectional():
    cfg = small_config()
    model = mt.ETransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (1, 6))
    x2 = x.clone()
    x2[0, -1] = (x2[0, -1] + 1) % cfg.vocab_size
    assert not torch.allclose(model(x)[:, 0], model(x2)[:, 0])


def test_residual_trace_holds_every_state_in_order():
    cfg = small_config(n_layers=3)
    model = mt.DTransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (2, 7))
    logits, trace = mt.trace(model, x)
    assert len(trace.states) == 2 * cfg.n_layers + 1 and len(trace.patterns) == cfg.n_layers
    assert trace.names == ["X0", "L1.attn", "L1.mlp", "L2.attn", "L2.mlp", "L3.attn", "L3.mlp"]
    assert trace.stack().shape == (7, 2, 7, cfg.d_model)
    assert trace.patterns[0].shape == (2, cfg.n_heads, 7, 7)
    torch.testing.assert_close(trace["embed"], model.embedding(x))
    for l, layer in enumerate(model.layers, start=1):
        # Alg. 10 line 6 and line 8: each state is the previous one plus its sublayer's update
        attn_update, pattern = layer.attn(layer.ln_attn(trace.layer(l - 1)), mask=mt.attention_mask("causal", 7))
        torch.testing.assert_close(trace[l, "attn"], trace.layer(l - 1) + attn_update)
        torch.testing.assert_close(trace.patterns[l - 1], pattern)
        torch.testing.assert_close(trace[l, "mlp"], trace[l, "attn"] + layer.mlp(layer.ln_mlp(trace[l, "attn"])))
    torch.testing.assert_close(logits, model.unembedding(model.final_ln(trace.layer(cfg.n_layers))))
    torch.testing.assert_close(logits, model(x))


def test_residual_trace_states_are_in_the_autograd_graph():
    cfg = small_config()
    model = mt.DTransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (1, 6))
    logits, trace = mt.trace(model, x)
    grads = torch.autograd.grad(logits[0, 3].sum(), trace.states)
    for grad in grads:
        assert grad[0, 4:].abs().max() == 0  # no gradient into positions after 3
        assert grad[0, :4].abs().max() > 0


@pytest.mark.parametrize("key", [(0, "attn"), (3, "attn"), (1, "ffn"), "X1", (True, "mlp")])
def test_residual_trace_rejects_unknown_keys(key):
    cfg = small_config()
    _, trace = mt.trace(mt.DTransformer(cfg), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(KeyError):
        trace[key]


def test_sinusoidal_model_runs_and_has_no_position_parameters():
    model = mt.DTransformer(small_config(positional="sinusoidal"))
    assert not any("position" in name for name, _ in model.named_parameters())
    assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 11)


def test_zero_perturbations_change_nothing_and_carry_the_state_gradient():
    cfg = small_config()
    model = mt.DTransformer(cfg).double()
    x = torch.randint(0, cfg.vocab_size, (2, 6))
    deltas = {name: torch.zeros(2, 6, cfg.d_model, dtype=torch.float64, requires_grad=True)
              for name in mt.state_names(cfg.n_layers)}
    with mt.perturbed(model, deltas):
        logits, trace = mt.trace(model, x)
    torch.testing.assert_close(logits, model(x), atol=0, rtol=0)
    by_delta = torch.autograd.grad(logits[:, 3].sum(), list(deltas.values()), retain_graph=True)
    by_state = torch.autograd.grad(logits[:, 3].sum(), trace.states)
    for a, b in zip(by_delta, by_state):
        torch.testing.assert_close(a, b)


def test_hook_points_name_every_state_and_pattern_and_leave_nothing_attached():
    cfg = small_config(n_layers=2)
    model = mt.DTransformer(cfg)
    points = model.hook_points()
    assert list(points) == ["X0", "L1.attn", "L1.mlp", "L2.attn", "L2.mlp", "L1.pattern", "L2.pattern",
                            "X0.token", "final_ln"]
    assert all(point.name == name for name, point in points.items())
    assert mt.hooks.state_names(model) == mt.state_names(2)  # the two extra points are not states
    x = torch.randint(0, 11, (1, 5))
    mt.trace(model, x)
    with mt.hooked(model, {"L1.attn": lambda X: X * 0}):
        model(x)
    assert not any(point.active for point in points.values())
    with pytest.raises(ValueError, match="unknown hook point"):
        with mt.hooked(model, {"L9.mlp": lambda X: X}):
            pass


def test_the_token_and_final_hook_points_see_what_they_name():
    """"X0.token" sees W_e[:, x[t]] (X_0 minus W_p) and "final_ln" sees layer_norm(X_2L), what W_u reads."""
    cfg = small_config(n_layers=2)
    model = randomize_(mt.DTransformer(cfg).double())
    x = torch.randint(0, cfg.vocab_size, (2, 6))
    seen = {}
    with mt.hooked(model, {"X0.token": lambda E: seen.setdefault("E", E),
                           "final_ln": lambda H: seen.setdefault("H", H)}):
        logits, trace = mt.trace(model, x)
    torch.testing.assert_close(seen["E"], model.embedding.token(x), rtol=0, atol=0)
    torch.testing.assert_close(seen["E"] + model.embedding.position(6), trace[0], rtol=0, atol=0)
    torch.testing.assert_close(seen["H"], model.final_ln(trace.layer(2)), rtol=0, atol=0)
    torch.testing.assert_close(model.unembedding(seen["H"]), logits, rtol=0, atol=0)


def test_hooked_patch_changes_the_output():
    cfg = small_config()
    model = mt.DTransformer(cfg).eval()
    x = torch.randint(0, cfg.vocab_size, (2, 6))
    with mt.hooked(model, {"L2.mlp": lambda X: torch.zeros_like(X)}):
        patched = model(x)
    expected = model.unembedding(model.final_ln(torch.zeros(2, 6, cfg.d_model)))
    torch.testing.assert_close(patched, expected)


def test_a_bidirectional_decoder_reads_the_future():
    cfg = small_config(mask_kind="bidirectional")
    model = mt.DTransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (1, 6))
    changed = x.clone()
    changed[0, -1] = (changed[0, -1] + 1) % cfg.vocab_size
    assert not torch.allclose(model(x)[0, 0], model(changed)[0, 0])  # position 0 sees the last token
