"""Gradient flow across positions: how much the loss at position t pulls on the state at s.

For a :class:`~mini_transformer.models.DTransformer` and a batch of sequences, the loss is a sum
over positions, ℒ = Σ_t ℓ_t, where ℓ_t = −log P[x[t+1], t] is the loss of the prediction made at
position t. For every state of the residual stream (X_0, then the stream after each of the 2L
updates; see :class:`~mini_transformer.models.ResidualTrace`) this module measures

    G[l, s, t] = ‖∂ℓ_t / ∂X_l[s]‖₂   (mean over the sequences of the batch),

for source positions s and loss positions t = 0 … ℓ−2 (the last position makes no scored
prediction and feeds none). Causal attention makes G[l, s, t] = 0 exactly for s > t. The
diagonal s = t is the gradient a state gets from its own prediction; the entries t > s are the
gradient that flows backwards in position, from later losses, which is what can train a position
to compute for the future (Wu, Morris & Levine 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import vjp, vmap

from .models import state_names
from .validation import check_tokens


@dataclass
class GradientFlow:
    """``G`` ``(2L+1, n, n)``: G[l, s, t] = mean over the batch of ‖∂ℓ_t/∂X_l[s]‖, n = ℓ − 1.
    ``names`` labels the states (``"X0"``, ``"L1.attn"``, …) as in the residual trace."""

    G: torch.Tensor
    names: list[str]

    @property
    def n_positions(self) -> int:
        return self.G.shape[-1]

    def own(self) -> torch.Tensor:
        """Per state: Σ_s G[l, s, s], the gradient norm each position gets from its own loss."""
        return self.G.diagonal(dim1=-2, dim2=-1).sum(-1)

    def future(self) -> torch.Tensor:
        """Per state: Σ_s Σ_{t>s} G[l, s, t], the gradient norm that comes from later losses."""
        return self.G.triu(diagonal=1).sum((-2, -1))

    def future_share(self) -> torch.Tensor:
        """Per state: future / (own + future), the share of the gradient norm (summed over (s, t)
        pairs) that reaches a state from losses at later positions."""
        future = self.future()
        return future / (future + self.own())

    def by_distance(self) -> torch.Tensor:
        """``(2L+1, n)``: entry [l, k] is the mean of G[l, s, s + k] over s: how strongly the loss
        k positions ahead pulls on a state."""
        n = self.n_positions
        return torch.stack([self.G.diagonal(offset=k, dim1=-2, dim2=-1).mean(-1) for k in range(n)], dim=-1)


def token_losses(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(batch, ℓ−1)``: −log P[x[b, t+1], t], Algorithm 13's line 5 one term per position."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")


def position_losses(model, x: torch.Tensor):
    """Forward pass with a residual trace; returns ``(token_losses (batch, ℓ−1), trace)``."""
    logits, trace = model(x, return_trace=True)
    return token_losses(logits, x), trace


def _check_batch(model, x: torch.Tensor) -> torch.Tensor:
    x = check_tokens(x, name="x", vocab_size=model.config.vocab_size, max_len=model.config.max_len)
    if x.shape[1] < 2:
        raise ValueError(f"x needs at least 2 tokens per sequence to have a loss, got length {x.shape[1]}")
    return x.to(next(model.parameters()).device)


def _norms(grads, n: int) -> torch.Tensor:
    """Stack per-state gradients ``(n_t, batch, ℓ, d)`` into G ``(states, s, t)``."""
    G = torch.stack([g[..., :n, :].norm(dim=-1).mean(dim=1) for g in grads])  # (states, t, s)
    return G.transpose(-1, -2)


def gradient_flow(model, x: torch.Tensor) -> GradientFlow:
    """G[l, s, t] for every state l of ``model`` on the batch ``x (batch, ℓ)``.

    One forward pass, then all ℓ−1 vector–Jacobian products at once. The states are made inputs
    of the function by zero perturbations added to them (``DTransformer.forward(perturbations=…)``),
    ``torch.func.vjp`` linearises the per-position losses (summed over the batch, whose sequences
    are independent) with respect to those inputs, and ``torch.func.vmap`` applies the pullback to
    every row of the identity, one row per loss position. Parameters get no gradient.
    """
    x = _check_batch(model, x)
    zeros = model.zero_perturbations(*x.shape)

    def per_position_losses(perturbations):
        return token_losses(model(x, perturbations=perturbations), x).sum(0)

    with torch.enable_grad():  # also works when called under torch.no_grad()
        losses, pullback = vjp(per_position_losses, zeros)
        n = losses.shape[0]
        identity = torch.eye(n, dtype=losses.dtype, device=losses.device)
        (grads,) = vmap(pullback)(identity)  # grads[i]: (n_t, batch, ℓ, d) for state i
    return GradientFlow(G=_norms(grads, n).detach(), names=state_names(model.config.n_layers))


def gradient_flow_naive(model, x: torch.Tensor) -> GradientFlow:
    """The same G with one backward pass per loss position: the reference implementation."""
    x = _check_batch(model, x)
    with torch.enable_grad():
        losses, trace = position_losses(model, x)
        per_position = losses.sum(0)
        n = per_position.shape[0]
        rows = [torch.autograd.grad(per_position[t], trace.states, retain_graph=True) for t in range(n)]
    grads = [torch.stack([row[i] for row in rows]) for i in range(len(trace.states))]
    return GradientFlow(G=_norms(grads, n).detach(), names=trace.names)
