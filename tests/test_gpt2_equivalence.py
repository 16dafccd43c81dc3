"""Algorithm 10 is GPT-2: a randomly initialised GPT-2 from Hugging Face's ``transformers`` (nothing
downloaded), its weights mapped into a DTransformer, gives the same logits.

GPT-2 stores its projections as ``Conv1D`` layers, ``y = x W + b`` with ``W (d_in, d_out)``; the
paper (and this package) writes ``W (d_out, d_in)`` applied as ``W x``, so every matrix is transposed.
Queries, keys and values come out of one ``c_attn`` projection, split into thirds and then into heads.
"""

import pytest
import torch

import mini_transformer as mt

transformers = pytest.importorskip("transformers")


def gpt2_and_twin(dtype, **overrides):
    settings = dict(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)
    settings.update(overrides)
    gpt2_config = transformers.GPT2Config(**settings)  # activation_function: GPT-2's "gelu_new"
    torch.manual_seed(0)
    gpt2 = transformers.GPT2LMHeadModel._from_config(gpt2_config, attn_implementation="eager")
    gpt2 = gpt2.to(dtype).eval()
    with torch.no_grad():  # random values everywhere (biases and layer norms too), not GPT-2's init
        for p in gpt2.parameters():
            p.normal_(0, 0.3)
    activation = {"gelu_new": "gelu_tanh", "gelu": "gelu", "relu": "relu"}[gpt2_config.activation_function]
    config = mt.TransformerConfig(
        vocab_size=gpt2_config.vocab_size, max_len=gpt2_config.n_positions, d_model=gpt2_config.n_embd,
        n_layers=gpt2_config.n_layer, n_heads=gpt2_config.n_head, d_mlp=gpt2_config.n_inner,
        activation=activation, layer_norm_eps=gpt2_config.layer_norm_epsilon)
    model = mt.DTransformer(config).to(dtype).eval()
    load_gpt2_weights(model, gpt2)
    return gpt2, model


@torch.no_grad()
def load_gpt2_weights(model: mt.DTransformer, gpt2) -> None:
    """Copy a ``GPT2LMHeadModel``'s weights into ``model`` (the same sizes)."""
    H, d_head = model.config.n_heads, model.config.d_head
    g = gpt2.transformer
    model.embedding.token.weight.copy_(g.wte.weight)  # W_e (one row per token)
    model.embedding.position.weight.copy_(g.wpe.weight)  # W_p (learned)
    for ours, block in zip(model.layers, g.h):
        ours.ln_attn.gamma.copy_(block.ln_1.weight)
        ours.ln_attn.beta.copy_(block.ln_1.bias)
        W_q, W_k, W_v = block.attn.c_attn.weight.T.chunk(3)  # each (d_model, d_model) as (d_out, d_in)
        b_q, b_k, b_v = block.attn.c_attn.bias.chunk(3)
        for W, b, ours_W, ours_b in [(W_q, b_q, ours.attn.W_q, ours.attn.b_q), (W_k, b_k, ours.attn.W_k, ours.attn.b_k),
                                     (W_v, b_v, ours.attn.W_v, ours.attn.b_v)]:
            ours_W.copy_(W.reshape(H, d_head, -1))  # head h owns output rows h·d_head … (h+1)·d_head − 1
            ours_b.copy_(b.reshape(H, d_head))
        ours.attn.W_o.copy_(block.attn.c_proj.weight.T)
        ours.attn.b_o.copy_(block.attn.c_proj.bias)
        ours.ln_mlp.gamma.copy_(block.ln_2.weight)
        ours.ln_mlp.beta.copy_(block.ln_2.bias)
        ours.mlp.W_mlp1.copy_(block.mlp.c_fc.weight.T)
        ours.mlp.b_mlp1.copy_(block.mlp.c_fc.bias)
        ours.mlp.W_mlp2.copy_(block.mlp.c_proj.weight.T)
        ours.mlp.b_mlp2.copy_(block.mlp.c_proj.bias)
    model.final_ln.gamma.copy_(g.ln_f.weight)
    model.final_ln.beta.copy_(g.ln_f.bias)
    model.unembedding.W_u.copy_(gpt2.lm_head.weight)  # tied to W_e in GPT-2


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_dtransformer_equals_gpt2(dtype, tolerance):
    gpt2, model = gpt2_and_twin(dtype)
    x = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = gpt2(x).logits
        ours = model(x)
    assert ours.shape == theirs.shape
    difference = (ours - theirs).abs().max().item()
    assert difference <= tolerance, difference


def test_fused_kernels_equal_gpt2_too():
    gpt2, model = gpt2_and_twin(torch.float64)
    fused = mt.DTransformer(mt.TransformerConfig(**{**model.config.to_dict(), "kernels": "fused"})).double().eval()
    fused.load_state_dict(model.state_dict())
    x = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (fused(x) - gpt2(x).logits).abs().max().item() <= 1e-10


def test_exact_gelu_is_not_gpt2s():
    """The activation matters at this tolerance: exact GELU against GPT-2's tanh approximation."""
    gpt2, model = gpt2_and_twin(torch.float64)
    exact = mt.DTransformer(mt.TransformerConfig(**{**model.config.to_dict(), "activation": "gelu"})).double().eval()
    exact.load_state_dict(model.state_dict())
    x = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (exact(x) - gpt2(x).logits).abs().max().item() > 1e-6
