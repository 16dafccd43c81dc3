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
    """What the losses send into every state of the stream, for one batch, n = ℓ − 1 positions.

    ``G (2L+1, n, n)``: G[i, s, t] = mean over the batch of ‖∂ℓ_t/∂X_i[s]‖, each loss's pull alone.
    ``own_norm (2L+1, n)``: mean ‖O_i[s]‖, with O_i[s] = ∂ℓ_s/∂X_i[s], the gradient of the own loss.
    ``future_norm (2L+1, n)``: mean ‖F_i[s]‖, with F_i[s] = Σ_{t>s} ∂ℓ_t/∂X_i[s], the *summed* gradient
    of all later losses, the vector training actually adds to the own one.
    ``cosine (2L+1, n)``: mean cos(F_i[s], O_i[s]) (0 where F_i[s] = 0).
    ``names`` labels the states (``"X0"``, ``"L1.attn"``, …) as in the residual trace.
    """

    G: torch.Tensor
    names: list[str]
    own_norm: torch.Tensor
    future_norm: torch.Tensor
    cosine: torch.Tensor

    @property
    def n_positions(self) -> int:
        return self.G.shape[-1]

    def summed_future_share(self) -> torch.Tensor:
        """Per state: Σ_s ‖F_i[s]‖ / (Σ_s ‖F_i[s]‖ + Σ_s ‖O_i[s]‖), the share of the gradient vectors'
        size that later losses contribute once their gradients are added up (the headline)."""
        future, own = self.future_norm.sum(-1), self.own_norm.sum(-1)
        return future / (future + own)

    def mean_cosine(self) -> torch.Tensor:
        """Per state: the mean over positions of cos(F_i[s], O_i[s]): does the future pull the same
        way as the own loss (1), across it (0), or against it (−1)?"""
        return self.cosine.mean(-1)

    def own(self) -> torch.Tensor:
        """Per state: Σ_s G[i, s, s], the gradient norm each position gets from its own loss."""
        return self.G.diagonal(dim1=-2, dim2=-1).sum(-1)

    def future(self) -> torch.Tensor:
        """Per state: Σ_s Σ_{t>s} G[i, s, t], the later losses' gradient norms, summed one by one."""
        return self.G.triu(diagonal=1).sum((-2, -1))

    def future_share(self) -> torch.Tensor:
        """Per state: future / (own + future) with norms summed loss by loss (the second reading).
        Many small, partly cancelling vectors add up to a large sum of norms, so this share is
        always at least :meth:`summed_future_share`; it measures how much pull there is, not
        the gradient that training applies."""
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


def _flow(grads, n: int, names: list[str]) -> GradientFlow:
    """Reduce per-loss state gradients, one ``(n_t, batch, ℓ, d)`` tensor per state, to a GradientFlow."""
    G, own_norm, future_norm, cosine = [], [], [], []
    for g in grads:
        g = g[..., :n, :].detach()  # (t, batch, s, d): the last position feeds no loss
        G.append(g.norm(dim=-1).mean(dim=1).transpose(-1, -2))  # (s, t)
        own = g.diagonal(dim1=0, dim2=2).permute(0, 2, 1)  # (batch, s, d): ∂ℓ_s/∂X[s]
        future = g.sum(0) - own  # Σ_{t>s}: the terms with t < s are exactly zero (causal mask)
        own_n, future_n = own.norm(dim=-1), future.norm(dim=-1)
        dot = (own * future).sum(-1)
        cos = torch.where(future_n > 0, dot / (own_n * future_n).clamp_min(1e-30), torch.zeros_like(dot))
        own_norm.append(own_n.mean(0))
        future_norm.append(future_n.mean(0))
        cosine.append(cos.mean(0))
    return GradientFlow(G=torch.stack(G), names=names, own_norm=torch.stack(own_norm),
                        future_norm=torch.stack(future_norm), cosine=torch.stack(cosine))


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
    return _flow([grads[name] for name in names], n, names)


def gradient_flow_naive(model, x: torch.Tensor) -> GradientFlow:
    """The same G with one backward pass per loss position: the reference implementation."""
    x = _check_batch(model, x)
    with torch.enable_grad():
        losses, stream = position_losses(model, x)
        per_position = losses.sum(0)
        n = per_position.shape[0]
        rows = [torch.autograd.grad(per_position[t], stream.states, retain_graph=True) for t in range(n)]
    grads = [torch.stack([row[i] for row in rows]) for i in range(len(stream.states))]
    return _flow(grads, n, stream.names)


def sequence_flows(model, x: torch.Tensor) -> list[GradientFlow]:
    """One :class:`GradientFlow` per sequence of ``x (batch, ℓ)``: the samples whose mean
    (:func:`mean_flow`) is ``gradient_flow(model, x)``, for standard errors over sequences."""
    return [gradient_flow(model, x[i:i + 1]) for i in range(len(x))]


def mean_flow(flows: list[GradientFlow]) -> GradientFlow:
    """The flow of a batch from its sequences' flows: every field is a mean over the batch."""
    if not flows:
        raise ValueError("flows must hold at least one GradientFlow, got an empty list")
    return GradientFlow(G=torch.stack([f.G for f in flows]).mean(0), names=flows[0].names,
                        own_norm=torch.stack([f.own_norm for f in flows]).mean(0),
                        future_norm=torch.stack([f.future_norm for f in flows]).mean(0),
                        cosine=torch.stack([f.cosine for f in flows]).mean(0))
