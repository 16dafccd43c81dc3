"""Algorithms 8–10 of Phuong & Hutter (2022): the three transformer architectures.

* :class:`EDTransformer` (Algorithm 8): encoder–decoder, post-LN, ReLU, no final layer norm.
* :class:`ETransformer` (Algorithm 9): encoder-only (BERT), post-LN, GELU, final projection W_f.
* :class:`DTransformer` (Algorithm 10): decoder-only (GPT), pre-LN, GELU, final layer norm, with a
  hook point at every state of the residual stream; :func:`trace` returns them all as a
  :class:`ResidualTrace`.

Every ``forward`` returns **logits** ``(batch, ℓ, N_V)``; the paper's P is ``logits.softmax(-1)``.
Shapes follow the row convention of :mod:`mini_transformer.algorithms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .algorithms import (
    MLP,
    LayerNorm,
    MHAttention,
    PositionalEmbedding,
    TokenEmbedding,
    Unembedding,
    attention_mask,
    zero_past_attention,
)
from .config import TransformerConfig
from .hooks import HookPoint, _hook_points, hooked
from .validation import check_int, check_tokens, check_vectors

SUBLAYERS = ("attn", "mlp")


class _Embedding(nn.Module):
    """Lines 1–3 shared by Algorithms 8–10: e_t ← W_e[:, x[t]] + W_p[:, t]; X ← [e_1, …, e_ℓ].

    With ``config.input_dim`` set, the inputs are real vectors ``(batch, ℓ, input_dim)`` and the
    token lookup W_e[:, x[t]] becomes a linear map W_e x[t] + b_e (``self.token`` is an nn.Linear).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        if config.input_dim is None:
            self.token = TokenEmbedding(config.vocab_size, config.d_model)
        else:
            self.token = nn.Linear(config.input_dim, config.d_model)
        self.position = PositionalEmbedding(config.max_len, config.d_model, config.positional)
        self.hook_token = HookPoint()  # W_e[:, x[t]] before W_p[:, t] is added ("X0.token" in a DTransformer)

    def forward(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        if self.config.input_dim is None:
            x = check_tokens(x, name=name, vocab_size=self.config.vocab_size, max_len=self.config.max_len)
        else:
            x = check_vectors(x, name=name, width=self.config.input_dim, max_len=self.config.max_len,
                              dtype=self.token.weight.dtype)
        return self.hook_token(self.token(x)) + self.position(x.shape[1])


def device_of(model: nn.Module) -> torch.device:
    """The device a model's parameters live on (where its inputs must go)."""
    return next(model.parameters()).device


def _check_config(config, model: str, unused: tuple[str, ...]) -> TransformerConfig:
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
    return config.check_unused(model, unused)


# ---------------------------------------------------------------------------------------------
# The layout of the residual stream: the one place that knows it
# ---------------------------------------------------------------------------------------------
def state_names(n_layers: int) -> list[str]:
    """Labels of the 2L+1 residual-stream states: ``["X0", "L1.attn", "L1.mlp", …]``: X_0, then the
    stream after layer l's attention update and after its MLP update, for l = 1 … L."""
    if isinstance(n_layers, torch.nn.Module):  # mini_transformer.hooks.state_names takes the model
        raise TypeError(f"n_layers must be the number of layers (an int), got a {type(n_layers).__name__}; "
                        "pass model.config.n_layers (or use mini_transformer.hooks.state_names(model))")
    n_layers = check_int(n_layers, "n_layers", minimum=0)
    return ["X0"] + [f"L{l}.{part}" for l in range(1, n_layers + 1) for part in SUBLAYERS]


def state_index(layer: int, part: str) -> int:
    """Index in the list of states of ``(0, "embed")`` (X_0) or ``(l, "attn" | "mlp")``."""
    if layer == 0 and part == "embed":
        return 0
    if part not in SUBLAYERS or isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
        raise KeyError(f"a state is (0, 'embed') or (layer ≥ 1, 'attn' | 'mlp'), got {(layer, part)!r}")
    return 2 * layer - 1 + SUBLAYERS.index(part)


def state_layer(index: int) -> tuple[int, str]:
    """The inverse of :func:`state_index`: ``(layer, "embed" | "attn" | "mlp")`` of state ``index``.
    Odd indices are attention updates (they read other positions), even ones MLP updates or X_0."""
    if index == 0:
        return 0, "embed"
    return (index + 1) // 2, SUBLAYERS[(index - 1) % 2]


@dataclass
class ResidualTrace:
    """Every state of a DTransformer's residual stream, for one forward pass (see :func:`trace`).

    ``states[0]`` is X_0 (token + position embeddings); ``states[2l−1]`` is the stream after layer
    l's attention update and ``states[2l]`` after its MLP update (l = 1…L, as in the paper), each
    ``(batch, ℓ, d_e)``. ``patterns[l−1]`` is layer l's attention ``(batch, H, ℓ, ℓ)``.
    The tensors are part of the autograd graph, so gradients with respect to them can be taken.

    Index it as ``trace[0]`` or ``trace["embed"]`` (X_0), or ``trace[l, "attn"]`` and
    ``trace[l, "mlp"]``; ``trace.layer(l)`` is X_l, the stream after all of layer l.
    """

    states: list[torch.Tensor]
    patterns: list[torch.Tensor]

    @property
    def n_layers(self) -> int:
        return len(self.patterns)

    @property
    def names(self) -> list[str]:
        """Labels of ``states`` in order: ``["X0", "L1.attn", "L1.mlp", …]``."""
        return state_names(self.n_layers)

    def index(self, key) -> int:
        """The position in ``states`` of ``0``/``"embed"`` or ``(layer, "attn" | "mlp")``."""
        if key == 0 or key == "embed":
            return 0
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"trace key must be 0, 'embed' or (layer, 'attn'|'mlp'), got {key!r}")
        layer, part = key
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= self.n_layers:
            raise KeyError(f"layer must be an int in 1..{self.n_layers}, got {layer!r}")
        return state_index(layer, part)

    def __getitem__(self, key) -> torch.Tensor:
        return self.states[self.index(key)]

    def layer(self, l: int) -> torch.Tensor:
        """X_l: the residual stream after layer l (X_0 for l = 0)."""
        return self.states[0] if l == 0 else self[l, "mlp"]

    def stack(self) -> torch.Tensor:
        """All states as one tensor ``(2L+1, batch, ℓ, d_e)``."""
        return torch.stack(self.states)


def trace(model, x: torch.Tensor):
    """Run ``model`` on ``x`` and return ``(logits, ResidualTrace)``: every state of the stream and
    every attention pattern, read at the model's hook points (the patterns are those attention used:
    pattern hooks are read-only)."""
    recorded: dict[str, torch.Tensor] = {}

    def keep(name):
        def function(tensor):
            recorded[name] = tensor
        return function

    points = _hook_points(model)  # a TypeError for a model without hook points
    names = state_names(model.config.n_layers)
    pattern_names = [f"L{l}.pattern" for l in range(1, model.config.n_layers + 1)]
    missing = [name for name in names + pattern_names if name not in points]
    if missing:
        raise TypeError(f"trace needs a hook point at every state and pattern (a DTransformer); "
                        f"{type(model).__name__} lacks {missing}")
    with hooked(model, {name: keep(name) for name in points}):
        logits = model(x)
    patterns = [recorded[name] for name in pattern_names]
    return logits, ResidualTrace(states=[recorded[name] for name in names], patterns=patterns)


# ---------------------------------------------------------------------------------------------
# Algorithm 10: DTransformer
# ---------------------------------------------------------------------------------------------
class DecoderLayer(nn.Module):
    """One iteration of Algorithm 10's loop (lines 5–8), pre-LN, with a hook point after each update."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        d, fused = config.d_model, config.fused
        self.ln_attn = LayerNorm(d, config.layer_norm_eps, fused)  # γ_l^1, β_l^1
        self.attn = MHAttention(d, config.n_heads, config.d_head, fused=fused)  # W_l
        self.ln_mlp = LayerNorm(d, config.layer_norm_eps, fused)  # γ_l^2, β_l^2
        self.mlp = MLP(d, config.d_mlp, config.activation or "gelu", fused)  # W_mlp1^l, …, b_mlp2^l
        self.hook_attn, self.hook_mlp = HookPoint(), HookPoint()  # the stream after each update
        self.causal = config.mask_kind == "causal"  # lets the fused kernel skip the mask
        if config.zero_past:  # the "transformer bigram": what a position reads from the past is zero
            self.attn.kernel = zero_past_attention

    def forward(self, X: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        X = self.hook_attn(X + self.attn(self.ln_attn(X), mask=mask, is_causal=self.causal)[0])  # lines 5–6
        return self.hook_mlp(X + self.mlp(self.ln_mlp(X)))  # lines 7–8


class DTransformer(nn.Module):
    """Algorithm 10: P ← DTransformer(x | θ), a decoder-only (GPT-style) transformer.

    ``forward(x)`` takes token ids ``(batch, ℓ)`` or ``(ℓ,)`` with ℓ ≤ ℓ_max and returns logits
    ``(batch, ℓ, N_V)``; row t predicts token t+1. :func:`trace` returns every state of the stream.

    ``config.mask_kind`` is the paper's causal mask; ``"self"`` gives a control model whose
    positions attend only to themselves (see :func:`~mini_transformer.algorithms.attention_mask`);
    ``config.zero_past`` makes the "transformer bigram", whose past keys and values are zero.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = _check_config(config, "DTransformer", ("n_dec_layers", "d_final"))
        self.embedding = _Embedding(config)
        self.hook_embed = HookPoint()  # X_0
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_layers))
        self.final_ln = LayerNorm(config.d_model, config.layer_norm_eps, config.fused)  # γ, β
        self.hook_final = HookPoint()  # layer_norm(X_2L), the vectors W_u reads
        # W_u: N_V logits, or config.output_dim real outputs (a regression head)
        self.unembedding = Unembedding(config.d_model, config.output_dim or config.vocab_size)
        for name, point in self.hook_points().items():
            point.name = name

    def hook_points(self) -> dict[str, HookPoint]:
        """Every hook point by name: the 2L+1 states in order, then each layer's attention pattern,
        then the token embeddings before W_p is added (``"X0.token"``) and the final layer norm's
        output that the unembedding reads (``"final_ln"``)."""
        states = [self.hook_embed] + [hook for layer in self.layers for hook in (layer.hook_attn, layer.hook_mlp)]
        points = dict(zip(state_names(len(self.layers)), states))
        points.update({f"L{l}.pattern": layer.attn.hook_pattern for l, layer in enumerate(self.layers, start=1)})
        points.update({"X0.token": self.embedding.hook_token, "final_ln": self.hook_final})
        return points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = self.hook_embed(self.embedding(x))  # lines 1–3: X ← [W_e[:, x[t]] + W_p[:, t]]_t
        mask = attention_mask(self.config.mask_kind, X.shape[1], device=X.device)  # Mask[t, t'] = [[t ≤ t']]
        for layer in self.layers:  # line 4: for l = 1, …, L (lines 5–8 in DecoderLayer.forward)
            X = layer(X, mask)
        return self.unembedding(self.hook_final(self.final_ln(X)))  # lines 10–11: P ← softmax(W_u layer_norm(X))


# ---------------------------------------------------------------------------------------------
# Algorithm 9: ETransformer (BERT)
# ---------------------------------------------------------------------------------------------
class EncoderLayer(nn.Module):
    """One iteration of the encoder loop of Algorithms 8 and 9 (post-LN)."""

    def __init__(self, config: TransformerConfig, activation: str):
        super().__init__()
        d, fused = config.d_model, config.fused
        self.attn = MHAttention(d, config.n_heads, config.d_head, fused=fused)
        self.ln_attn = LayerNorm(d, config.layer_norm_eps, fused)
        self.mlp = MLP(d, config.d_mlp, activation, fused)
        self.ln_mlp = LayerNorm(d, config.layer_norm_eps, fused)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        mask = attention_mask("bidirectional", X.shape[1], device=X.device)
        X = self.ln_attn(X + self.attn(X, mask=mask, need_weights=False)[0])  # X ← X + MHAttention(X | W_l, Mask ≡ 1); layer_norm
        return self.ln_mlp(X + self.mlp(X))  # X ← X + W_mlp2 act(W_mlp1 X + b) + b; layer_norm


class ETransformer(nn.Module):
    """Algorithm 9: P ← ETransformer(x | θ), an encoder-only (BERT-style) transformer.

    Post-LN layers with bidirectional attention and GELU, then X ← GELU(W_f X + b_f 1ᵀ),
    a final layer norm, and logits ``W_u X`` of shape ``(batch, ℓ, N_V)``.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = _check_config(config, "ETransformer", ("n_dec_layers", "output_dim", "mask_kind", "zero_past"))
        self.embedding = _Embedding(config)
        self.layers = nn.ModuleList(EncoderLayer(config, config.activation or "gelu") for _ in range(config.n_layers))
        d_f, fused = config.d_final, config.fused
        self.W_f = nn.Parameter(torch.randn(d_f, config.d_model) * 0.02)
        self.b_f = nn.Parameter(torch.zeros(d_f))
        self.final_ln = LayerNorm(d_f, config.layer_norm_eps, fused)
        self.unembedding = Unembedding(d_f, config.vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = self.embedding(x)  # lines 1–3
        for layer in self.layers:  # lines 4–9
            X = layer(X)
        X = torch.nn.functional.gelu(X @ self.W_f.T + self.b_f)  # line 10: X ← GELU(W_f X + b_f 1ᵀ)
        return self.unembedding(self.final_ln(X))  # lines 11–12: layer_norm; P = softmax(W_u X)


# ---------------------------------------------------------------------------------------------
# Algorithm 8: EDTransformer (the original encoder–decoder transformer)
# ---------------------------------------------------------------------------------------------
class EDDecoderLayer(nn.Module):
    """One iteration of Algorithm 8's decoder loop: causal self-attention, cross-attention, MLP."""

    def __init__(self, config: TransformerConfig, activation: str):
        super().__init__()
        d, fused = config.d_model, config.fused
        self.self_attn = MHAttention(d, config.n_heads, config.d_head, fused=fused)
        self.ln_self = LayerNorm(d, config.layer_norm_eps, fused)
        self.cross_attn = MHAttention(d, config.n_heads, config.d_head, fused=fused)
        self.ln_cross = LayerNorm(d, config.layer_norm_eps, fused)
        self.mlp = MLP(d, config.d_mlp, activation, fused)
        self.ln_mlp = LayerNorm(d, config.layer_norm_eps, fused)

    def forward(self, X: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        causal = attention_mask("causal", X.shape[1], device=X.device)
        cross = attention_mask("bidirectional", X.shape[1], Z.shape[1], device=X.device)
        X = self.ln_self(X + self.self_attn(X, mask=causal, need_weights=False, is_causal=True)[0])  # X ← X + MHAttention(X | W_l^dec, [[t ≤ t']]); LN
        X = self.ln_cross(X + self.cross_attn(X, Z, mask=cross, need_weights=False)[0])  # X ← X + MHAttention(X, Z | W_l^e/d, 1); LN
        return self.ln_mlp(X + self.mlp(X))  # X ← X + W_mlp4 ReLU(W_mlp3 X + b) + b; LN


class EDTransformer(nn.Module):
    """Algorithm 8: P ← EDTransformer(z, x | θ), the encoder–decoder transformer.

    ``forward(z, x)``: context ids ``z (batch, ℓ_z)``, primary ids ``x (batch, ℓ_x)``; returns logits
    ``(batch, ℓ_x, N_V)``. Post-LN, ReLU, no final layer norm; W_e and W_p are shared by z and x,
    as in the paper. ``config.n_layers`` is L_enc, ``config.n_dec_layers`` is L_dec.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = _check_config(config, "EDTransformer", ("d_final", "output_dim", "mask_kind", "zero_past"))
        activation = config.activation or "relu"
        self.embedding = _Embedding(config)
        self.encoder = nn.ModuleList(EncoderLayer(config, activation) for _ in range(config.n_layers))
        self.decoder = nn.ModuleList(EDDecoderLayer(config, activation) for _ in range(config.n_dec_layers))
        self.unembedding = Unembedding(config.d_model, config.vocab_size)

    def encode(self, z: torch.Tensor) -> torch.Tensor:
        Z = self.embedding(z, name="z")  # lines 1–3: Z ← [W_e[:, z[t]] + W_p[:, t]]_t
        for layer in self.encoder:  # lines 4–9: encoder layers, Mask ≡ 1
            Z = layer(Z)
        return Z

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        Z = self.encode(z)
        X = self.embedding(x, name="x")  # lines 10–12: X ← [W_e[:, x[t]] + W_p[:, t]]_t
        if Z.shape[0] != X.shape[0]:
            raise ValueError(f"z and x must have the same batch size, got {Z.shape[0]} and {X.shape[0]}")
        for layer in self.decoder:  # lines 13–20
            X = layer(X, Z)
        return self.unembedding(X)  # line 21: P ← softmax(W_u X)
