"""The computation of a DTransformer as a directed acyclic graph of residual-stream states.

Nodes are states (i, t): i = 0 … 2L indexes X_0 and the stream after each of the 2L updates (as
in :class:`~mini_transformer.models.ResidualTrace`), t = 0 … ℓ−1 the position. Edges, from
Algorithm 10:

* every update keeps the residual: (i−1, t) → (i, t);
* an attention update (i odd) reads every earlier position: (i−1, s) → (i, t) for s ≤ t;
* an MLP update (i even) is position-wise: only (i−1, t) → (i, t).

Every edge goes up exactly one state, so **every** path from an input (0, s) to an output
(2L, t) has 2L edges, whatever ℓ. That is true by construction: an edge here merges the residual
identity and the sublayer of one update, and the paths it counts are *position trajectories*. The
reading that matters for computation separates them (Veit et al. 2016: a residual network is an
ensemble of paths of different lengths): at each update a path either skips the sublayer through
the identity (same position, no computation) or goes through it, an attention block (from any
s ≤ t) or an MLP block (same position). :meth:`StateGraph.paths_by_blocks` counts the paths by the
number of nonlinear blocks they cross, 0 … 2L: depth, not context length, bounds that number. What
grows with ℓ is how many paths there are.

With ``written=True`` the model writes its own tokens (Algorithm 14): the token sampled from the
output at position t − 1 is embedded again as the input at t, which adds the edge
(2L, t − 1) → (0, t). That edge carries information but no gradient (sampling is discrete), and
it lets a path climb the whole stack once per written token: the longest path grows with ℓ.
``written_positions`` restricts that edge to the positions that hold a written token: in a format
that interleaves given tokens with written ones (g₁ s₁ g₂ s₂ …, chapter 4), only the s positions
receive one, and the given g positions stay plain inputs.

``thought_positions`` adds the same edge (2L, t − 1) → (0, t) for a *continuous thought* (chapter
7; Hao et al. 2024): the top state itself, not a token sampled from it, is the input at t. The edge
is differentiable, so gradient crosses it, where a sampling edge carries none. A filler token (a
fixed input, chapter 4) adds a position and no edge. :meth:`StateGraph.longest_path` measures the
forward path; ``longest_path(gradient=True)`` keeps only the edges that gradient crosses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..models import device_of, state_layer
from ..validation import check_int


@dataclass(frozen=True)
class StateGraph:
    """The DAG of states of a DTransformer with ``n_layers`` layers on ``length`` positions."""

    n_layers: int
    length: int
    written: bool = False
    #: With ``written=True``, the positions whose input is the token sampled from the output just
    #: before them (each in [1, length − 1]); None: every position after the first.
    written_positions: frozenset[int] | None = None
    #: The positions whose input is the top state of the position before them, fed back as a
    #: vector (a continuous thought; each in [1, length − 1]). Gradient crosses these edges.
    thought_positions: frozenset[int] = frozenset()

    def __post_init__(self):
        check_int(self.n_layers, "n_layers")
        check_int(self.length, "length")
        if not isinstance(self.written, bool):
            raise TypeError(f"written must be a bool, got {type(self.written).__name__}")
        object.__setattr__(self, "thought_positions", self._positions(self.thought_positions, "thought_positions"))
        if self.written_positions is None:
            if self.written and self.thought_positions:
                raise ValueError("with thought_positions, name the written ones too (written_positions)")
            return
        if not self.written:
            raise ValueError("written_positions needs written=True")
        positions = self._positions(self.written_positions, "written_positions")
        if positions & self.thought_positions:
            raise ValueError(f"a position holds a written token or a thought, not both: {sorted(positions & self.thought_positions)}")
        object.__setattr__(self, "written_positions", positions)  # frozen: normalise once

    def _positions(self, positions, name: str) -> frozenset[int]:
        try:
            positions = frozenset(positions)
        except TypeError:
            raise TypeError(f"{name} must be an iterable of positions (ints), got {type(positions).__name__}") from None
        for t in positions:
            if isinstance(t, bool) or not isinstance(t, int):
                raise TypeError(f"{name} must hold ints, got {t!r}")
            if not 1 <= t < self.length:
                raise ValueError(f"each of {name} must be in [1, {self.length - 1}] "
                                 f"(position 0 has no output before it), got {t}")
        return positions

    def receives_written_token(self, t: int) -> bool:
        """The input at position t is the token sampled from the output at t − 1."""
        if not self.written or t == 0:
            return False
        return self.written_positions is None or t in self.written_positions

    def receives_thought(self, t: int) -> bool:
        """The input at position t is the top state at t − 1, fed back (differentiable)."""
        return t in self.thought_positions

    @property
    def n_states(self) -> int:
        return 2 * self.n_layers + 1

    @staticmethod
    def is_attention(i: int) -> bool:
        """State i is the output of an attention update rather than an MLP one (or X_0)."""
        return state_layer(i)[1] == "attn"

    def _check_node(self, i: int, t: int) -> None:
        if not 0 <= i < self.n_states:
            raise ValueError(f"state index i must be in [0, {self.n_states - 1}], got {i}")
        if not 0 <= t < self.length:
            raise ValueError(f"position t must be in [0, {self.length - 1}], got {t}")

    def parents(self, i: int, t: int) -> list[tuple[int, int]]:
        """The states that (i, t) is computed from directly."""
        self._check_node(i, t)
        if i == 0:  # an input: a given token, or the output before it (a sampled token or a thought)
            return [(self.n_states - 1, t - 1)] if self.receives_written_token(t) or self.receives_thought(t) else []
        if self.is_attention(i):
            return [(i - 1, s) for s in range(t + 1)]
        return [(i - 1, t)]

    def edges(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        return [(p, (i, t)) for i in range(self.n_states) for t in range(self.length) for p in self.parents(i, t)]

    def cone(self, i: int, t: int) -> set[tuple[int, int]]:
        """Every state (i', s) with a path to (i, t), including (i, t) itself: its dependency cone."""
        self._check_node(i, t)
        cone, frontier = {(i, t)}, [(i, t)]
        while frontier:
            node = frontier.pop()
            for parent in self.parents(*node):
                if parent not in cone:
                    cone.add(parent)
                    frontier.append(parent)
        return cone

    def topological_order(self) -> list[tuple[int, int]]:
        """Every state, each after all of its parents: positions left to right, states bottom up."""
        return [(i, t) for t in range(self.length) for i in range(self.n_states)]

    @cached_property
    def _path_counts(self) -> list[dict[tuple[int, int], int]]:
        """counts[s][(i, t)]: number of paths from the input (0, s) to the state (i, t)."""
        counts = []
        for s in range(self.length):
            table = {}
            for node in self.topological_order():
                start = 1 if node == (0, s) else 0
                table[node] = start + sum(table[p] for p in self.parents(*node))
            counts.append(table)
        return counts

    def n_paths(self, source: int, target: int) -> int:
        """Number of paths from the input (0, source) to the output (2L, target)."""
        self._check_node(0, source)
        self._check_node(self.n_states - 1, target)
        return self._path_counts[source][(self.n_states - 1, target)]

    def total_paths(self) -> int:
        """Number of paths from any input to any output."""
        return sum(self.n_paths(s, t) for s in range(self.length) for t in range(self.length))

    def carries_gradient(self, parent: tuple[int, int], child: tuple[int, int]) -> bool:
        """Whether backpropagation crosses the edge ``parent → child``: every edge but a sampling one."""
        return not (child[0] == 0 and self.receives_written_token(child[1]))

    def longest_path(self, gradient: bool = False) -> int:
        """Edges on the longest path from any input (0, s) to any output (2L, t); with
        ``gradient=True``, on the longest path that gradient crosses (no sampling edge). Every edge of
        the model climbs one state, so without written tokens it is 2L (L layers of two updates),
        independent of ``length``; with a written token at every position it is 2L · ℓ + ℓ − 1
        (the whole stack once per position, plus one sampling edge between neighbours). With
        ``written_positions`` = the odd positions of ℓ = 2n (g₁ s₁ … g_n s_n) it is
        n(2L + 1) + 2L: between two written tokens the path climbs from s_{j−1} through g_j's
        position (attention reads s_{j−1}), 2L edges, then samples s_j, one edge. Thoughts in place
        of the written tokens give the same forward path, and gradient crosses all of it; across a
        written token it does not, so the gradient path stays within one climb of 2L edges."""
        if not isinstance(gradient, bool):
            raise TypeError(f"gradient must be a bool, got {type(gradient).__name__}")
        longest = {}
        for node in self.topological_order():
            parents = [p for p in self.parents(*node) if not gradient or self.carries_gradient(p, node)]
            longest[node] = 1 + max(longest[p] for p in parents) if parents else 0
        return max(longest[(self.n_states - 1, t)] for t in range(self.length))

    def paths_by_blocks(self) -> list[int]:
        """``counts[j]``: the number of computation paths from any input (0, s) to any output (2L, t)
        that go through exactly j nonlinear blocks (sublayers), j = 0 … 2L; the other 2L − j
        updates are crossed through the residual identity. Attention blocks may move to any earlier
        position; identities and MLP blocks stay. (Without written tokens only.)"""
        if self.written or self.thought_positions:
            raise ValueError("paths_by_blocks counts the paths of one forward pass: use written=False "
                             "and no thought_positions")
        blocks = self.n_states - 1
        # ways[(i, t)][j]: paths from any input to (i, t) through j blocks
        ways = {(0, t): [1] + [0] * blocks for t in range(self.length)}
        for i in range(1, self.n_states):
            for t in range(self.length):
                counts = list(ways[(i - 1, t)])  # the residual identity: no block, same position
                sources = range(t + 1) if self.is_attention(i) else [t]
                for s in sources:  # through the block
                    for j in range(blocks):
                        counts[j + 1] += ways[(i - 1, s)][j]
                ways[(i, t)] = counts
        return [sum(ways[(blocks, t)][j] for t in range(self.length)) for j in range(blocks + 1)]

    def longest_rightward_reach(self) -> int:
        """The largest t − s over pairs with a path (0, s) → (2L, t): with causal attention every
        earlier position is one attention step away, so it is ℓ − 1."""
        return max(t - s for s in range(self.length) for t in range(self.length) if self.n_paths(s, t) > 0)


def measured_cone(model, x, i: int, t: int):
    """``J (2L+1, ℓ)``: J[i', s] = mean over the batch of ‖∂X_i[t] / ∂X_{i'}[s]‖_F, the size of the
    Jacobian of state (i, t) with respect to every state, measured with autograd on ``model`` and
    token ids ``x (batch, ℓ)``. Nonzero exactly on :meth:`StateGraph.cone` (i, t)."""
    import torch
    from torch.func import vjp, vmap

    from ..hooks import hooked, perturbed, zero_deltas
    from ..models import state_names
    from ..validation import check_tokens

    config = model.config
    x = check_tokens(x, name="x", vocab_size=config.vocab_size, max_len=config.max_len)
    StateGraph(config.n_layers, x.shape[1])._check_node(i, t)
    x = x.to(device_of(model))
    names = state_names(config.n_layers)
    zeros = zero_deltas(model, *x.shape)
    recorded = {}

    def state(deltas):
        def keep(X):
            recorded["state"] = X

        with perturbed(model, deltas), hooked(model, {names[i]: keep}):
            model(x)
        return recorded.pop("state")[:, t]  # (batch, d)

    with torch.enable_grad():
        value, pullback = vjp(state, zeros)
        d = value.shape[-1]
        basis = torch.eye(d, dtype=value.dtype, device=value.device)[:, None, :].expand(d, *value.shape)
        (rows,) = vmap(pullback)(basis)  # per state: (d_out, batch, ℓ, d_in)
    return torch.stack([rows[name].pow(2).sum(dim=(0, 3)).sqrt().mean(0) for name in names]).detach()
