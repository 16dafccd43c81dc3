"""Hook points: one way into the residual stream, in the manner of TransformerLens's ``HookPoint``.

A :class:`HookPoint` is an identity module placed at a state of the stream. A DTransformer has one
at every state — X_0 (``"X0"``), after each attention update (``"L1.attn"``, …) and after each MLP
update (``"L1.mlp"``, …) — and one on each layer's attention pattern (``"L1.pattern"``, …).
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
    """The identity, with room for functions that see (and may replace) the tensor passing by."""

    def __init__(self):
        super().__init__()
        self.name: str | None = None  # set by the model: "X0", "L1.attn", "L1.pattern", …
        self.functions: list[Callable[[torch.Tensor], torch.Tensor | None]] = []

    @property
    def active(self) -> bool:
        return bool(self.functions)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        for function in self.functions:
            result = function(tensor)
            if result is not None:
                tensor = result
        return tensor

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
    unknown = sorted(set(functions) - set(points))
    if unknown:
        raise ValueError(f"unknown hook point(s) {unknown}; the model has {list(points)}")
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
    return [name for name in _hook_points(model) if not name.endswith(".pattern")]


@contextmanager
def perturbed(model, deltas: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Add ``deltas[name]`` to each named state as it is computed. Zeros change nothing, but a
    function of the zeros then has the states' gradient as its gradient (used with ``torch.func``)."""
    with hooked(model, {name: (lambda X, d=delta: X + d) for name, delta in deltas.items()}):
        yield


def zero_deltas(model, batch: int, length: int) -> dict[str, torch.Tensor]:
    """A zero tensor ``(batch, ℓ, d_e)`` for every state, to pass to :func:`perturbed`."""
    param = next(model.parameters())
    shape = (batch, length, model.config.d_model)
    return {name: torch.zeros(shape, dtype=param.dtype, device=param.device) for name in state_names(model)}
