"""Two-digit multiplication with filler tokens before the answer (chapter 7).

A problem a × b with a, b ∈ [10, 99] is written least significant digit first (the order in which
long multiplication produces digits and carries), followed by F filler tokens "." and the
four-digit product, also least significant digit first:

    a₀ a₁ × b₀ b₁ = . . … . c₀ c₁ c₂ c₃          (a = 10 a₁ + a₀, c = a · b, zero-padded)

The loss is the next-token loss on the four answer digits only; the fillers are fixed inputs that
carry no content, so they can help only as extra positions whose states later positions read
(Pfau, Merrill & Bowman, COLM 2024: width, not depth). Their states are trained only by gradient
that the answer's loss sends back into them: exactly what myopic training removes (chapter 5; Wu,
Morris & Levine 2024 find that padding helps a vanilla model and hurts a myopic one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..inference import d_inference
from ..models import device_of
from ..validation import check_positive_int

TIMES, EQUALS, FILLER = 10, 11, 12
VOCAB = 13
N_ANSWER = 4  # digits of the product, zero-padded


def _check_fillers(n_fillers: int) -> int:
    if isinstance(n_fillers, bool) or not isinstance(n_fillers, int) or n_fillers < 0:
        raise ValueError(f"n_fillers must be an int >= 0, got {n_fillers!r}")
    return n_fillers


def digits(n: torch.Tensor, count: int) -> torch.Tensor:
    """``(batch, count)`` decimal digits of ``n``, least significant first."""
    return torch.stack([(n // 10 ** i) % 10 for i in range(count)], dim=-1)


def sample(batch_size: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)``: uniform random two-digit operands, each ``(batch,)``."""
    batch_size = check_positive_int(batch_size, "batch_size")
    return (torch.randint(10, 100, (batch_size,), generator=generator),
            torch.randint(10, 100, (batch_size,), generator=generator))


def prompt(a: torch.Tensor, b: torch.Tensor, n_fillers: int) -> torch.Tensor:
    """``(batch, 6 + F)`` tokens a₀ a₁ × b₀ b₁ = followed by ``n_fillers`` fillers."""
    n_fillers = _check_fillers(n_fillers)
    batch = a.shape[0]
    parts = [digits(a, 2), torch.full((batch, 1), TIMES), digits(b, 2), torch.full((batch, 1), EQUALS),
             torch.full((batch, n_fillers), FILLER)]
    return torch.cat(parts, dim=1)


def problems(a: torch.Tensor, b: torch.Tensor, n_fillers: int) -> torch.Tensor:
    """The whole sequence: the prompt, then the product's four digits (least significant first)."""
    return torch.cat([prompt(a, b, n_fillers), digits(a * b, N_ANSWER)], dim=1)


def batches(batch_size: int, n_fillers: int, seed: int = 0):
    """Yield ``(x,)`` training sequences forever from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield (problems(*sample(batch_size, generator), n_fillers),)


def answer_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Next-token loss on the answer digits only (the predictions made at the four positions before
    each digit: the last filler or "=", then c₀, c₁, c₂)."""
    logits = model(x)[:, -N_ANSWER - 1:-1]
    return F.cross_entropy(logits.reshape(-1, VOCAB), x[:, -N_ANSWER:].reshape(-1))


@torch.no_grad()
def exact_match(model, a: torch.Tensor, b: torch.Tensor, n_fillers: int) -> float:
    """Share of problems whose four product digits the model writes right, greedily (Algorithm 14,
    τ = 0), from the prompt alone."""
    written = d_inference(model, prompt(a, b, n_fillers).to(device_of(model)), n_generate=N_ANSWER, tau=0.0)
    return (written.cpu() == digits(a * b, N_ANSWER)).all(dim=1).float().mean().item()
