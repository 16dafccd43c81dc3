"""Gradient flow across positions: how much the loss at position t pulls on the state at s.

For a :class:`~mini_transformer.models.DTransformer` and a batch of sequences, the loss is a sum
over positions, ℒ = Σ_t ℓ_t, where ℓ_t = −log P[x[t+1], t] is the loss of the prediction made at
position t. For every state of the residual stream (X_0, then the stream after each of the 2L
updates; state i is the i-th of ``state_names``: X0, L1.attn, L1.mlp, …; see
:class:`~mini_transformer.models.ResidualTrace`) this module measures

    G[i, s, t] = ‖∂ℓ_t / ∂X_i[s]‖₂   (mean over the sequences of the batch),

for source positions s and loss positions t = 0 … ℓ−2 (the last position makes no scored
prediction and feeds none). Causal attention makes G[i, s, t] = 0 exactly for s > t. The
diagonal s = t is the gradient a state gets from its own prediction; the entries t > s are the
gradient that flows backwards in position, from later losses, which is what can train a position
to compute for the future (Wu, Morris & Levine 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import vjp, vmap

from ..hooks import perturbed, zero_deltas
from ..models import device_of, state_names, trace
from ..training import token_losses
from ..validation import check_tokens


@dataclass
class GradientFlow:
    """``G`` ``(2L+1, n, n)``: G[i, s, t] = mean over the batch of ‖∂ℓ_t/∂X_i[s]‖, n = ℓ − 1.
    ``names`` labels the states (``"X0"``, ``"L1.attn"``, …) as in the residual trace."""

    G: torch.Tensor
    names: list[str]

    @property
    def n_positions(self) -> int:
        return self.G.shape[-1]

    def own(self) -> torch.Tensor:
        """Per state: Σ_s G[i, s, s], the gradient norm each position gets from its own loss."""
        return self.G.diagonal(dim1=-2, dim2=-1).sum(-1)

    def future(self) -> torch.Tensor:
        """Per state: Σ_s Σ_{t>s} G[i, s, t], the gradient norm that comes from later losses."""
        return self.G.triu(diagonal=1).sum((-2, -1))

    def future_share(self) -> torch.Tensor:
        """Per state: future / (own + future), the share of the gradient norm (summed over (s, t)
        pairs) that reaches a state from losses at later positions."""
        future = self.future()
        return future / (future + self.own())

    def by_distance(self) -> torch.Tensor:
        """``(2L+1, n)``: entry [i, k] is the mean of G[i, s, s + k] over s: how strongly the loss
        k positions ahead pulls on a state."""
        n = self.n_positions
        return torch.stack([self.G.diagonal(offset=k, dim1=-2, dim2=-1).mean(-1) for k in range(n)], dim=-1)


def position_losses(model, x: torch.Tensor):
    """Forward pass with a residual trace; returns ``(token_losses (batch, ℓ−1), trace)``."""
    logits, stream = trace(model, x)
    return token_losses(logits, x), stream


def _check_batch(model, x: torch.Tensor) -> torch.Tensor:
    x = check_tokens(x, name="x", vocab_size=model.config.vocab_size, max_len=model.config.max_len)
    if x.shape[1] < 2:
        raise ValueError(f"x needs at least 2 tokens per sequence to have a loss, got length {x.shape[1]}")
    return x.to(device_of(model))


def _norms(grads, n: int) -> torch.Tensor:
    """Stack per-state gradients ``(n_t, batch, ℓ, d)`` into G ``(states, s, t)``."""
    G = torch.stack([g[..., :n, :].norm(dim=-1).mean(dim=1) for g in grads])  # (states, t, s)
    return G.transpose(-1, -2)


def gradient_flow(model, x: torch.Tensor) -> GradientFlow:
    """G[i, s, t] for every state i of ``model`` on the batch ``x (batch, ℓ)``.

    One forward pass, then all ℓ−1 vector–Jacobian products at once. The states are made inputs
    of the function by zeros added to them at the model's hook points
    (:func:`~mini_transformer.hooks.perturbed`), ``torch.func.vjp`` linearises the per-position
    losses (summed over the batch, whose sequences are independent) with respect to those inputs,
    and ``torch.func.vmap`` applies the pullback to every row of the identity, one row per loss
    position. Parameters get no gradient.
    """
    x = _check_batch(model, x)
    zeros = zero_deltas(model, *x.shape)

    def per_position_losses(deltas):
        with perturbed(model, deltas):
            return token_losses(model(x), x).sum(0)

    with torch.enable_grad():  # also works when called under torch.no_grad()
        losses, pullback = vjp(per_position_losses, zeros)
        n = losses.shape[0]
        identity = torch.eye(n, dtype=losses.dtype, device=losses.device)
        (grads,) = vmap(pullback)(identity)  # grads[name]: (n_t, batch, ℓ, d)
    names = state_names(model.config.n_layers)
    return GradientFlow(G=_norms([grads[name] for name in names], n).detach(), names=names)


def gradient_flow_naive(model, x: torch.Tensor) -> GradientFlow:
    """The same G with one backward pass per loss position: the reference implementation."""
    x = _check_batch(model, x)
    with torch.enable_grad():
        losses, stream = position_losses(model, x)
        per_position = losses.sum(0)
        n = per_position.shape[0]
        rows = [torch.autograd.grad(per_position[t], stream.states, retain_graph=True) for t in range(n)]
    grads = [torch.stack([row[i] for row in rows]) for i in range(len(stream.states))]
    return GradientFlow(G=_norms(grads, n).detach(), names=stream.names)
