"""PyTorch's own transformer layers holding the weights of this package's modules.

Used to check that the from-scratch algorithms compute exactly what PyTorch computes
(tests, chapter 1) and as the reference model in benchmarks. Nothing here is used by the
package's own models.
"""

from __future__ import annotations

import torch
from torch import nn

from .algorithms import MLP, LayerNorm, MHAttention
from .models import DTransformer


def copy_mhattention(ours: MHAttention, ref: nn.MultiheadAttention) -> nn.MultiheadAttention:
    """Copy Algorithm 5's weights into ``nn.MultiheadAttention``, which stacks W_q, W_k, W_v
    (each ``(H·d_head, d_x)``, head h in rows h·d_head … (h+1)·d_head) in ``in_proj_weight``."""
    H, d, E = ours.W_q.shape
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([w.reshape(H * d, E) for w in (ours.W_q, ours.W_k, ours.W_v)]))
        ref.in_proj_bias.copy_(torch.cat([b.reshape(H * d) for b in (ours.b_q, ours.b_k, ours.b_v)]))
        ref.out_proj.weight.copy_(ours.W_o)
        ref.out_proj.bias.copy_(ours.b_o)
    return ref


def copy_layer_norm(ours: LayerNorm, ref: nn.LayerNorm) -> nn.LayerNorm:
    """Copy Algorithm 6's γ, β into ``nn.LayerNorm``'s weight and bias."""
    with torch.no_grad():
        ref.weight.copy_(ours.gamma)
        ref.bias.copy_(ours.beta)
    return ref


def copy_mlp(ours: MLP, linear1: nn.Linear, linear2: nn.Linear) -> None:
    """Copy W_mlp1, b_mlp1, W_mlp2, b_mlp2 into two ``nn.Linear`` layers."""
    with torch.no_grad():
        linear1.weight.copy_(ours.W_mlp1)
        linear1.bias.copy_(ours.b_mlp1)
        linear2.weight.copy_(ours.W_mlp2)
        linear2.bias.copy_(ours.b_mlp2)


def torch_encoder_layer(layer, *, norm_first: bool, config) -> nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer`` (dropout off) with the weights of one of our layers.

    ``norm_first=True`` matches a DTransformer layer (Algorithm 10, pre-LN, given a causal mask);
    ``norm_first=False`` matches an encoder layer of Algorithms 8 and 9 (post-LN).
    """
    param = layer.attn.W_q
    ref = nn.TransformerEncoderLayer(
        config.d_model, config.n_heads, config.d_mlp, dropout=0.0, activation=layer.mlp.activation,
        batch_first=True, norm_first=norm_first, device=param.device, dtype=param.dtype,
    )
    copy_mhattention(layer.attn, ref.self_attn)
    copy_layer_norm(layer.ln_attn, ref.norm1)
    copy_layer_norm(layer.ln_mlp, ref.norm2)
    copy_mlp(layer.mlp, ref.linear1, ref.linear2)
    return ref


class TorchDecoder(nn.Module):
    """A decoder-only transformer assembled from ``nn.TransformerEncoderLayer(norm_first=True)``
    with a causal mask: the same function as :class:`~mini_transformer.models.DTransformer`,
    computed by PyTorch's fused kernels. ``TorchDecoder.from_model(model)`` copies the weights."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.d_model
        self.token = nn.Embedding(config.vocab_size, d)
        self.position = nn.Parameter(torch.zeros(config.max_len, d))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, config.n_heads, config.d_mlp, dropout=0.0,
                                       activation=config.activation or "gelu", batch_first=True, norm_first=True)
            for _ in range(config.n_layers)
        )
        self.final_ln = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.unembedding = nn.Linear(d, config.vocab_size, bias=False)

    @classmethod
    def from_model(cls, model: DTransformer) -> "TorchDecoder":
        param = model.unembedding.W_u
        ref = cls(model.config).to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            ref.token.weight.copy_(model.embedding.token.weight)
            ref.position.copy_(model.embedding.position.weight)
            ref.unembedding.weight.copy_(model.unembedding.W_u)
        ref.layers = nn.ModuleList(torch_encoder_layer(layer, norm_first=True, config=model.config)
                                   for layer in model.layers)
        copy_layer_norm(model.final_ln, ref.final_ln)
        return ref

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        X = self.token(x) + self.position[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=X.device, dtype=X.dtype)
        for layer in self.layers:
            X = layer(X, src_mask=mask, is_causal=True)
        return self.unembedding(self.final_ln(X))
