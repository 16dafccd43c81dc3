"""Checks of user input that fail early with an error naming the argument and what was expected."""

from __future__ import annotations

import math
import numbers

import torch


def check_tokens(x, *, name: str = "x", vocab_size: int, max_len: int) -> torch.Tensor:
    """Validate a batch of token ids and return it as a ``(batch, ℓ)`` long tensor.

    Accepts ``(ℓ,)`` (one sequence) or ``(batch, ℓ)``; ids must lie in ``[0, vocab_size)`` and
    ``1 <= ℓ <= max_len``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (e.g. torch.long), got dtype {x.dtype}")
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (ℓ,) or (batch, ℓ), got shape {tuple(x.shape)}")
    length = x.shape[1]
    if length < 1:
        raise ValueError(f"{name} must hold at least one token, got length 0")
    if length > max_len:
        raise ValueError(f"{name} has length {length}, longer than max_len ℓ_max={max_len}")
    if x.numel() and (x.min() < 0 or x.max() >= vocab_size):
        bad = x[(x < 0) | (x >= vocab_size)][0].item()
        raise ValueError(f"{name} holds token id {bad}, outside [0, vocab_size={vocab_size})")
    return x.long()


def check_vectors(x, *, name: str = "x", width: int, max_len: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Validate real-valued inputs ``(batch, ℓ, width)`` (or ``(ℓ, width)``) with ℓ ≤ max_len and, if
    ``dtype`` is given, of the model's dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of real inputs, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor (the model has input_dim={width}), got {x.dtype}")
    if dtype is not None:
        check_dtype(x, name, dtype)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (batch, ℓ, {width}), got {tuple(x.shape)}")
    if not 1 <= x.shape[1] <= max_len:
        raise ValueError(f"{name} has length {x.shape[1]}; expected 1 ≤ ℓ ≤ max_len ℓ_max={max_len}")
    return x


def check_int(value, name: str, minimum: int = 1) -> int:
    """An int (not a bool) that is at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(value, name: str, low: float | None = None, high: float | None = None, *,
               low_open: bool = False) -> float:
    """A real number of any numeric type (int, float, NumPy scalar, 0-d tensor; not a bool, not NaN)
    in ``[low, high]`` (``(low, high]`` with ``low_open``; either bound may be None), as a float."""
    if low is not None and high is not None:
        expected = f" in {'(' if low_open else '['}{low}, {high}]"
    elif low is not None:
        expected = f" {'>' if low_open else '>='} {low}"
    else:
        expected = f" <= {high}" if high is not None else ""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not (value.dtype.is_complex or value.dtype == torch.bool):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{expected}, got {type(value).__name__} ({value!r})")
    value = float(value)
    if math.isnan(value) or (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and value > high):
        raise ValueError(f"{name} must be a real number{expected}, got {value}")
    return value


def check_dtype(x: torch.Tensor, name: str, dtype: torch.dtype, owner: str = "model") -> None:
    """A real-valued input ``x`` must have the dtype of ``owner``'s parameters: PyTorch would promote
    some mixes silently (float64 input, float32 weights) and refuse others with a message naming neither."""
    if x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype}, but the {owner}'s parameters have dtype {dtype}; "
                        f"convert one to the other (e.g. {name}.to({dtype}))")


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """The real-valued arguments of an algorithm (given by name, in order) share the first one's dtype."""
    (first, reference), *others = tensors.items()
    for name, tensor in others:
        if tensor.dtype != reference.dtype:
            raise TypeError(f"{name} has dtype {tensor.dtype}, but {first} has dtype {reference.dtype}; "
                            "give every real-valued argument one dtype")


def check_temperature(tau) -> float:
    """τ must be a real number ≥ 0 (τ = 0 means greedy decoding)."""
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau (temperature) must be a real number >= 0, got {type(tau).__name__}")
    if not tau >= 0:  # also rejects NaN
        raise ValueError(f"tau (temperature) must be >= 0, got {tau}")
    return float(tau)


def check_positive_int(value, name: str) -> int:
    return check_int(value, name, minimum=1)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
