"""Algorithms 1–7 of Phuong & Hutter, *Formal Algorithms for Transformers* (2022).

Notation (see the book's notation page): the paper stores tokens as **columns** of
X ∈ ℝ^{d×ℓ}; this code stores them as **rows**, batch first, ``X.shape == (batch, ℓ, d)``,
so ``X_code[b, t] == X_paper[:, t + 1]`` (positions are 0-based here, 1-based in the paper).
A weight matrix that acts on a token vector is stored exactly as the paper writes it,
``W ∈ ℝ^{d_out × d_in}``, and applied to rows as ``X @ W.T`` (the paper's ``W X``). Embedding
tables, whose *columns* the paper looks up, are stored with one row per token or position.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .hooks import HookPoint
from .validation import check_choice, check_dtype, check_same_dtype

MASK_KINDS = ("bidirectional", "causal", "self")


# ---------------------------------------------------------------------------------------------
# Algorithms 1 and 2: embeddings
# ---------------------------------------------------------------------------------------------
class TokenEmbedding(nn.Module):
    """Algorithm 1: token embedding, ``e ← W_e[:, v]``.

    ``weight`` has shape ``(N_V, d_e)``: row ``v`` is the paper's column ``W_e[:, v]``.
    Input ids ``(batch, ℓ)``, output ``(batch, ℓ, d_e)``.
    """

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight[x]  # Alg. 1, line 1: e ← W_e[:, v]


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    """The fixed positional embedding given with Algorithm 2, as a ``(ℓ_max, d_e)`` table.

    W_p[2i−1, t] = sin(t / ℓ_max^{2i/d_e}),  W_p[2i, t] = cos(t / ℓ_max^{2i/d_e}),  0 < i ≤ d_e/2,
    with the paper's 1-based t and i.
    """
    if d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")
    t = torch.arange(1, max_len + 1, dtype=torch.float64)[:, None]  # paper's t = 1..ℓ_max
    i = torch.arange(1, d_model // 2 + 1, dtype=torch.float64)[None, :]
    angle = t / max_len ** (2 * i / d_model)
    table = torch.empty(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)  # paper's rows 2i−1 (1-based) are code's even columns
    table[:, 1::2] = torch.cos(angle)
    return table.float()


class PositionalEmbedding(nn.Module):
    """Algorithm 2: positional embedding, ``e_p ← W_p[:, t]``.

    ``kind="learned"``: a trained table; ``kind="sinusoidal"``: the fixed table of
    :func:`sinusoidal_positions`. Input: a length ℓ ≤ ℓ_max; output ``(ℓ, d_e)``.
    """

    def __init__(self, max_len: int, d_model: int, kind: str = "learned"):
        super().__init__()
        check_choice(kind, "positional", ("learned", "sinusoidal"))
        self.kind = kind
        if kind == "learned":
            self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            self.register_buffer("weight", sinusoidal_positions(max_len, d_model))

    def forward(self, length: int) -> torch.Tensor:
        if length > self.weight.shape[0]:
            raise ValueError(f"length {length} exceeds max_len ℓ_max={self.weight.shape[0]}")
        return self.weight[:length]  # Alg. 2, line 1: e_p ← W_p[:, t] for t = 1..ℓ


# ---------------------------------------------------------------------------------------------
# Algorithms 3 and 4: attention
# ---------------------------------------------------------------------------------------------
def single_query_attention(e, context, W_q, b_q, W_k, b_k, W_v, b_v) -> torch.Tensor:
    """Algorithm 3: basic single-query attention.

    ``e``: the current token's vector ``(d_in,)``; ``context``: the context tokens ``(ℓ, d_in)``.
    Returns ṽ ``(d_out,)``, the attention-weighted average of the values.
    """
    check_same_dtype(e=e, context=context, W_q=W_q, b_q=b_q, W_k=W_k, b_k=b_k, W_v=W_v, b_v=b_v)
    q = W_q @ e + b_q  # line 1: q ← W_q e + b_q
    k = context @ W_k.T + b_k  # line 2: k_t ← W_k e_t + b_k, one row per t
    v = context @ W_v.T + b_v  # line 3: v_t ← W_v e_t + b_v
    scores = k @ q / math.sqrt(q.shape[-1])
    alpha = torch.exp(scores - scores.max())  # line 4: α_t = exp(qᵀk_t/√d_attn) / Σ_u exp(qᵀk_u/√d_attn)
    alpha = alpha / alpha.sum()
    return alpha @ v  # line 5: ṽ = Σ_t α_t v_t


def attention_mask(kind: str, length_x: int, length_z: int | None = None, device=None) -> torch.Tensor:
    """The mask of Algorithm 4, as a boolean ``(ℓ_x, ℓ_z)`` tensor, True where attention is allowed.

    The paper indexes ``Mask[t_z, t_x]``; this tensor is its transpose, ``mask[t_x, t_z]``.

    * ``"bidirectional"``: Mask ≡ 1 (encoder self-attention, and cross-attention).
    * ``"causal"`` (unidirectional): Mask[t_z, t_x] = [[t_z ≤ t_x]]; needs ℓ_z = ℓ_x.
    * ``"self"``: Mask[t_z, t_x] = [[t_z = t_x]], each token attends only to itself (not in the
      paper: a control for experiments, a model whose positions cannot read each other).
    """
    check_choice(kind, "mask kind", MASK_KINDS)
    length_z = length_x if length_z is None else length_z
    if kind == "bidirectional":
        return torch.ones(length_x, length_z, dtype=torch.bool, device=device)
    if length_z != length_x:
        raise ValueError(f"a {kind} mask needs ℓ_z == ℓ_x, got ℓ_x={length_x}, ℓ_z={length_z}")
    if kind == "self":
        return torch.eye(length_x, dtype=torch.bool, device=device)
    return torch.ones(length_x, length_x, dtype=torch.bool, device=device).tril()


def attention(X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask):
    """Algorithm 4: Ṽ ← Attention(X, Z | W_qkv, Mask).

    Shapes (rows are tokens): ``X (…, ℓ_x, d_x)`` the primary sequence, ``Z (…, ℓ_z, d_z)`` the
    context, ``W_q, W_k (…, d_attn, d_in)``, ``W_v (…, d_out, d_z)``, biases ``(…, 1, d)``,
    ``mask (ℓ_x, ℓ_z)`` boolean. Leading dimensions broadcast (heads, batch).
    Returns ``(Ṽ, A)``: the updated representations ``(…, ℓ_x, d_out)`` and the attention
    pattern ``A (…, ℓ_x, ℓ_z)`` (row t_x sums to 1; the paper's softmax(S/√d_attn) transposed).
    """
    check_same_dtype(X=X, Z=Z, W_q=W_q, b_q=b_q, W_k=W_k, b_k=b_k, W_v=W_v, b_v=b_v)
    Q = X @ W_q.mT + b_q  # line 1: Q ← W_q X + b_q 1ᵀ
    K = Z @ W_k.mT + b_k  # line 2: K ← W_k Z + b_k 1ᵀ
    V = Z @ W_v.mT + b_v  # line 3: V ← W_v Z + b_v 1ᵀ
    S = Q @ K.mT  # line 4: S ← KᵀQ (here transposed: S[t_x, t_z])
    S = S.masked_fill(~mask, float("-inf"))  # line 5: S[t_z, t_x] ← −∞ where ¬Mask[t_z, t_x]
    A = torch.softmax(S / math.sqrt(Q.shape[-1]), dim=-1)  # line 6: softmax over the context
    return A @ V, A  # line 6: Ṽ = V · softmax(S/√d_attn)


def zero_past_attention(X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask):
    """Not in the paper: Algorithm 4 for self-attention where every *other* position's key and value
    read as zero, the "transformer bigram" baseline of Wu, Morris & Levine (2024). A position still
    spreads attention over the past (each past score is q·0 = 0) but receives nothing from it, so it
    sees only its own token. Same arguments and returns as :func:`attention` (Z must be X)."""
    if Z is not X:
        raise ValueError("zero_past_attention is self-attention: Z must be X")
    check_same_dtype(X=X, W_q=W_q, b_q=b_q, W_k=W_k, b_k=b_k, W_v=W_v, b_v=b_v)
    Q = X @ W_q.mT + b_q
    K = X @ W_k.mT + b_k
    V = X @ W_v.mT + b_v
    own = (Q * K).sum(-1)  # q_t · k_t, the only score that is not q_t · 0
    S = torch.diag_embed(own).masked_fill(~mask, float("-inf"))
    A = torch.softmax(S / math.sqrt(Q.shape[-1]), dim=-1)
    return A.diagonal(dim1=-2, dim2=-1).unsqueeze(-1) * V, A  # only the own value is non-zero


# ---------------------------------------------------------------------------------------------
# Algorithm 5: multi-head attention
# ---------------------------------------------------------------------------------------------
class MHAttention(nn.Module):
    """Algorithm 5: Ṽ ← MHAttention(X, Z | W, Mask).

    Parameters, stacked over the H heads: ``W_q, W_k (H, d_attn, d_x|d_z)``, ``W_v (H, d_mid, d_z)``,
    ``b_q, b_k, b_v (H, d)``, and the output map ``W_o (d_out, H·d_mid)``, ``b_o (d_out,)``.
    ``forward(X, Z=None, mask=...)`` with ``Z=None`` is self-attention (Z = X).
    Returns ``(Ṽ (batch, ℓ_x, d_out), A (batch, H, ℓ_x, ℓ_z))``.

    ``kernel`` is the function that computes lines 1–6 of Algorithm 4 for all heads at once:
    :func:`attention` (the paper's; the default, None) or a variant with the same arguments — the
    transformer bigram's :func:`zero_past_attention`, or myopic attention, which
    :mod:`mini_transformer.analysis.myopia` installs from above. ``hook_pattern`` sees A.

    ``fused=True`` computes the same function with one stacked projection and
    ``F.scaled_dot_product_attention`` whenever the pattern is not needed (``need_weights=False``
    and nothing attached to ``hook_pattern``) and the kernel is the paper's; A is then None.

    ``hook_pattern`` is read-only: A is seen after Ṽ was computed from it, so a function attached
    there may read A (a trace reports the A attention used) but must return None.
    """

    def __init__(self, d_x: int, n_heads: int, d_head: int, d_out: int | None = None, d_z: int | None = None,
                 fused: bool = False):
        super().__init__()
        self.fused = fused
        d_z = d_x if d_z is None else d_z
        d_out = d_x if d_out is None else d_out
        self.n_heads, self.d_head = n_heads, d_head

        def weight(*shape):
            return nn.Parameter(torch.randn(*shape) * 0.02)

        self.W_q, self.b_q = weight(n_heads, d_head, d_x), nn.Parameter(torch.zeros(n_heads, d_head))
        self.W_k, self.b_k = weight(n_heads, d_head, d_z), nn.Parameter(torch.zeros(n_heads, d_head))
        self.W_v, self.b_v = weight(n_heads, d_head, d_z), nn.Parameter(torch.zeros(n_heads, d_head))
        self.W_o, self.b_o = weight(d_out, n_heads * d_head), nn.Parameter(torch.zeros(d_out))
        self.kernel = None  # None: Algorithm 4 itself (`attention`)
        self.hook_pattern = HookPoint(read_only=True)  # A is seen after Ṽ was computed from it

    def forward(self, X: torch.Tensor, Z: torch.Tensor | None = None, *, mask: torch.Tensor,
                need_weights: bool = False, is_causal: bool = False):
        """``is_causal=True`` promises that ``mask`` is the causal mask (lets the fused kernel skip it)."""
        check_dtype(X, "X", self.W_q.dtype, "MHAttention")
        if Z is not None:
            check_dtype(Z, "Z", self.W_q.dtype, "MHAttention")
        need_weights = need_weights or self.hook_pattern.active
        if self.fused and not need_weights and self.kernel is None:
            return self._fused_forward(X, X if Z is None else Z, mask, is_causal), None
        heads = (self.W_q, self.b_q.unsqueeze(1), self.W_k, self.b_k.unsqueeze(1), self.W_v, self.b_v.unsqueeze(1))
        # line 1: Y^h ← Attention(X, Z | W^h_qkv, Mask) for every head h at once;
        # X and Z get a head axis (batch, 1, ℓ, d) that broadcasts against W (H, d_head, d).
        X = X.unsqueeze(1)
        Z = X if Z is None else Z.unsqueeze(1)
        Y, A = (self.kernel or attention)(X, Z, *heads, mask)
        A = self.hook_pattern(A)
        Y = rearrange(Y, "batch head t d -> batch t (head d)")  # line 2: Y ← [Y¹; Y²; …; Y^H]
        return Y @ self.W_o.T + self.b_o, A  # line 3: Ṽ ← W_o Y + b_o 1ᵀ

    def _fused_forward(self, X, Z, mask, is_causal: bool) -> torch.Tensor:
        """Algorithm 5 through fused kernels: the same Q, K, V (lines 1–3 of Algorithm 4, all heads
        in one matrix product when X is Z), softmax(KᵀQ/√d_attn) V in one kernel, then W_o."""
        H = self.n_heads
        if X is Z:
            W = torch.cat([self.W_q, self.W_k, self.W_v]).flatten(0, 1)  # (3·H·d_head, d_x)
            b = torch.cat([self.b_q, self.b_k, self.b_v]).flatten()
            Q, K, V = rearrange(F.linear(X, W, b), "batch t (three head d) -> three batch head t d", three=3, head=H)
        else:
            def project(inputs, W, b):  # all heads of one of lines 1–3 in one matrix product
                return rearrange(F.linear(inputs, W.flatten(0, 1), b.flatten()), "b t (h d) -> b h t d", h=H)

            Q, K, V = project(X, self.W_q, self.b_q), project(Z, self.W_k, self.b_k), project(Z, self.W_v, self.b_v)
        if is_causal:
            Y = F.scaled_dot_product_attention(Q, K, V, is_causal=True)
        else:
            Y = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask)
        return F.linear(rearrange(Y, "batch head t d -> batch t (head d)"), self.W_o, self.b_o)


# ---------------------------------------------------------------------------------------------
# Algorithm 6: layer normalisation
# ---------------------------------------------------------------------------------------------
def layer_norm(e: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Algorithm 6: ê ← layer_norm(e | γ, β), over the last axis (each token separately).

    The paper divides by √v; ``eps`` (default 1e-5, as in ``nn.LayerNorm``) is added to v so a
    constant vector does not divide by zero. ``eps=0`` gives the paper's formula exactly.
    """
    check_same_dtype(e=e, gamma=gamma, beta=beta)
    m = e.mean(dim=-1, keepdim=True)  # line 1: m ← Σ_i e[i] / d_e
    v = ((e - m) ** 2).mean(dim=-1, keepdim=True)  # line 2: v ← Σ_i (e[i] − m)² / d_e
    return (e - m) / torch.sqrt(v + eps) * gamma + beta  # line 3: ê = (e − m)/√v ⊙ γ + β


class LayerNorm(nn.Module):
    """Algorithm 6 with its parameters γ (ones) and β (zeros) of shape ``(d_e,)``."""

    def __init__(self, d_model: int, eps: float = 1e-5, fused: bool = False):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d_model))
        self.beta = nn.Parameter(torch.zeros(d_model))
        self.eps = eps
        self.fused = fused  # True: the same function through PyTorch's fused kernel

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_dtype(X, "X", self.gamma.dtype, "LayerNorm")
        if self.fused:
            return F.layer_norm(X, self.gamma.shape, self.gamma, self.beta, self.eps)
        return layer_norm(X, self.gamma, self.beta, self.eps)


# ---------------------------------------------------------------------------------------------
# Algorithm 7: unembedding
# ---------------------------------------------------------------------------------------------
def unembedding(e: torch.Tensor, W_u: torch.Tensor) -> torch.Tensor:
    """Algorithm 7: p ← softmax(W_u e), a distribution over the N_V tokens for each row of ``e``."""
    check_same_dtype(e=e, W_u=W_u)
    return torch.softmax(e @ W_u.T, dim=-1)  # line 1: return p = softmax(W_u e)


class Unembedding(nn.Module):
    """Algorithm 7 as a module, ``W_u (N_V, d_e)``.

    ``forward`` returns the **logits** ``W_u e``; the paper's distribution is their softmax
    (``unembedding``). Returning logits lets the loss use a log-softmax, which is exact where
    ``log(softmax(·))`` underflows.
    """

    def __init__(self, d_model: int, vocab_size: int):
        super().__init__()
        self.W_u = nn.Parameter(torch.randn(vocab_size, d_model) * 0.02)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_dtype(X, "X", self.W_u.dtype, "Unembedding")
        return X @ self.W_u.T


# ---------------------------------------------------------------------------------------------
# The position-wise MLP used inside Algorithms 8–10
# ---------------------------------------------------------------------------------------------
def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU's tanh approximation, GPT-2's activation (``gelu_new`` in Hugging Face's code)."""
    return F.gelu(x, approximate="tanh")


ACTIVATION_FUNCTIONS = {"gelu": F.gelu, "gelu_tanh": gelu_tanh, "relu": F.relu}


class MLP(nn.Module):
    """The MLP of Algorithms 8–10: ``W_mlp2 · act(W_mlp1 X + b_mlp1 1ᵀ) + b_mlp2 1ᵀ``, token-wise.

    ``W_mlp1 (d_mlp, d_e)``, ``W_mlp2 (d_e, d_mlp)``; ``activation`` is ``"gelu"``, ``"gelu_tanh"`` (GPT-2's) or ``"relu"``.
    """

    def __init__(self, d_model: int, d_mlp: int, activation: str, fused: bool = False):
        super().__init__()
        check_choice(activation, "activation", tuple(ACTIVATION_FUNCTIONS))
        self.activation = activation
        self.fused = fused  # True: bias added inside the matrix product (F.linear)
        self.W_mlp1 = nn.Parameter(torch.randn(d_mlp, d_model) * 0.02)
        self.b_mlp1 = nn.Parameter(torch.zeros(d_mlp))
        self.W_mlp2 = nn.Parameter(torch.randn(d_model, d_mlp) * 0.02)
        self.b_mlp2 = nn.Parameter(torch.zeros(d_model))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        check_dtype(X, "X", self.W_mlp1.dtype, "MLP")
        act = ACTIVATION_FUNCTIONS[self.activation]
        if self.fused:
            return F.linear(act(F.linear(X, self.W_mlp1, self.b_mlp1)), self.W_mlp2, self.b_mlp2)
        hidden = act(X @ self.W_mlp1.T + self.b_mlp1)
        return hidden @ self.W_mlp2.T + self.b_mlp2
