"""Ablation at one position: edit one position's residual state (e.g. erase a feature from it) and
measure how the loss changes at that position and at the positions after it.

A feature computed at position n and *read* by later positions (pre-caching, or any feature the
future uses) is causally used if removing it from X_l[n] raises the loss at n+1, n+2, …; a feature
only position n itself uses raises the loss at n. Editing X_l[n] changes no position before n
(causal attention), so the rise is measured at lags 0 … ``max_lag`` after n.
The state is changed through its hook point (:func:`~mini_transformer.hooks.hooked`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..hooks import hooked, state_names


def loss_rise_by_lag(model, position_losses: Callable[..., torch.Tensor], inputs: torch.Tensor,
                     targets: torch.Tensor, state: str, edit: Callable[[torch.Tensor], torch.Tensor],
                     positions: Sequence[int], max_lag: int, per_sequence: bool = False) -> torch.Tensor:
    """``rise (max_lag + 1,)``: rise[k] is the mean over ``positions`` n and over the batch of
    ℓ_{n+k}(``state`` at position n replaced by ``edit`` of it) − ℓ_{n+k}(clean).
    With ``per_sequence=True`` the batch is not averaged: ``rise (batch, max_lag + 1)`` (for a
    bootstrap over sequences).

    ``edit`` maps the states of one position, ``(batch, d)``, to their replacement (for example a
    :class:`~mini_transformer.analysis.probes.LinearEraser`, or
    :func:`~mini_transformer.analysis.probes.project_out` with a direction).
    ``position_losses(model, inputs, targets)`` must return the loss at every position,
    ``(batch, ℓ)``. ``state`` is a state name ("X0", "L1.attn", "L1.mlp", …). Every n + max_lag
    must be a position of the sequence."""
    names = state_names(model)
    if state not in names:
        raise ValueError(f"state must be one of {names}, got {state!r}")
    if not callable(edit):
        raise TypeError(f"edit must be a function of the states (batch, d), got {type(edit).__name__}")
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 0:
        raise ValueError(f"max_lag must be an integer ≥ 0, got {max_lag!r}")
    length = inputs.shape[1]
    positions = list(positions)
    if not positions or min(positions) < 0 or max(positions) + max_lag >= length:
        raise ValueError(f"positions must be non-empty, with 0 ≤ n and n + max_lag < {length} (the length); "
                         f"got {positions[:1]}…{positions[-1:]} with max_lag={max_lag}")
    if not isinstance(per_sequence, bool):
        raise TypeError(f"per_sequence must be a bool, got {type(per_sequence).__name__}")
    rise = torch.zeros(inputs.shape[0], max_lag + 1, dtype=torch.float64)
    with torch.no_grad():
        clean = position_losses(model, inputs, targets).double()
        for n in positions:
            def ablate(X, n=n):
                X = X.clone()
                X[:, n] = edit(X[:, n])
                return X

            with hooked(model, {state: ablate}):
                ablated = position_losses(model, inputs, targets).double()
            rise += (ablated[:, n: n + max_lag + 1] - clean[:, n: n + max_lag + 1]).cpu()
    rise = rise / len(positions)
    return rise if per_sequence else rise.mean(0)


def random_unit_directions(count: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(count, dim)`` directions drawn uniformly on the unit sphere (the control for an ablation)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an integer ≥ 1, got {count!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer ≥ 1, got {dim!r}")
    g = torch.randn(count, dim, generator=generator)
    return g / g.norm(dim=1, keepdim=True)
