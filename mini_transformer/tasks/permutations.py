"""Composing permutations: the word problem of a finite group (S3 here, A5 for the compiled scan).

The group S3 has 6 elements, the permutations of three objects. A sequence g_1 … g_n of random
elements defines the running products

    s_t = g_t ∘ g_{t−1} ∘ … ∘ g_1        (s_t = g_t ∘ s_{t−1}),

and the label at position t is s_t: the answer at t depends on *every* earlier element and on
their order (S3 is not commutative). Chance is 1/6. Written left to right the natural algorithm is
t − 1 dependent compositions, but composition is associative, so a parallel prefix (a scan) needs
only ⌈log₂ t⌉ rounds; and S3 is a solvable group, so a constant number of rounds suffices at every
length (Liu et al., ICLR 2023). The word problem of A5 (the 60 even permutations of five objects,
the smallest non-solvable group) is NC¹-complete: no fixed depth is believed to solve it at every
length (Merrill, Petty & Sabharwal, ICML 2024). ``A5_COMPOSE`` is its table.

Two formats of the same problem:

* **silent**: the model reads g_1 … g_n and must output s_t at position t, with no written work
  (tokens 0–5 are the elements; the label is a separate target, not a next token);
* **filler**: the sequence interleaves the elements with a fixed filler token ".",
  g_1 . g_2 . …, and the model must output s_t at the "." after g_t: the positions of the written
  format without its content (Pfau, Merrill & Bowman, COLM 2024, for why that adds width, not depth);
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


def composition_table(elements) -> torch.Tensor:
    """``table[a, b]`` = index of a ∘ b (apply b first, then a) for a list of permutations, each as
    its images (π(0), …, π(n−1)); the list must be closed under composition (a group)."""
    elements = [tuple(p) for p in elements]
    index = {p: i for i, p in enumerate(elements)}
    table = torch.empty(len(elements), len(elements), dtype=torch.long)
    for a, pa in enumerate(elements):
        for b, pb in enumerate(elements):
            product = tuple(pa[pb[i]] for i in range(len(pb)))
            if product not in index:
                raise ValueError(f"elements must be closed under composition: {pa} ∘ {pb} = {product} is missing")
            table[a, b] = index[product]
    return table


def _is_even(p) -> bool:
    return sum(p[i] > p[j] for i in range(len(p)) for j in range(i + 1, len(p))) % 2 == 0


COMPOSE = composition_table(ELEMENTS)

#: A5, the 60 even permutations of five objects (index 0 is the identity), and its table.
A5_ELEMENTS = tuple(p for p in itertools.permutations(range(5)) if _is_even(p))
A5_COMPOSE = composition_table(A5_ELEMENTS)

#: The sign of each element (+1 even, −1 odd): a homomorphism S3 → {±1}, so the sign of a product
#: is the product of the signs, whatever their order.
SIGN = torch.tensor([1 if _is_even(p) else -1 for p in ELEMENTS])


def running_products(g: torch.Tensor, table: torch.Tensor = COMPOSE) -> torch.Tensor:
    """``s (batch, n)`` with s_t = g_t ∘ s_{t−1}, s_1 = g_1, for element ids ``g (batch, n)`` of the
    group whose composition table is ``table`` (default S3's)."""
    if not isinstance(table, torch.Tensor) or table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError("table must be a square composition table (a tensor of shape (|G|, |G|))")
    g = check_tokens(g, name="g", vocab_size=table.shape[0], max_len=10**9)
    s = torch.empty_like(g)
    s[:, 0] = g[:, 0]
    for t in range(1, g.shape[1]):
        s[:, t] = table[g[:, t], s[:, t - 1]]
    return s


def sample(batch_size: int, length: int, generator: torch.Generator | None = None,
           table: torch.Tensor = COMPOSE):
    """``(g, s)``: ``batch_size`` uniform random sequences of ``length`` elements and their running
    products, both ``(batch, length)`` long tensors (of S3, or of the group of ``table``)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    length = check_positive_int(length, "length")
    g = torch.randint(0, table.shape[0], (batch_size, length), generator=generator)
    return g, running_products(g, table)


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


#: The filler token "." of the filler format (vocabulary: the 6 elements, then ".").
FILLER = ORDER
FILLER_VOCAB = ORDER + 1


def with_fillers(g: torch.Tensor) -> torch.Tensor:
    """The filler format: ``(batch, 2n)`` tokens g_1, ".", g_2, ".", … (the written format's
    positions, with a fixed token where it writes s_t)."""
    g = check_tokens(g, name="g", vocab_size=ORDER, max_len=10**9)
    return torch.stack([g, torch.full_like(g, FILLER)], dim=-1).flatten(1)


def filler_batches(batch_size: int, length: int, seed: int = 0):
    """Yield ``(x, s)`` filler-format batches forever: ``x (batch, 2·length)``, ``s (batch, length)``."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        g, s = sample(batch_size, length, generator)
        yield with_fillers(g), s


def filler_loss(model, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's output at each "." position (the one after g_t) against s_t."""
    logits = model(x)[:, 1::2, :ORDER]
    return F.cross_entropy(logits.reshape(-1, ORDER), s.reshape(-1))


@torch.no_grad()
def filler_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(length,)``: the share of sequences whose s_t the model outputs right at the "." after g_t."""
    model.eval()
    logits = model(with_fillers(g).to(device_of(model)))[:, 1::2, :ORDER]
    return (logits.argmax(-1).cpu() == s).float().mean(0)


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


#: The placeholder at a continuous-thought position (chapter 7): vocabulary = the written format's
#: 12 tokens, then this one. Only its position is used (analysis/thoughts.py feeds a vector in).
THOUGHT = WRITTEN_VOCAB
THOUGHT_VOCAB = WRITTEN_VOCAB + 1


def with_thoughts(g: torch.Tensor, s: torch.Tensor, n_thoughts: int) -> torch.Tensor:
    """The chain format of chapter 7: ``(batch, 2n − 1)`` tokens g_1, w_1, g_2, w_2, …, g_n, where the
    answer s_n is what the model outputs after g_n and each w_t (t < n) is either the written token
    6 + s_t or, for the first ``n_thoughts`` steps, the placeholder ``THOUGHT`` (a continuous thought
    fills it). ``n_thoughts = 0`` is the written format without its last token; ``n − 1``: every
    step a thought (a curriculum stage of Hao et al. 2024 replaces written steps from the first on)."""
    g = check_tokens(g, name="g", vocab_size=ORDER, max_len=10**9)
    if not isinstance(s, torch.Tensor) or s.shape != g.shape:
        raise ValueError(f"s must be a tensor of g's shape {tuple(g.shape)}, got {tuple(getattr(s, 'shape', ()))}")
    n = g.shape[1]
    if isinstance(n_thoughts, bool) or not isinstance(n_thoughts, int) or not 0 <= n_thoughts <= n - 1:
        raise ValueError(f"n_thoughts must be an int in [0, {n - 1}] (one per step before the last), got {n_thoughts!r}")
    written = s[:, :-1] + ORDER
    written[:, :n_thoughts] = THOUGHT
    x = torch.empty(g.shape[0], 2 * n - 1, dtype=torch.long, device=g.device)
    x[:, 0::2], x[:, 1::2] = g, written
    return x
