"""Continuous thoughts (Hao et al. 2024, "Coconut", arXiv 2412.06769): the last hidden state is fed
back as the next input, so a model can think for more rounds than its depth without writing a token.

A *thought position* p holds no token. Its input is the last hidden state of the position before it,
h = layer_norm(X_{2L}[p − 1]) (the vector Algorithm 10's line 10 hands to the unembedding), plus the
positional embedding W_p[:, p] as for any input. The rest of Algorithm 10 is unchanged: the thought
position attends to the past, and later positions attend to it. Both go through the model's hook
points: h is read at ``"final_ln"`` (the final layer norm's output, before W_u) and written at
``"X0.token"`` in place of the token embedding W_e[:, x[p]], so the model adds W_p[:, p] itself.

Because the input at p is computed from the output at p − 1, thoughts cannot be teacher-forced in
one pass: with c thought positions, :func:`think` runs c + 1 forward passes, each one filling the next
thought, which is why training time grows with c. Causality makes the final pass consistent: the
states before a thought never depend on it, so every thought equals the hidden state that the final
pass computes before it (a test checks this).

Unlike a written token, the fed-back vector is differentiable: a loss after the thoughts sends
gradient back through every one of them (``detach=False``, Coconut's choice); ``detach=True`` cuts
that edge, as sampling a token does.
"""

from __future__ import annotations

import torch

from ..hooks import hooked, perturbed, state_names, zero_deltas
from ..models import DTransformer
from ..validation import check_tokens


def thought_mask(x: torch.Tensor, thought_token: int) -> torch.Tensor:
    """``(batch, ℓ)`` booleans: the positions of ``x`` that hold ``thought_token`` (placeholders)."""
    return x == thought_token


def think(model: DTransformer, x: torch.Tensor, thoughts: torch.Tensor, detach: bool = False,
          deltas: dict[str, torch.Tensor] | None = None):
    """Run ``model`` on token ids ``x (batch, ℓ)`` in which the positions marked by ``thoughts``
    (booleans of the same shape) are continuous thoughts; returns ``(logits, fed_back)``.

    Every row must have its thoughts at the same positions (a batch shares one format), and no thought
    may sit at position 0 (it needs a position before it). The token id at a thought position is a
    placeholder: only its positional embedding is used. ``fed_back`` is ``(batch, c, d_e)``: the vector
    each of the c thoughts received, in order. ``detach=True`` feeds back ``sg(h)``: the values are
    the same, but no gradient crosses from a thought to the position before it. ``deltas`` (as for
    :func:`~mini_transformer.hooks.perturbed`) are added to the named states in every pass, after a
    thought is fed in and before the top state is read: their gradient is the total gradient of each
    state, through the final pass and through every thought it feeds (:func:`state_gradients`).
    """
    if not isinstance(model, DTransformer):
        raise TypeError(f"model must be a DTransformer, got {type(model).__name__}")
    x = check_tokens(x, name="x", vocab_size=model.config.vocab_size, max_len=model.config.max_len)
    if not isinstance(thoughts, torch.Tensor) or thoughts.dtype != torch.bool or thoughts.shape != x.shape:
        raise ValueError(f"thoughts must be a bool tensor of x's shape {tuple(x.shape)}, got "
                         f"{getattr(thoughts, 'dtype', type(thoughts).__name__)} {tuple(getattr(thoughts, 'shape', ()))}")
    if not (thoughts == thoughts[:1]).all():
        raise ValueError("thoughts must mark the same positions in every row of the batch")
    positions = thoughts[0].nonzero().flatten().tolist()
    if positions and positions[0] == 0:
        raise ValueError("a thought cannot sit at position 0: it is fed by the position before it")

    fed_back: list[torch.Tensor] = []  # the thoughts found so far, in order
    last_hidden: dict[str, torch.Tensor] = {}

    def feed(E: torch.Tensor) -> torch.Tensor:
        # the token embeddings: at a thought position the fed-back vector replaces W_e[:, x[p]]
        # (the model then adds W_p[:, p], so X_0[:, p] = h + W_p[:, p])
        if not fed_back:
            return E
        E = E.clone()
        for p, h in zip(positions, fed_back):
            E[:, p] = h
        return E

    def keep_final(H: torch.Tensor) -> None:
        last_hidden["H"] = H  # layer_norm(X_2L) at every position (line 10)

    for _ in range(len(positions) + 1):  # pass j fills thought j (0-based); the last pass reads them all
        with perturbed(model, deltas or {}), hooked(model, {"X0.token": feed, "final_ln": keep_final}):
            logits = model(x)
        if len(fed_back) == len(positions):
            break
        p = positions[len(fed_back)]
        h = last_hidden["H"][:, p - 1]  # line 10's layer_norm of the state before p
        fed_back.append(h.detach() if detach else h)
    stacked = torch.stack(fed_back, 1) if fed_back else x.new_zeros((x.shape[0], 0, model.config.d_model),
                                                                    dtype=logits.dtype)
    return logits, stacked


def state_gradients(model: DTransformer, x: torch.Tensor, thoughts: torch.Tensor, loss_fn,
                    detach: bool = False) -> torch.Tensor:
    """``G (2L + 1, ℓ)``: the batch mean of ‖∂ loss / ∂X_i[p]‖ for every state of the grid, where
    ``loss = loss_fn(logits)`` and the logits come from :func:`think` (chapter 3's G, with thoughts).
    With ``detach=False`` a state's gradient includes what reaches it back through the thoughts it
    feeds; with ``detach=True`` only what reaches it through attention and the residual stream, as
    for a written token (no gradient crosses sampling). Give ``loss_fn`` a loss summed over the
    batch so that each sequence's gradient is its own."""
    deltas = zero_deltas(model, x.shape[0], x.shape[1])
    for delta in deltas.values():
        delta.requires_grad_(True)
    logits, _ = think(model, x, thoughts, detach=detach, deltas=deltas)
    grads = torch.autograd.grad(loss_fn(logits), [deltas[name] for name in state_names(model)])
    return torch.stack([g.norm(dim=-1).mean(0) for g in grads])
