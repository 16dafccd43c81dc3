"""Composing permutations: the S3 word problem, a task whose answer needs serial steps.

The group S3 has 6 elements, the permutations of three objects. A sequence g_1 … g_n of random
elements defines the running products

    s_t = g_t ∘ g_{t−1} ∘ … ∘ g_1        (s_t = g_t ∘ s_{t−1}),

and the label at position t is s_t: the answer at t depends on *every* earlier element and on
their order (S3 is not commutative), so it is t − 1 dependent compositions deep. Chance is 1/6.

Two formats of the same problem:

* **silent**: the model reads g_1 … g_n and must output s_t at position t, with no written work
  (tokens 0–5 are the elements; the label is a separate target, not a next token);
* **written**: the sequence interleaves the elements with the running products,
  g_1 s_1 g_2 s_2 …, with s_t written as token 6 + s_t. Trained by next-token prediction on the
  s tokens; at test time the model writes each s_t itself (Algorithm 14, greedy) and reads it back,
  so each step needs one composition: s_t from g_t and the s_{t−1} it wrote.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from ..inference import d_inference
from ..models import device_of
from ..validation import check_positive_int, check_tokens

#: The six elements of S3, each as the images (π(0), π(1), π(2)); index 0 is the identity.
ELEMENTS = tuple(itertools.permutations(range(3)))
ORDER = len(ELEMENTS)  # 6
#: Vocabulary of the written format: the 6 elements g, then the 6 running products s.
WRITTEN_VOCAB = 2 * ORDER


def _composition_table() -> torch.Tensor:
    """table[a, b] = index of a ∘ b (apply b first, then a)."""
    index = {p: i for i, p in enumerate(ELEMENTS)}
    table = torch.empty(ORDER, ORDER, dtype=torch.long)
    for a, pa in enumerate(ELEMENTS):
        for b, pb in enumerate(ELEMENTS):
            table[a, b] = index[tuple(pa[pb[i]] for i in range(3))]
    return table


COMPOSE = _composition_table()

#: The sign of each element (+1 even, −1 odd): a homomorphism S3 → {±1}, so the sign of a product
#: is the product of the signs, whatever their order.
SIGN = torch.tensor([1 if sum(p[i] > p[j] for i in range(3) for j in range(i + 1, 3)) % 2 == 0 else -1
                     for p in ELEMENTS])


def running_products(g: torch.Tensor) -> torch.Tensor:
    """``s (batch, n)`` with s_t = g_t ∘ s_{t−1}, s_1 = g_1, for element ids ``g (batch, n)``."""
    g = check_tokens(g, name="g", vocab_size=ORDER, max_len=10**9)
    s = torch.empty_like(g)
    s[:, 0] = g[:, 0]
    for t in range(1, g.shape[1]):
        s[:, t] = COMPOSE[g[:, t], s[:, t - 1]]
    return s


def sample(batch_size: int, length: int, generator: torch.Generator | None = None):
    """``(g, s)``: ``batch_size`` uniform random sequences of ``length`` elements and their running
    products, both ``(batch, length)`` long tensors."""
    batch_size = check_positive_int(batch_size, "batch_size")
    length = check_positive_int(length, "length")
    g = torch.randint(0, ORDER, (batch_size, length), generator=generator)
    return g, running_products(g)


def silent_batches(batch_size: int, length: int, seed: int = 0):
    """Yield ``(g, s)`` batches of the silent format forever from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield sample(batch_size, length, generator)


def silent_loss(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's output at every position t against s_t (logits over the first
    6 tokens)."""
    logits = model(g)[..., :ORDER]
    return F.cross_entropy(logits.reshape(-1, ORDER), s.reshape(-1))


@torch.no_grad()
def silent_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(length,)``: the share of sequences whose s_t the model gets right, for t = 1 … n."""
    model.eval()
    logits = model(g.to(device_of(model)))[..., :ORDER]
    return (logits.argmax(-1).cpu() == s).float().mean(0)


@torch.no_grad()
def silent_sign_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(length,)``: how often the *sign* of the model's answer at t is the sign of s_t. The sign
    is order-free (a parity), so a model can get it right where it gets the element wrong."""
    model.eval()
    predicted = model(g.to(device_of(model)))[..., :ORDER].argmax(-1).cpu()
    return (SIGN[predicted] == SIGN[s]).float().mean(0)


def interleave(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The written format: ``(batch, 2n)`` tokens g_1, 6 + s_1, g_2, 6 + s_2, …"""
    return torch.stack([g, s + ORDER], dim=-1).flatten(1)


def written_batches(batch_size: int, length: int, seed: int = 0):
    """Yield written-format token batches ``(batch, 2 · length)`` forever from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield (interleave(*sample(batch_size, length, generator)),)


def written_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Next-token loss at the positions of the g tokens, whose next token is the written s_t
    (teacher forcing: the true s_{t−1} is in the input)."""
    logits = model(x)[:, 0::2]  # the prediction made after reading g_t
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1::2].reshape(-1))


@torch.no_grad()
def write_and_read(model, g: torch.Tensor) -> torch.Tensor:
    """Let the model write its own running products: feed g_1, let Algorithm 14 (τ = 0) write s_1,
    append g_2, let it write s_2, and so on. Returns the written products ``(batch, n)`` as element
    ids (a token outside 6 … 11 counts as wrong and becomes −1). No true s is ever shown."""
    g = check_tokens(g, name="g", vocab_size=ORDER, max_len=10**9)
    device = device_of(model)
    x = torch.empty(g.shape[0], 0, dtype=torch.long, device=device)
    written = []
    for t in range(g.shape[1]):
        x = torch.cat([x, g[:, t:t + 1].to(device)], dim=1)
        token = d_inference(model, x, n_generate=1, tau=0.0)  # Alg. 14, one step
        x = torch.cat([x, token], dim=1)
        written.append(token[:, 0])
    tokens = torch.stack(written, dim=1).cpu()
    return torch.where(tokens >= ORDER, tokens - ORDER, torch.full_like(tokens, -1))


def written_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(length,)``: the share of sequences whose self-written s_t is right, for t = 1 … n."""
    return (write_and_read(model, g) == s).float().mean(0)
