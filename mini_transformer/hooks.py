"""Hook points: one way into the residual stream, in the manner of TransformerLens's ``HookPoint``.

A :class:`HookPoint` is an identity module placed at a state of the stream. A DTransformer has one
at every state — X_0 (``"X0"``), after each attention update (``"L1.attn"``, …) and after each MLP
update (``"L1.mlp"``, …) — and one on each layer's attention pattern (``"L1.pattern"``, …), on the
token embeddings before the positional ones are added (``"X0.token"``) and on the final layer norm's
output that the unembedding reads (``"final_ln"``).
With nothing attached it returns its input and costs nothing. Everything that reads or changes the
stream goes through them:

* :func:`~mini_transformer.models.trace` runs the model and returns every state and pattern (a :class:`ResidualTrace`);
* :func:`hooked` attaches functions by name: each sees the tensor and may return a replacement
  (to patch, ablate, add a perturbation, or just look);
* :func:`perturbed` adds given tensors to the states, which makes the states *inputs* of a function
  that ``torch.func`` can differentiate (chapter 3's gradient flow, chapter 2's cones).

The states keep their place in the autograd graph, so gradients with respect to them can be taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn


class HookPoint(nn.Module):
    """The identity, with room for functions that see (and may replace) the tensor passing by.

    A replacement must be a tensor of the shape, dtype and device of the one it replaces. A
    ``read_only`` point (an attention pattern, seen after the output was computed from it, so that a
    replacement would be ignored while a trace reported it) refuses any return value but None.
    """

    def __init__(self, read_only: bool = False):
        super().__init__()
        self.name: str | None = None  # set by the model: "X0", "L1.attn", "L1.pattern", …
        self.read_only = read_only
        self.functions: list[Callable[[torch.Tensor], torch.Tensor | None]] = []

    @property
    def active(self) -> bool:
        return bool(self.functions)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        for function in self.functions:
            result = function(tensor)
            if result is not None:
                tensor = self._check_replacement(result, tensor)
        return tensor

    def _check_replacement(self, result, tensor: torch.Tensor) -> torch.Tensor:
        """``result`` if it can stand where ``tensor`` stood, else an error naming the hook point."""
        if self.read_only:
            state = self.name.replace(".pattern", ".attn") if self.name else "L1.attn"
            raise ValueError(f"hook {self.name!r} is read-only: it sees the attention pattern after the attention "
                             "output was computed from it, so a replacement would be ignored; return None (to change "
                             f"what attention writes, hook the state after it, {state!r})")
        if not isinstance(result, torch.Tensor):
            raise TypeError(f"hook {self.name!r} must return None or a replacement torch.Tensor, "
                            f"got {type(result).__name__}")
        if result.shape != tensor.shape:
            raise ValueError(f"hook {self.name!r} returned a tensor of shape {tuple(result.shape)}; expected the "
                             f"shape of the tensor it replaces, {tuple(tensor.shape)}")
        if result.dtype != tensor.dtype or result.device != tensor.device:
            raise TypeError(f"hook {self.name!r} returned a tensor of dtype {result.dtype} on {result.device}; "
                            f"expected those of the tensor it replaces, {tensor.dtype} on {tensor.device}")
        return result

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _hook_points(model) -> dict[str, HookPoint]:
    if not hasattr(model, "hook_points"):
        raise TypeError(f"model must have hook points (a DTransformer), got {type(model).__name__}")
    return model.hook_points()


@contextmanager
def hooked(model, functions: Mapping[str, Callable[[torch.Tensor], torch.Tensor | None]]) -> Iterator[None]:
    """``with hooked(model, {"L1.attn": f}): model(x)`` runs the model with ``f`` attached at state
    "L1.attn": ``f(X)`` sees the state and may return a replacement (``None`` keeps it)."""
    points = _hook_points(model)
    if not isinstance(functions, Mapping):
        raise TypeError(f"functions must be a dict {{hook name: function}}, got {type(functions).__name__}")
    unknown = sorted(set(functions) - set(points))
    if unknown:
        raise ValueError(f"unknown hook point(s) {unknown}; the model has {list(points)}")
    for name, function in functions.items():
        if not callable(function):
            hint = f"; to add a tensor to a state, use perturbed(model, {{{name!r}: delta}})" \
                if isinstance(function, torch.Tensor) else ""
            raise TypeError(f"hook {name!r} must be a function of the tensor (returning None or a replacement), "
                            f"got {type(function).__name__}{hint}")
    attached = []
    try:
        for name, function in functions.items():
            points[name].functions.append(function)
            attached.append((points[name], function))
        yield
    finally:
        for point, function in attached:
            point.functions.remove(function)


def state_names(model) -> list[str]:
    """The names of the 2L+1 states of the stream, in order (``"X0"``, ``"L1.attn"``, ``"L1.mlp"``, …)."""
    return [name for name in _hook_points(model) if name == "X0" or name.endswith((".attn", ".mlp"))]


@contextmanager
def perturbed(model, deltas: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Add ``deltas[name]`` to each named state as it is computed. Zeros change nothing, but a
    function of the zeros then has the states' gradient as its gradient (used with ``torch.func``).
    A delta has the state's shape ``(batch, ℓ, d_e)`` (or one that broadcasts to it) and dtype."""
    if not isinstance(deltas, Mapping):
        raise TypeError(f"deltas must be a dict {{state name: tensor}}, got {type(deltas).__name__}")
    for name, delta in deltas.items():
        if not isinstance(delta, torch.Tensor):
            raise TypeError(f"deltas[{name!r}] must be a torch.Tensor to add to the state, got {type(delta).__name__}"
                            + ("; to run a function at a hook point, use hooked()" if callable(delta) else ""))

    def add(X: torch.Tensor, name: str, delta: torch.Tensor) -> torch.Tensor:
        if delta.dim() > X.dim() or any(d not in (1, s) for d, s in zip(delta.shape[::-1], X.shape[::-1])):
            raise ValueError(f"deltas[{name!r}] has shape {tuple(delta.shape)}; expected the state's shape "
                             f"(batch, ℓ, d_e) = {tuple(X.shape)}, or one that broadcasts to it")
        if delta.dtype != X.dtype:
            raise TypeError(f"deltas[{name!r}] has dtype {delta.dtype}, but the state has dtype {X.dtype}")
        return X + delta

    with hooked(model, {name: (lambda X, n=name, d=delta: add(X, n, d)) for name, delta in deltas.items()}):
        yield


def zero_deltas(model, batch: int, length: int) -> dict[str, torch.Tensor]:
    """A zero tensor ``(batch, ℓ, d_e)`` for every state, to pass to :func:`perturbed`."""
    param = next(model.parameters())
    shape = (batch, length, model.config.d_model)
    return {name: torch.zeros(shape, dtype=param.dtype, device=param.device) for name in state_names(model)}
