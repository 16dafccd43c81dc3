"""k-hop induction heads (Sanford, Hsu & Telgarsky, ICML 2024): a task whose rounds must grow.

A sequence x_0 … x_{n−1} of letters (no letter twice in a row). One **hop** from a pointer p looks
up the letter at p, finds its last occurrence strictly before p, and moves the pointer to the
position just after it:

    hop(p) = 1 + max{ j < p : x_j = x_p }        (undefined if there is no such j)

One hop is the classic induction head (a 2-layer circuit). The k-hop target at position t is
x[hop^k(t)], the letter reached after k hops from t, or NONE if a hop is undefined on the way.
Each hop depends on where the previous one landed, so the k hops are sequential — but a position
can also advance *other* positions' pointers: with pointer doubling (every position composes its
own 2^r-hop map with the one at the position it points to), k hops take about log₂ k rounds.
Sanford et al. prove that depth ⌊log₂ k⌋ + 2 suffices and (under a conjecture on massively
parallel computation) that depth of order log k is needed at sub-linear width.

Labels are dense: every position has a target (a letter, or NONE = ``n_letters``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import device_of
from ..validation import check_int, check_positive_int


def sample_letters(n: int, length: int, n_letters: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, length)`` random letters in [0, n_letters) with no letter twice in a row."""
    n, length = check_positive_int(n, "n"), check_positive_int(length, "length")
    n_letters = check_int(n_letters, "n_letters", minimum=2)
    first = torch.randint(0, n_letters, (n, 1), generator=generator)
    steps = torch.randint(1, n_letters, (n, length - 1), generator=generator)  # a non-zero shift: never the same letter
    return torch.cat([first, steps], dim=1).cumsum(1) % n_letters


def hop_pointers(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(n, length)``: hop^k(t) for every position t (−1 where a hop is undefined)."""
    k = check_int(k, "k", minimum=0)
    n, length = x.shape
    n_letters = int(x.max()) + 1
    position = torch.arange(length).expand(n, length)
    # last[b, p, c] = max{ j ≤ p : x_j = c } (−1 if none), then shifted: strictly before p
    seen = torch.where(F.one_hot(x, n_letters).bool(), position[..., None], -1)
    last = seen.cummax(dim=1).values
    before = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], dim=1)
    pointer = position.clone()
    for _ in range(k):
        valid = pointer >= 0
        safe = pointer.clamp(min=0)
        letter = x.gather(1, safe)
        j = before[torch.arange(n)[:, None], safe, letter]
        pointer = torch.where(valid & (j >= 0), j + 1, torch.full_like(pointer, -1))
    return pointer


def targets(x: torch.Tensor, k: int, n_letters: int) -> torch.Tensor:
    """The k-hop label of every position: x[hop^k(t)], or NONE (= ``n_letters``) if undefined."""
    pointer = hop_pointers(x, k)
    return torch.where(pointer >= 0, x.gather(1, pointer.clamp(min=0)), torch.full_like(x, n_letters))


def batches(batch_size: int, length: int, n_letters: int, k: int, seed: int = 0):
    """Endless ``(x, y)`` training batches from their own generator."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        x = sample_letters(batch_size, length, n_letters, generator)
        yield x, targets(x, k, n_letters)


def loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the dense labels (NONE included)."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, n_letters: int, chunk: int = 500) -> float:
    """Accuracy on the positions whose k-hop target exists (NONE positions are easy and left out)."""
    device = device_of(model)
    correct = total = 0
    for xs, ys in zip(x.split(chunk), y.split(chunk)):
        predicted = model(xs.to(device)).argmax(-1).cpu()
        scored = ys != n_letters
        correct += (predicted[scored] == ys[scored]).sum().item()
        total += scored.sum().item()
    return correct / max(total, 1)
