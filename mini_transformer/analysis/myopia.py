"""Myopic training (Wu, Morris & Levine 2024): no gradient from a loss into *past* positions.

Write the loss as ℒ = Σ_t ℓ_t and untie the parameters per position: θ_t does everything computed
*at* position t, including the key and value maps that t applies to the past states it reads; the
past states themselves come from their own copies θ_s. The true gradient is
Σ_t Σ_{s≤t} ∂ℓ_t/∂θ_s (all copies equal to θ). Its diagonal part, Σ_t ∂ℓ_t/∂θ_t, is the **myopic**
gradient; the off-diagonal part (s < t) is what can train a position to compute features that are
useful only later (*pre-caching*).

In code, every attention layer computes the keys and values of the states it reads from
**detached** inputs, K̃ = W_k·sg(X̃) + b_k, Ṽ = W_v·sg(X̃) + b_v, while a position's own key and
value stay live: the diagonal score uses the live key, S[t, t] = q_t·k_t, and the output is
A·Ṽ + diag(A) ⊙ (V − Ṽ), numerically A·V. The forward pass is unchanged bit for bit; only the
gradient differs. ``beta`` interpolates: it scales the gradient at every read of another position's
state, so a path that crosses positions k times is scaled by β^k; β = 1 is vanilla (myopic +
off-diagonal), β = 0 myopic. ``TransformerConfig(zero_past=True)`` is the authors' "transformer
bigram" baseline: past keys and values are zero, so a position sees only itself (this one changes
the forward pass, so it is a config field and is saved with the model).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from ..validation import check_real, check_same_dtype


# Why a custom autograd function: the authors' two-line alternative, read = β·X + (1 − β)·sg(X) with
# keys and values computed from both `read` and X, gives the same gradients (≤ 1e-16 apart in float64
# at β = 0 and 0.3) but needs a second projection for keys and values: on chapter 5's training step
# (2 threads) it cost 1.30× a vanilla step, against 1.13× for this function.
class _ReadAndOwn(torch.autograd.Function):
    """Y = X Wᵀ + b, returned twice with the same values: ``read`` (how *other* positions see a
    state) and ``own`` (how the position sees itself). Backward: W and b get the gradient of both;
    X gets the gradient of ``own`` plus β times that of ``read``. This equals computing ``read``
    from sg(X) (β = 0) with one projection instead of two."""

    generate_vmap_rule = True  # lets torch.func (vmap, vjp) run through it

    @staticmethod
    def forward(X, W, b, beta):
        Y = X @ W.mT + b
        return Y, Y.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, b, beta = inputs
        ctx.save_for_backward(X, W)
        ctx.beta = beta
        ctx.b_shape = b.shape

    @staticmethod
    def backward(ctx, grad_read, grad_own):
        X, W = ctx.saved_tensors
        grad_X = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_X = ((grad_own + ctx.beta * grad_read) @ W).sum_to_size(X.shape)
        total = grad_read + grad_own
        if ctx.needs_input_grad[1]:
            grad_W = (total.mT @ X).sum_to_size(W.shape)
        if ctx.needs_input_grad[2]:
            grad_b = total.sum_to_size(ctx.b_shape)
        return grad_X, grad_W, grad_b, None


def myopic_attention(X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask, beta: float = 0.0):
    """Algorithm 4 for self-attention (Z = X), with the gradient into other positions scaled by β.

    Arguments and returns as :func:`~mini_transformer.algorithms.attention` (the ``kernel`` of
    :class:`~mini_transformer.algorithms.MHAttention`). The keys and values others read, K̃ and Ṽ,
    equal W_k·sg(X̃) and W_v·sg(X̃) for β = 0 (see :class:`_ReadAndOwn`).
    """
    if Z is not X:
        raise ValueError("myopic attention is self-attention: Z must be X")
    check_same_dtype(X=X, W_q=W_q, b_q=b_q, W_k=W_k, b_k=b_k, W_v=W_v, b_v=b_v)
    Q = X @ W_q.mT + b_q  # Alg. 4, line 1
    K_read, K = _ReadAndOwn.apply(X, W_k, b_k, beta)  # line 2: K̃ (read by others), K (own)
    V_read, V = _ReadAndOwn.apply(X, W_v, b_v, beta)  # line 3: Ṽ (read by others), V (own)
    S = Q @ K_read.mT  # line 4
    own = (Q * (K - K_read)).sum(-1)  # 0 in value; puts the live key on the diagonal
    S = S + torch.diag_embed(own)  # S[t, t] = q_t · k_t
    S = S.masked_fill(~mask, float("-inf"))  # line 5
    A = torch.softmax(S / math.sqrt(Q.shape[-1]), dim=-1)  # line 6
    own_weight = A.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
    return A @ V_read + own_weight * (V - V_read), A  # A·Ṽ + diag(A) ⊙ (V − Ṽ)


class MyopicKernel:
    """The attention kernel :func:`set_myopia` installs in each layer: :func:`myopic_attention` at ``beta``."""

    def __init__(self, beta: float):
        self.beta = beta

    def __call__(self, X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask):
        return myopic_attention(X, Z, W_q, b_q, W_k, b_k, W_v, b_v, mask, beta=self.beta)

    def __repr__(self) -> str:
        return f"MyopicKernel(beta={self.beta})"


def _check_model(model) -> None:
    if type(model).__name__ != "DTransformer":
        raise TypeError(f"model must be a DTransformer (myopia is defined for causal self-attention), "
                        f"got {type(model).__name__}")
    if model.config.zero_past:
        raise ValueError("a transformer bigram (config.zero_past) reads nothing from the past: myopia does not apply")


def set_myopia(model, beta: float = 0.0) -> None:
    """Make every attention layer of a DTransformer myopic to degree β (1: vanilla, 0: myopic;
    in between, each crossing from one position's state into another's computation is scaled by β).
    β changes only gradients, never the forward pass. (The "transformer bigram", which does change
    the forward pass, is a config option: ``TransformerConfig(..., zero_past=True)``.) β may be any
    real number type (a NumPy scalar, a 0-d tensor, …), not a bool."""
    beta = check_real(beta, "beta", 0, 1)
    _check_model(model)
    for layer in model.layers:
        layer.attn.kernel = None if beta == 1 else MyopicKernel(beta)


def myopia_beta(model) -> float:
    """The β of a DTransformer's first layer: 1.0 for vanilla attention."""
    kernel = model.layers[0].attn.kernel
    return kernel.beta if isinstance(kernel, MyopicKernel) else 1.0


@contextmanager
def myopic(model, beta: float = 0.0):
    """``with myopic(model): …`` runs the block with myopic attention (β = 0 by default), then
    restores every layer's previous attention kernel."""
    _check_model(model)
    previous = [layer.attn.kernel for layer in model.layers]
    set_myopia(model, beta)
    try:
        yield model
    finally:
        for layer, kernel in zip(model.layers, previous):
            layer.attn.kernel = kernel


def parameter_gradients(model, loss_fn, *batch, beta: float = 1.0) -> list[torch.Tensor]:
    """The gradient of ``loss_fn(model, *batch)`` with respect to every parameter, with attention
    myopic to degree β (1: vanilla, 0: myopic). Leaves ``.grad`` untouched."""
    with myopic(model, beta), torch.enable_grad():  # also under torch.no_grad()
        loss = loss_fn(model, *batch)
        return list(torch.autograd.grad(loss, list(model.parameters())))


def gradient_decomposition(model, loss_fn, *batch) -> dict[str, list[torch.Tensor]]:
    """``{"vanilla", "myopic", "off_diagonal"}`` parameter gradients, with
    off_diagonal = vanilla − myopic = Σ_t Σ_{s<t} ∂ℓ_t/∂θ_s."""
    vanilla = parameter_gradients(model, loss_fn, *batch, beta=1.0)
    myopic_ = parameter_gradients(model, loss_fn, *batch, beta=0.0)
    return {"vanilla": vanilla, "myopic": myopic_,
            "off_diagonal": [v - m for v, m in zip(vanilla, myopic_)]}


def flat(gradients: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in gradients])


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Cosine of the angle between two parameter gradients."""
    return torch.nn.functional.cosine_similarity(flat(a), flat(b), dim=0).item()


def top_parameters(model) -> list[str]:
    """Names of the parameters in the top layer, the final layer norm and the unembedding. Nothing
    above them reads another position, so the vanilla and the myopic rule give them the same
    gradient, except the top layer's first layer norm (``ln_attn``), whose output at a past position
    feeds the keys and values read there."""
    top = (f"layers.{model.config.n_layers - 1}.", "final_ln.", "unembedding.")
    return [name for name, _ in model.named_parameters() if name.startswith(top)]


def gradient_cosines(model, loss_fn, *batch) -> tuple[float, float]:
    """cos ∠(vanilla gradient, myopic gradient) of ``loss_fn(model, *batch)``: over all parameters,
    and over the embeddings and the layers below the top (:func:`top_parameters`). The first is
    partly 1 by construction (the top gets nearly the same gradient under both rules); the second
    is the informative one."""
    parts = gradient_decomposition(model, loss_fn, *batch)
    top = set(top_parameters(model))
    below = [i for i, (name, _) in enumerate(model.named_parameters()) if name not in top]
    return (cosine(parts["vanilla"], parts["myopic"]),
            cosine([parts["vanilla"][i] for i in below], [parts["myopic"][i] for i in below]))
