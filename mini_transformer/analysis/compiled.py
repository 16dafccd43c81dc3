"""Compiled transformers: the package's own DTransformer (Algorithm 10, pre-LN) with hand-set weights.

Two constructions for the word problem of a finite group (chapter 4), exact and needing no training:

* :func:`compile_scan`: a Hillis–Steele parallel prefix for *any* finite group given by its table.
  Layer l attends, with a sharp positional pattern, to position t − 2^{l−1} (to a BOS token that
  holds the identity when that is before the start), copies the element stored there, and its MLP
  multiplies the two elements by table lookup (``|G|²`` ReLU units). After L layers position t holds
  the product of the last 2^L elements up to t: the running product is exact for t ≤ 2^L and wrong
  beyond whenever the elements before the window do not multiply to the identity.
* :func:`compile_s3_shortcut`: a two-layer model for S3 at every length up to ℓ_max, the shortcut
  of Liu et al. (ICLR 2023) for a solvable group. Write g = r^a f^b (r a 3-cycle, f a flip); since
  f r = r⁻¹ f, the product s_t = g_t ∘ … ∘ g_1 is r^{(−1)^{B_t} Σ_{i≤t} (−1)^{B_i} a_i} f^{B_t}, with
  B_i = b_1 + … + b_i the flips up to i. Layer 1: uniform causal attention gives the mean flip bit
  B_t/t; the MLP, with units gated by position, turns it into the parity of B_t and the signed
  rotation c_t = (−1)^{B_t} a_t mod 3. Layer 2: uniform attention gives the mean of c; the MLP turns
  it into Σ c mod 3. The unembedding reads off the element. Depth 2 at every length; the width of
  the MLPs grows with ℓ_max (about 3ℓ²/2 units), the trade the shortcut makes.

And one for k-hop induction (:mod:`mini_transformer.tasks.khop`), also exact:

* :func:`compile_khop`: pointer doubling at depth ⌊log₂ k⌋ + 2 (Sanford, Hsu & Telgarsky 2024).
  Layer 1 finds each position's one-hop pointer; layer l ≥ 2 follows the 2^{l−2}-hop pointer,
  doubling it, and advances a letter register by 2^{l−2} hops when that bit of k is set.

**Layer norm.** Every sublayer of Algorithm 10 reads layer_norm(X), not X. Two design choices make
that a fixed scaling, so the hand-set weights can be written as if they read X itself:

1. every vector written to the stream (embeddings, W_o's columns, W_mlp2's columns and bias) sums to
   zero, through a *balance* channel that holds minus the sum of the others, so the mean m of
   Algorithm 6, line 1, is exactly 0;
2. two constant channels hold +C and −C at every position (from W_p), with C large, so the
   variance v of line 2 is 2C²/d_e up to a relative error ε = ‖content‖²/(2C²) < 10⁻⁶ (on
   random sequences of 64: at most 6·10⁻⁸ in the scans, 7·10⁻⁷ in the shortcut).

With γ = C·√(2/d_e), layer_norm(X) = X/√(1 + ε): the content arrives scaled by 1 − O(ε). Every
nonlinear decision then has a margin (ReLU thresholds half a unit from the nearest input value,
attention logits 40 apart) far larger than that distortion, so it cannot change an argmax. The
scan runs in float32; the shortcut, whose gated units amplify the distortion a few hundred times,
in float64 (its logits then sit within 10⁻² of the ideal 2·READOUT and READOUT); so does the k-hop
model, whose first-layer logits grow with ℓ_max.

Shapes follow :mod:`mini_transformer.algorithms`: weights are stored as the paper writes them
(``W ∈ ℝ^{d_out × d_in}``), token ids are ``(batch, ℓ)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..config import TransformerConfig
from ..models import DTransformer
from ..validation import check_int, check_tokens

#: The constant channels' size C (see the module docstring).
BIG = 10000.0
#: Attention logit of the position a sharp head must read, above every other position's 0.
SHARP = 40.0
#: Logit of the answer in the unembedding.
READOUT = 10.0


@dataclass
class Layout:
    """Named blocks of channels of the residual stream, allocated in order."""

    blocks: dict[str, slice] = field(default_factory=dict)
    width: int = 0

    def add(self, name: str, size: int) -> slice:
        self.blocks[name] = slice(self.width, self.width + size)
        self.width += size
        return self.blocks[name]

    def __getitem__(self, name: str) -> slice:
        return self.blocks[name]

    def channel(self, name: str, i: int = 0) -> int:
        """The index of channel ``i`` of block ``name``."""
        return self.blocks[name].start + i


def _stream_layout(n_positions: int) -> Layout:
    layout = Layout()
    layout.add("const", 2)  # +C, −C at every position: layer norm's variance
    layout.add("balance", 1)  # minus the sum of everything else: layer norm's mean is 0
    layout.add("pos", n_positions)  # the position code
    return layout


def binary_code(max_len: int) -> torch.Tensor:
    """``(ℓ_max, n_bits)``: position t as the ±1 bits of t (n_bits = ⌈log₂ ℓ_max⌉, at least 1). Two
    codes agree in every bit only for the same position, so code(p)·code(t) = n_bits iff t = p and
    ≤ n_bits − 2 otherwise: a unit can be gated on one position with a linear term."""
    n_bits = max(1, math.ceil(math.log2(max_len)))
    t = torch.arange(max_len)[:, None]
    return ((t >> torch.arange(n_bits)) & 1).float() * 2 - 1

def _blank_model(layout: Layout, vocab_size: int, max_len: int, n_layers: int, d_mlp: int,
                 positions: torch.Tensor) -> DTransformer:
    """A DTransformer (ReLU MLPs, one head) whose every parameter is zero, except the layer norms'
    γ = C·√(2/d_e): layer_norm(X) then equals X up to the factor 1/√(1 + ε). ``positions``
    ``(ℓ_max, n)`` is the position code written into the ``pos`` block by W_p."""
    d = layout.width
    # kernels="fused": the same functions (Algorithms 4–6) through PyTorch's fused kernels, for speed
    model = DTransformer(TransformerConfig(vocab_size=vocab_size, max_len=max_len, d_model=d, n_layers=n_layers,
                                           n_heads=1, d_mlp=d_mlp, activation="relu", kernels="fused"))
    gamma = BIG * math.sqrt(2 / d)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.zero_()
            if name.endswith("gamma"):
                parameter.fill_(gamma)
        W_p = model.embedding.position.weight  # Alg. 2: W_p[:, t], one row per position
        W_p[:, layout.channel("const", 0)] = BIG
        W_p[:, layout.channel("const", 1)] = -BIG
        W_p[:, layout["pos"]] = positions
    return model


def _balance(W: torch.Tensor, layout: Layout) -> None:
    """Make every column of a write matrix (rows: stream channels) sum to zero through the balance
    channel; for a bias vector, make the vector sum to zero."""
    row = layout.channel("balance")
    W[row] = 0
    W[row] = -W.sum(0)


def _balance_embeddings(model: DTransformer, layout: Layout) -> None:
    row = layout.channel("balance")
    for table in (model.embedding.token.weight, model.embedding.position.weight):  # rows: tokens/positions
        table[:, row] = 0
        table[:, row] = -table.sum(1)


def _balance_writes(model: DTransformer, layout: Layout) -> None:
    """Zero-sum every write into the stream: embeddings, W_o, b_o, W_mlp2, b_mlp2."""
    _balance_embeddings(model, layout)
    for layer in model.layers:
        for W in (layer.attn.W_o, layer.attn.b_o, layer.mlp.W_mlp2, layer.mlp.b_mlp2):
            _balance(W, layout)


def _check_table(table) -> torch.Tensor:
    if not isinstance(table, torch.Tensor) or table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] < 2:
        raise ValueError("table must be a square composition table: a long tensor of shape (|G|, |G|), |G| ≥ 2")
    order = table.shape[0]
    if table.dtype != torch.long or table.min() < 0 or table.max() >= order:
        raise ValueError(f"table entries must be element ids in [0, {order})")
    if any(sorted(row.tolist()) != list(range(order)) for row in table):
        raise ValueError("table must be a group's table: every row a permutation of the elements")
    identities = [e for e in range(order) if torch.equal(table[e], torch.arange(order))]
    if not identities:
        raise ValueError("table has no identity element e with table[e, b] = b for every b")
    return table


def identity_of(table: torch.Tensor) -> int:
    """The identity element e of a composition table (table[e, b] = b = table[b, e])."""
    table = _check_table(table)
    return next(e for e in range(table.shape[0]) if torch.equal(table[e], torch.arange(table.shape[0])))


# ---------------------------------------------------------------------------------------------
# The Hillis–Steele scan, for any finite group
# ---------------------------------------------------------------------------------------------
def compile_scan(table: torch.Tensor, n_layers: int, max_len: int) -> DTransformer:
    """A DTransformer with ``n_layers`` layers that computes running products by a parallel prefix.

    ``table[a, b]`` is the id of a ∘ b for a group of order ``|G|``. Vocabulary: the ``|G|`` elements and a
    BOS token (id ``|G|``) that must start every input (see :func:`scan_input`), ``max_len`` positions
    including BOS. Output at position t ≥ 1 (argmax of the logits): the product of g_{t−2^L+1} … g_t,
    which is the running product s_t = g_t ∘ … ∘ g_1 exactly when t ≤ 2^L.

    Residual stream: the constant and balance channels, a one-hot position, ``state`` (one-hot
    element: the product of the window so far) and ``read`` (the element copied by attention,
    erased again by the MLP), so the stream has the same width after every layer.
    """
    table = _check_table(table)
    n_layers = check_int(n_layers, "n_layers")
    max_len = check_int(max_len, "max_len", minimum=2)
    order = table.shape[0]
    layout = _stream_layout(max_len)  # one-hot positions: any map t ↦ t − 2^{l−1} is linear in them
    state, read = layout.add("state", order), layout.add("read", order)
    model = _blank_model(layout, order + 1, max_len, n_layers, d_mlp=order * order, positions=torch.eye(max_len))
    d = layout.width
    bos, e = order, identity_of(table)
    with torch.no_grad():
        W_e = model.embedding.token.weight  # Alg. 1: W_e[:, v], one row per token
        W_e[torch.arange(order), state.start + torch.arange(order)] = 1.0
        W_e[bos, state.start + e] = 1.0  # BOS holds the identity
        for l, layer in enumerate(model.layers, start=1):
            offset = 2 ** (l - 1)
            attn = layer.attn
            # Alg. 4, lines 1–2: q_t = SHARP·√d_attn · onehot(max(t − offset, 0)), k_s = onehot(s), so the
            # score of s is SHARP if s = max(t − offset, 0) and 0 otherwise (after the 1/√d_attn of line 6)
            for t in range(max_len):
                attn.W_q[0, layout.channel("pos", max(t - offset, 0)), layout.channel("pos", t)] = SHARP * math.sqrt(d)
            attn.W_k[0, layout["pos"], layout["pos"]] = torch.eye(max_len)
            attn.W_v[0, state, state] = torch.eye(order)  # line 3: the value is the state read
            attn.W_o[read, state] = torch.eye(order)  # Alg. 5, line 3: written into `read`
            # MLP: unit (a, b) fires (value 1) iff state = a and read = b: ReLU(2·state[a] + 2·read[b] − 3);
            # it replaces a by a ∘ b in `state` and erases b from `read`
            mlp = layer.mlp
            units = torch.arange(order * order)
            a, b = units // order, units % order  # unit u = (a, b)
            mlp.W_mlp1[units, state.start + a] = 2.0
            mlp.W_mlp1[units, read.start + b] = 2.0
            mlp.b_mlp1[:] = -3.0
            ones = torch.ones(order * order)
            mlp.W_mlp2.index_put_((state.start + table[a, b], units), ones, accumulate=True)
            mlp.W_mlp2.index_put_((state.start + a, units), -ones, accumulate=True)
            mlp.W_mlp2.index_put_((read.start + b, units), -ones, accumulate=True)
        model.unembedding.W_u[torch.arange(order), state.start + torch.arange(order)] = READOUT  # Alg. 7
        _balance_writes(model, layout)
    assert d == model.config.d_model
    model.layout = layout
    return model.eval()


def scan_input(g: torch.Tensor, order: int) -> torch.Tensor:
    """``(batch, n + 1)``: BOS (id ``order``) followed by the element ids ``g (batch, n)``."""
    order = check_int(order, "order", minimum=2)
    g = check_tokens(g, name="g", vocab_size=order, max_len=10**9)
    return torch.cat([torch.full_like(g[:, :1], order), g], dim=1)


@torch.no_grad()
def scan_products(model: DTransformer, g: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    """``(batch, n)``: the compiled scan's answer at every position of ``g`` (BOS is added here)."""
    order = model.config.vocab_size - 1
    x = scan_input(g, order)
    return torch.cat([model(xs)[:, 1:, :order].argmax(-1) for xs in x.split(chunk)])


def scan_reads(model: DTransformer, length: int) -> list[list[int]]:
    """``reads[l−1][t]``: the position that layer l's attention reads at position t (the argmax of its
    pattern), measured on one input of ``length`` positions (BOS and identities)."""
    from ..models import trace

    length = check_int(length, "length", minimum=1)
    x = torch.full((1, length), model.config.vocab_size - 1)
    with torch.no_grad():
        _, states = trace(model, x)
    return [pattern[0, 0].argmax(-1).tolist() for pattern in states.patterns]


# ---------------------------------------------------------------------------------------------
# The S3 shortcut at depth 2
# ---------------------------------------------------------------------------------------------
def s3_decomposition(table: torch.Tensor) -> tuple[list[int], list[int]]:
    """``(a, b)``: for each element g of S3 (given by its 6 × 6 table), the exponents with
    g = r^a ∘ f^b, for a fixed 3-cycle r and flip (transposition) f."""
    table = _check_table(table)
    if table.shape[0] != 6 or torch.equal(table, table.T):
        raise ValueError("the shortcut is for S3: table must be the 6 × 6 table of a non-commutative group")
    e = identity_of(table)

    def power(x, n):
        y = e
        for _ in range(n):
            y = int(table[x, y])
        return y

    r = next(x for x in range(6) if x != e and power(x, 3) == e)  # an element of order 3
    f = next(x for x in range(6) if x != e and power(x, 2) == e)  # an element of order 2
    words = {int(table[power(r, a), power(f, b)]): (a, b) for a in range(3) for b in range(2)}
    if sorted(words) != list(range(6)):
        raise ValueError("r and f do not generate the group: table is not S3's")
    return [words[g][0] for g in range(6)], [words[g][1] for g in range(6)]


def compile_s3_shortcut(table: torch.Tensor, max_len: int) -> DTransformer:
    """A two-layer DTransformer that outputs the running product s_t of S3 at every position t < ℓ_max.

    ``table`` is S3's composition table (``tasks.permutations.COMPOSE``); the input is the silent
    format, element ids ``(batch, ℓ)`` with no BOS. See the module docstring for the algorithm.
    Width: ``d_mlp`` = 3·ℓ_max(ℓ_max+1)/2 units, gated by position (a unit for position p is held
    below zero at every other position by a large negative term, linear in the ±1 position code).
    """
    a_of, b_of = s3_decomposition(table)
    max_len = check_int(max_len, "max_len")
    code = binary_code(max_len)  # ±1 bits: a narrow stream, and gating on one position stays linear
    n_bits = code.shape[1]
    layout = _stream_layout(n_bits)
    elem = layout.add("elem", 6)  # the token, one-hot
    mean_flip = layout.add("mean_flip", 1)  # layer 1's attention: B_t / t
    parity = layout.add("parity", 2)  # layer 1's MLP: [B_t even], [B_t odd]
    twist = layout.add("twist", 1)  # layer 1's MLP: c_t − a_t (so c_t = a_t + twist)
    mean_c = layout.add("mean_c", 1)  # layer 2's attention: Σ_{i≤t} c_i / t
    rotation = layout.add("rotation", 3)  # layer 2's MLP: one-hot of Σ_{i≤t} c_i mod 3
    units_1 = 3 * max_len * (max_len + 1) // 2
    units_2 = sum(2 * (p + 1) + 3 for p in range(max_len))
    model = _blank_model(layout, 6, max_len, 2, d_mlp=max(units_1, units_2), positions=code)
    gate = 2.0 * max_len + 4.0  # G: larger than any pre-activation (at most 2ℓ_max + 3) a gated-off unit could reach
    # the gate of position p: (G/2)(code(p)·code(t) − n_bits) is 0 at t = p and ≤ −G elsewhere
    pos_gate = code * (gate / 2)
    pos_bias = -gate / 2 * n_bits
    with torch.no_grad():
        model.embedding.token.weight[torch.arange(6), elem.start + torch.arange(6)] = 1.0
        layer_1, layer_2 = model.layers
        # Layer 1, attention: W_q = W_k = 0, so every score is 0 and the pattern is uniform over s ≤ t;
        # the value is the flip bit b_s, so the output is B_t / t (t counted from 1)
        layer_1.attn.W_v[0, 0, elem] = torch.tensor(b_of, dtype=torch.float)
        layer_1.attn.W_o[mean_flip.start, 0] = 1.0
        # Layer 1, MLP: at position p (p + 1 elements), n = (p+1)·mean is the integer B_t; its parity is the
        # triangle wave  n − 2 ReLU(n−1) + 2 ReLU(n−2) − …  = Σ_c w_c ReLU(n − c), exact at integers.
        # Each unit is gated by the position and by the token's rotation a ∈ {0, 1, 2}, so that one
        # MLP gives both the parity and the signed rotation: c = a if B even, −a ≡ 3 − a if B odd,
        # i.e. twist = c − a = parity·(0, +1, −1)[a].
        mlp = layer_1.mlp
        u = 0
        for rot in range(3):
            tokens = [g for g in range(6) if a_of[g] == rot]
            for p in range(max_len):
                for c in range(p + 1):
                    w = 1.0 if c == 0 else 2.0 * (-1) ** c
                    mlp.W_mlp1[u, mean_flip.start] = p + 1.0
                    mlp.W_mlp1[u, layout["pos"]] = pos_gate[p]
                    mlp.W_mlp1[u, [elem.start + g for g in tokens]] = gate
                    mlp.b_mlp1[u] = -c - gate + pos_bias
                    mlp.W_mlp2[parity.start + 1, u] = w  # [B odd]
                    mlp.W_mlp2[parity.start, u] = -w  # [B even] = 1 − [B odd]
                    mlp.W_mlp2[twist.start, u] = (0.0, 1.0, -1.0)[rot] * w
                    u += 1
        mlp.b_mlp2[parity.start] = 1.0
        # Layer 2, attention: uniform again; the value is c_s = a_s + twist_s, the output Σ_{s≤t} c_s / t
        layer_2.attn.W_v[0, 0, elem] = torch.tensor(a_of, dtype=torch.float)
        layer_2.attn.W_v[0, 0, twist.start] = 1.0
        layer_2.attn.W_o[mean_c.start, 0] = 1.0
        # Layer 2, MLP: S = (p+1)·mean is an integer in [0, 2(p+1)]; [S ≡ j mod 3] is a sum of hats
        # hat(S − c) = ReLU(S−c+1) − 2 ReLU(S−c) + ReLU(S−c−1), c ≡ j, written in units ReLU(S − k)
        mlp = layer_2.mlp
        u = 0
        for p in range(max_len):
            top = 2 * (p + 1)
            for k in range(-1, top + 2):
                mlp.W_mlp1[u, mean_c.start] = p + 1.0
                mlp.W_mlp1[u, layout["pos"]] = pos_gate[p]
                mlp.b_mlp1[u] = -k + pos_bias
                for centre, weight in ((k + 1, 1.0), (k, -2.0), (k - 1, 1.0)):
                    if 0 <= centre <= top:
                        mlp.W_mlp2[rotation.start + centre % 3, u] += weight
                u += 1
        # Unembedding (Alg. 7): logit(g) = rotation[(−1)^b a mod 3] + parity[b] for g = r^a f^b; only the
        # true element scores 2, every other one at most 1
        for g in range(6):
            a, b = a_of[g], b_of[g]
            model.unembedding.W_u[g, rotation.start + (a if b == 0 else -a) % 3] = READOUT
            model.unembedding.W_u[g, parity.start + b] = READOUT
        _balance_writes(model, layout)
    model.layout = layout
    # float64: a gated unit cancels terms ~400 times larger than the integer it decodes, and in float32
    # the rounding of layer norm's mean next to ±C (~10⁻⁵ relative) would eat a sixth of the margin
    return model.double().eval()


@torch.no_grad()
def predict(model: DTransformer, x: torch.Tensor, chunk: int = 200) -> torch.Tensor:
    """``(batch, ℓ)``: the argmax of the model's logits at every position, in chunks of sequences."""
    return torch.cat([model(xs).argmax(-1) for xs in x.split(chunk)])


# ---------------------------------------------------------------------------------------------
# k-hop induction by pointer doubling
# ---------------------------------------------------------------------------------------------
def khop_reach(n_layers: int) -> int:
    """The largest k that :func:`compile_khop` reaches with ``n_layers`` layers: 2^{L−1} − 1
    (Sanford, Hsu & Telgarsky 2024: depth ⌊log₂ k⌋ + 2 suffices)."""
    n_layers = check_int(n_layers, "n_layers")
    return 2 ** (n_layers - 1) - 1


def compile_khop(n_letters: int, k: int, n_layers: int, max_len: int) -> DTransformer:
    """A DTransformer with ``n_layers`` layers that computes k-hop induction (``tasks.khop``) exactly.

    The construction of Sanford, Hsu & Telgarsky (ICML 2024), depth ⌊log₂ k⌋ + 2, as pointer
    doubling. Positions are counted with a BOS token (id ``n_letters``) in front, so letter t sits
    at position t + 1 and position 0 stands for NONE; p(t) is the one-hop pointer, p^{2^i} = P_i.

    * Layer 1: t attends to the latest earlier s with the same letter (to BOS if there is none)
      and writes P_0(t) = onehot(s + 1) (onehot(0) from BOS). Logits: ``match`` for the same letter,
      match/2 for BOS, SHARP·s for recency, −match for t itself.
    * Layer l ≥ 2 (i = l − 2): t attends to P_i(t) and copies two registers from there: its pointer,
      giving P_{i+1}(t) = P_i(P_i(t)) (doubling), and, if bit i of k is set, its letter register
      A, which holds x[p^a(t)] after a hops (the token itself at a = 0, NONE at BOS): then
      A(t) ← A(P_i(t)) = x[p^{a+2^i}(t)]. After the last layer a = k.
    * The unembedding reads the last letter register (NONE = ``n_letters`` is a label like the rest).

    Every register is its own block of channels, so the MLPs are zero (each layer's attention
    alone does the work). ``max_len`` is the longest letter sequence; the model has
    ``max_len + 1`` positions. Width: 3 + (L + 1)·(max_len + 1) + (1 + popcount k)·(n_letters + 1)
    channels, one head, d_mlp = 1 (zero). Runs in float64: layer 1's logits grow with max_len
    (``match`` ≈ 2·SHARP·max_len, ~4·10³ at 48), and the float32 rounding of layer norm's mean next
    to ±C, multiplied by them, eats into the SHARP margin as max_len grows (float32 is still exact
    at max_len 48; float64 keeps the margin for longer inputs).
    Raises ValueError unless 1 ≤ k ≤ 2^{L−1} − 1 (:func:`khop_reach`).
    """
    n_letters = check_int(n_letters, "n_letters", minimum=2)
    n_layers = check_int(n_layers, "n_layers")
    max_len = check_int(max_len, "max_len")
    k = check_int(k, "k", minimum=1)
    if k > khop_reach(n_layers):
        raise ValueError(f"k={k} is beyond the reach 2^(n_layers−1) − 1 = {khop_reach(n_layers)} "
                         f"of n_layers={n_layers} layers: pointer doubling needs n_layers ≥ ⌊log₂ k⌋ + 2")
    n_pos, n_labels, bos = max_len + 1, n_letters + 1, n_letters  # label NONE = n_letters = BOS's id
    layout = _stream_layout(n_pos)  # one-hot positions
    ptr = [layout.add(f"ptr{i}", n_pos) for i in range(n_layers)]  # P_i(t), one-hot (P_{L−1} unused)
    letters = [layout.add("letter0", n_labels)]  # A after 0 hops: the token (NONE at BOS)
    for i in range(n_layers - 1):
        if k >> i & 1:
            letters.append(layout.add(f"letter{len(letters)}", n_labels))
    model = _blank_model(layout, n_labels, n_pos, n_layers, d_mlp=1, positions=torch.eye(n_pos))
    d = layout.width
    scale = math.sqrt(d)  # one head: d_attn = d (Alg. 4, line 6 divides the scores by √d_attn)
    match = 2 * SHARP * (n_pos + 1)  # above every recency logit SHARP·s by 2·SHARP
    with torch.no_grad():
        model.embedding.token.weight[torch.arange(n_labels), letters[0].start + torch.arange(n_labels)] = 1.0
        # Layer 1: query/key coordinates [letter (n_labels) | position (n_pos) | recency (1)]
        attn = model.layers[0].attn
        letter, pos, recency = torch.arange(n_labels), n_labels + torch.arange(n_pos), n_labels + n_pos
        attn.W_q[0, letter[:-1], letters[0].start + letter[:-1]] = match * scale  # the same letter: +match
        attn.b_q[0, bos] = match / 2 * scale  # BOS (the NONE coordinate of the key) scores match/2
        attn.W_q[0, pos, layout["pos"]] = -match * scale * torch.eye(n_pos)  # not t itself
        attn.b_q[0, recency] = SHARP * scale  # the latest match wins by SHARP
        attn.W_k[0, letter, letters[0]] = torch.eye(n_labels)
        attn.W_k[0, pos, layout["pos"]] = torch.eye(n_pos)
        attn.W_k[0, recency, layout["pos"]] = torch.arange(n_pos, dtype=torch.float)
        attn.W_v[0, :n_pos, layout["pos"]] = torch.eye(n_pos)  # the value: the position s read …
        shift = torch.diag(torch.ones(n_pos - 1), -1)  # … written as s + 1 (onehot(s) ↦ onehot(s + 1))
        shift[0, 0], shift[1, 0] = 1.0, 0.0  # BOS (NONE) stays 0
        attn.W_o[ptr[0], :n_pos] = shift
        # Layers l ≥ 2: attend to P_i(t); copy its pointer (doubling) and maybe its letter register
        a = 0  # letters[a] holds the letter after the hops counted so far
        for i, layer in enumerate(model.layers[1:]):
            attn = layer.attn
            attn.W_q[0, :n_pos, ptr[i]] = SHARP * scale * torch.eye(n_pos)  # score SHARP at s = P_i(t)
            attn.W_k[0, :n_pos, layout["pos"]] = torch.eye(n_pos)
            attn.W_v[0, :n_pos, ptr[i]] = torch.eye(n_pos)
            attn.W_o[ptr[i + 1], :n_pos] = torch.eye(n_pos)
            if k >> i & 1:
                attn.W_v[0, n_pos:n_pos + n_labels, letters[a]] = torch.eye(n_labels)
                attn.W_o[letters[a + 1], n_pos:n_pos + n_labels] = torch.eye(n_labels)
                a += 1
        model.unembedding.W_u[torch.arange(n_labels), letters[a].start + torch.arange(n_labels)] = READOUT
        _balance_writes(model, layout)
    model.layout = layout
    return model.double().eval()


@torch.no_grad()
def khop_predictions(model: DTransformer, x: torch.Tensor, chunk: int = 200) -> torch.Tensor:
    """``(batch, ℓ)``: the compiled k-hop model's label at every position of the letters ``x``
    (a letter, or NONE = ``n_letters``), to compare with ``tasks.khop.targets(x, k, n_letters)``.
    BOS is added here; ``x`` is at most the ``max_len`` the model was compiled for."""
    n_letters = model.config.vocab_size - 1
    x = check_tokens(x, name="x", vocab_size=n_letters, max_len=model.config.max_len - 1)
    x = torch.cat([torch.full_like(x[:, :1], n_letters), x], dim=1)
    return torch.cat([model(xs)[:, 1:].argmax(-1) for xs in x.split(chunk)])
