"""What a language model's final state at position t says about the characters after t + 1 (chapter 6).

Softmax probes read the state the unembedding reads (the final layer norm's output at position t);
every score is on held-out windows and comes per window, so callers can put a standard error on it. Two comparisons make a probe result mean something:

* for x_{t+1}, the model's own prediction is the ceiling (its unembedding *is* a softmax probe on that
  state), so a fitted probe that falls far below it is a weak probe, not a state without the information;
* for x_{t+2}, a state that knows x_{t+1} perfectly already says a lot about x_{t+2}. What the state
  holds *beyond* the next character is measured by a probe on the state joined with one-hot(x_{t+1})
  against a probe on one-hot(x_{t+1}) alone.
"""

from __future__ import annotations

import torch

from ..hooks import hooked
from ..models import device_of
from ..training import token_losses
from .probes import softmax_probe

READOUTS = ("model_t1", "probe_t1", "next_only_t2", "joined_t2", "read_t1", "read_joined_t2")


@torch.no_grad()
def readout_states(model, windows: torch.Tensor, point: str = "final_ln") -> torch.Tensor:
    """``(n, ℓ, d)``: the tensor at hook point ``point``: by default the final layer norm's output, the
    state the unembedding reads (so a softmax probe on it can match the model's own prediction); with
    ``point=f"L{L - 1}.mlp"`` the stream after layer L − 1, the last state that later positions read."""
    kept = []
    with hooked(model, {point: lambda X: kept.append(X.detach().cpu())}):
        model(windows.to(device_of(model)))
    return kept[0]


def future_token_readout(model, windows: torch.Tensor, l2: float = 1e-4) -> dict[str, dict[str, torch.Tensor]]:
    """Per held-out window (the second half of ``windows``; the first half fits the probes), the mean
    over positions t = 0 … ℓ−3 of the log loss (nats) and the top-1 accuracy of each readout:

    * ``model_t1``: the model's own prediction of x_{t+1} (the ceiling for ``probe_t1``);
    * ``probe_t1``: a softmax probe on the final state at t, for x_{t+1};
    * ``next_only_t2``: a softmax probe on one-hot(x_{t+1}) alone, for x_{t+2};
    * ``joined_t2``: a softmax probe on [final state at t, one-hot(x_{t+1})], for x_{t+2};
    * ``read_t1``, ``read_joined_t2``: the same two probes on the stream after layer L − 1 (the input
      state for L = 1), the last state that later positions read: pre-caching must live there (or
      earlier), not in the final state.

    Returns ``{readout: {"loss": (n_score,), "accuracy": (n_score,)}}``."""
    if windows.dim() != 2 or windows.shape[1] < 4:
        raise ValueError(f"windows must be (n, ℓ) token ids with ℓ ≥ 4, got shape {tuple(windows.shape)}")
    if len(windows) < 4:
        raise ValueError(f"windows must hold at least 4 windows (half fit, half score), got {len(windows)}")
    V, n = model.config.vocab_size, windows.shape[1]
    half, m = len(windows) // 2, n - 2  # positions t = 0 … n − 3 have both x_{t+1} and x_{t+2}
    windows = windows.cpu()
    states = readout_states(model, windows)[:, :m]
    L = model.config.n_layers
    read = readout_states(model, windows, f"L{L - 1}.mlp" if L > 1 else "X0")[:, :m]  # what later positions read
    t1, t2 = windows[:, 1:m + 1], windows[:, 2:m + 2]
    next_one_hot = torch.nn.functional.one_hot(t1, V).float()
    d = states.shape[-1]

    def probe(features, labels):
        k = features.shape[-1]
        nll, correct = softmax_probe(features[:half].reshape(-1, k), labels[:half].reshape(-1),
                                     features[half:].reshape(-1, k), labels[half:].reshape(-1), V, l2=l2)
        return {"loss": nll.reshape(-1, m).mean(1), "accuracy": correct.reshape(-1, m).mean(1)}

    with torch.no_grad():
        logits = model(windows[half:].to(device_of(model))).cpu()
    own_loss = token_losses(logits, windows[half:])[:, :m]
    return {"model_t1": {"loss": own_loss.mean(1),
                         "accuracy": (logits[:, :m].argmax(-1) == t1[half:]).float().mean(1)},
            "probe_t1": probe(states, t1),
            "next_only_t2": probe(next_one_hot, t2),
            "joined_t2": probe(torch.cat([states, next_one_hot], -1), t2),
            "read_t1": probe(read, t1),
            "read_joined_t2": probe(torch.cat([read, next_one_hot], -1), t2)}
