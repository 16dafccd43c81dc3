"""Count-based n-gram models: the baselines a trained language model must beat: add-one unigram and
bigram (:func:`ngram_log_loss`) and Witten–Bell interpolated n-grams of any order
(:func:`witten_bell_log_loss`)."""

from __future__ import annotations

import torch


def ngram_log_loss(train: torch.Tensor, evaluate: torch.Tensor, vocab_size: int, order: int,
                   smoothing: float = 1.0) -> float:
    """Mean −log p(x_t | x_{t−order+1} … x_{t−1}) in nats over ``evaluate``, with add-``smoothing``
    (Laplace) counts fitted on ``train``. ``order=1``: unigram; ``order=2``: bigram. The first
    ``order − 1`` tokens of ``evaluate`` are context only; a 2-D ``evaluate`` is a batch of windows,
    each scored on its own (no pair crosses from one row to the next)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    if order == 1:
        counts = torch.bincount(train, minlength=vocab_size).double() + smoothing
        log_p = (counts / counts.sum()).log()
        return -log_p[evaluate].mean().item()
    pairs = train[:-1] * vocab_size + train[1:]
    counts = torch.bincount(pairs, minlength=vocab_size ** 2).double().view(vocab_size, vocab_size) + smoothing
    log_p = (counts / counts.sum(dim=1, keepdim=True)).log()
    return -log_p[evaluate[..., :-1], evaluate[..., 1:]].mean().item()


def _gram_ids(tokens: torch.Tensor, order: int, vocab_size: int) -> torch.Tensor:
    """Each window of ``order`` consecutive tokens as one integer in base ``vocab_size``."""
    ids = torch.zeros(len(tokens) - order + 1, dtype=torch.int64)
    for k in range(order):
        ids = ids * vocab_size + tokens[k: len(tokens) - order + 1 + k].long()
    return ids


def _lookup(sorted_ids: torch.Tensor, values: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """``values`` at the positions of ``queries`` in ``sorted_ids`` (0 where a query is absent)."""
    where = torch.searchsorted(sorted_ids, queries).clamp(max=len(sorted_ids) - 1)
    return torch.where(sorted_ids[where] == queries, values[where], torch.zeros_like(values[where]))


def witten_bell_log_loss(train: torch.Tensor, evaluate: torch.Tensor, vocab_size: int, order: int) -> float:
    """Mean −log p(x_t | the previous ``order − 1`` tokens) in nats over ``evaluate`` (after its first
    ``order − 1`` tokens), for an n-gram model with Witten–Bell interpolation (no parameter to tune):

        p_k(w | h) = (c(h w) + N₁₊(h ·) · p_{k−1}(w | h')) / (c(h) + N₁₊(h ·)),

    where h' drops the oldest token of h, c counts in ``train`` and N₁₊(h ·) is the number of distinct
    tokens seen after h; an unseen context keeps p_{k−1}. p_1 is the add-one unigram."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an int >= 1, got {order!r}")
    if len(evaluate) < order:
        raise ValueError(f"evaluate must hold at least order={order} tokens, got {len(evaluate)}")
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    target = evaluate[order - 1:].long()
    p = (counts / counts.sum())[target]
    for k in range(2, order + 1):
        grams, gram_counts = torch.unique(_gram_ids(train, k, vocab_size), return_counts=True)
        contexts = grams // vocab_size
        context_ids, inverse = torch.unique(contexts, return_inverse=True)
        context_counts = torch.zeros(len(context_ids), dtype=torch.float64).index_add_(0, inverse, gram_counts.double())
        continuations = torch.bincount(inverse, minlength=len(context_ids)).double()  # N₁₊(h ·)
        queries = _gram_ids(evaluate, k, vocab_size)[order - k:]  # the k-gram ending at each target
        c_hw = _lookup(grams, gram_counts.double(), queries)
        c_h = _lookup(context_ids, context_counts, queries // vocab_size)
        n_h = _lookup(context_ids, continuations, queries // vocab_size)
        seen = c_h > 0
        p = torch.where(seen, (c_hw + n_h * p) / (c_h + n_h).clamp_min(1.0), p)
    return -p.log().mean().item()
