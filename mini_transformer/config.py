"""The hyperparameters of a transformer, validated on construction.

Symbols follow Phuong & Hutter (2022), Appendix B (list of notation):

=============  ==============  ============================================================
code           paper           meaning
=============  ==============  ============================================================
vocab_size     N_V             number of token ids; ids live in ``[0, vocab_size)``
max_len        ℓ_max           longest sequence the positional embedding covers
d_model        d_e             width of the residual stream (embedding size)
n_layers       L (L_enc)       number of layers (for EDTransformer: encoder layers)
n_dec_layers   L_dec           decoder layers of EDTransformer (default ``n_layers``, filled in)
n_heads        H               attention heads per layer
d_head         d_attn = d_mid  query/key/value size of one head: ``d_model // n_heads``
d_mlp          d_mlp           hidden width of the MLP (default ``4 * d_model``, filled in)
d_final        d_f             width of ETransformer's final projection W_f (default d_e, filled in)
input_dim      (not in paper)  continuous inputs: W_e becomes a linear map ℝ^input_dim → ℝ^d_e
output_dim     (not in paper)  real-valued outputs: W_u maps to output_dim values, not N_V logits
kernels        (not in paper)  ``"faithful"``: the algorithms line by line; ``"fused"``: the same
                               functions through PyTorch's fused kernels (faster, no patterns)
mask_kind      Mask            DTransformer's mask: ``"causal"`` (Algorithm 10's [[t' ≤ t]]),
                               ``"self"`` (each position attends only to itself: a control) or
                               ``"bidirectional"`` (a broken decoder whose positions read the
                               future: for the exercise that shows why the mask is there)
zero_past      (not in paper)  DTransformer only: past keys and values read as zero, the
                               "transformer bigram" of Wu, Morris & Levine (2024)
=============  ==============  ============================================================

Every option that changes the forward pass is a field here, so :func:`~mini_transformer.serialization.save_model` stores it and
:func:`~mini_transformer.serialization.load_model` rebuilds the same function. Myopic training's β changes only gradients and is a
context manager (:func:`mini_transformer.analysis.myopia.myopic`). A model rejects a field it does not use
(for example ``output_dim`` in an ETransformer) instead of ignoring it silently.

A derived size left at None follows what it derives from, also through ``dataclasses.replace``:
``replace(config, d_model=128)`` gives ``d_mlp = 512`` unless ``d_mlp`` was set explicitly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .validation import check_int

ACTIVATIONS = ("gelu", "gelu_tanh", "relu")
MASK_KINDS = ("causal", "self", "bidirectional")
POSITIONAL = ("learned", "sinusoidal")
KERNELS = ("faithful", "fused")


class Derived(int):
    """A size the config filled in from other fields (``d_mlp = 4·d_e``, …). ``dataclasses.replace``
    copies field values as they are; ``__post_init__`` derives a ``Derived`` value again from the new
    fields, so it follows what it derives from instead of keeping a stale number. It is an int in
    every other respect, and ``to_dict`` writes it as None."""

    __slots__ = ()


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and options of a transformer (Phuong & Hutter's hyperparameters).

    Raises ``TypeError``/``ValueError`` naming the offending field on bad input, e.g.
    ``n_heads`` that does not divide ``d_model``.
    """

    vocab_size: int
    max_len: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_mlp: int | None = None
    n_dec_layers: int | None = None
    d_final: int | None = None
    activation: str | None = None  # None: the algorithm's own (ReLU for Alg. 8, GELU for 9 and 10)
    positional: str = "learned"
    layer_norm_eps: float = 1e-5  # not in the paper; see Algorithm 6
    input_dim: int | None = None  # None: token ids; an int: real vectors of that size per position
    output_dim: int | None = None  # None: N_V logits; an int: that many real outputs per position
    kernels: str = "faithful"  # "fused": layer norm, projections and attention through fused kernels
    mask_kind: str = "causal"  # DTransformer: "self" lets each position attend only to itself
    zero_past: bool = False  # DTransformer: the "transformer bigram" (past keys and values are zero)

    def __post_init__(self) -> None:
        self._check()
        # derived sizes, filled in so that every reader sees one name and one number; a Derived value
        # (copied by dataclasses.replace) is derived again, from the fields as they are now
        for name, value in self.derived_defaults().items():
            if getattr(self, name) is None or isinstance(getattr(self, name), Derived):
                object.__setattr__(self, name, Derived(value))

    def derived_defaults(self) -> dict[str, int]:
        """What ``d_mlp``, ``n_dec_layers`` and ``d_final`` default to: 4·d_e, L, d_e."""
        return {"d_mlp": 4 * self.d_model, "n_dec_layers": self.n_layers, "d_final": self.d_model}

    def _check(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads"):
            check_int(getattr(self, name), name)
        for name in ("d_mlp", "n_dec_layers", "d_final", "input_dim", "output_dim"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name)
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"n_heads must divide d_model: d_model={self.d_model} is not a multiple of "
                f"n_heads={self.n_heads}"
            )
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS} or None, got {self.activation!r}")
        if self.positional not in POSITIONAL:
            raise ValueError(f"positional must be one of {POSITIONAL}, got {self.positional!r}")
        if self.kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {self.kernels!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or isinstance(self.layer_norm_eps, bool):
            raise TypeError(f"layer_norm_eps must be a float, got {type(self.layer_norm_eps).__name__}")
        if not math.isfinite(self.layer_norm_eps) or self.layer_norm_eps < 0:
            raise ValueError(f"layer_norm_eps must be a finite number >= 0, got {self.layer_norm_eps}")
        if self.mask_kind not in MASK_KINDS:
            raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {self.mask_kind!r}")
        if not isinstance(self.zero_past, bool):
            raise TypeError(f"zero_past must be a bool, got {type(self.zero_past).__name__}")

    def check_unused(self, model: str, unused: tuple[str, ...]) -> "TransformerConfig":
        """Raise ``ValueError`` if a field in ``unused`` differs from its default (for a derived size,
        from the value it derives): ``model`` would ignore it, and an ignored setting is a wrong result."""
        defaults = {f.name: f.default for f in fields(self)} | self.derived_defaults()
        for name in unused:
            if getattr(self, name) != defaults[name]:
                raise ValueError(f"{model} does not use config.{name} (got {getattr(self, name)!r}); "
                                 f"leave it at its default {defaults[name]!r}")
        return self

    @property
    def fused(self) -> bool:
        """True when ``kernels == "fused"``: the modules compute through PyTorch's fused kernels."""
        return self.kernels == "fused"

    @property
    def d_head(self) -> int:
        """d_attn = d_mid: the size of one head's queries, keys and values."""
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        """The fields as plain data; a derived size is None (it is derived again when read back)."""
        return {name: None if isinstance(value, Derived) else value for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "TransformerConfig":
        if not isinstance(values, dict):
            raise TypeError(f"config values must be a dict, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"config has unknown fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**values)
