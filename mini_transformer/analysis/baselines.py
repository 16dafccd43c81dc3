"""Count-based n-gram models: the baselines a trained language model must beat."""

from __future__ import annotations

import torch


def ngram_log_loss(train: torch.Tensor, evaluate: torch.Tensor, vocab_size: int, order: int,
                   smoothing: float = 1.0) -> float:
    """Mean −log p(x_t | x_{t−order+1} … x_{t−1}) in nats over ``evaluate``, with add-``smoothing``
    (Laplace) counts fitted on ``train``. ``order=1``: unigram; ``order=2``: bigram. The first
    ``order − 1`` tokens of ``evaluate`` are context only."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    if order == 1:
        counts = torch.bincount(train, minlength=vocab_size).double() + smoothing
        log_p = (counts / counts.sum()).log()
        return -log_p[evaluate].mean().item()
    pairs = train[:-1] * vocab_size + train[1:]
    counts = torch.bincount(pairs, minlength=vocab_size ** 2).double().view(vocab_size, vocab_size) + smoothing
    log_p = (counts / counts.sum(dim=1, keepdim=True)).log()
    return -log_p[evaluate[:-1], evaluate[1:]].mean().item()
