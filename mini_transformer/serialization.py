"""Save and load a model: its config and weights in one file, read back with ``weights_only=True``.

The config holds every option that changes the forward pass (``mask_kind``, ``zero_past``,
``kernels``, …), so a model reloads as the same function. A file that is not such a model —
missing, empty, truncated, corrupted, an arbitrary pickle, or weights of another shape — raises a
``ValueError`` (``FileNotFoundError`` for a missing file) that names the file and what is wrong.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import torch

from .config import TransformerConfig
from .models import DTransformer, EDTransformer, ETransformer

MODEL_CLASSES = {cls.__name__: cls for cls in (DTransformer, ETransformer, EDTransformer)}
FORMAT_VERSION = 1
KEYS = ("format", "class", "config", "state_dict")


def save_model(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write ``model`` (one of the package's transformers) to ``path``."""
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {name}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    torch.save(
        {
            "format": FORMAT_VERSION,
            "class": name,
            "config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def _read_payload(path: Path, map_location) -> dict:
    """The unpickled dict, or a ValueError naming the file. Only tensors and plain data are
    unpickled (``weights_only=True``); any other pickle is refused, never executed."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist (or is not a file)")
    if path.stat().st_size == 0:
        raise ValueError(f"model file {str(path)!r} is empty")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before failing: noise here
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which would run arbitrary code: not repeated
        raise ValueError(f"model file {str(path)!r} is not a mini_transformer model file: it is corrupted, "
                         "or it holds Python objects other than tensors and plain data (refused: "
                         "unpickling them could run code)") from None
    except (EOFError, RuntimeError, OSError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"model file {str(path)!r} is not a readable mini_transformer model file: it is "
                         f"truncated, corrupted, or was not written by save_model ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or set(payload) != set(KEYS):
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"model file {str(path)!r} is not a mini_transformer model file: expected a dict "
                         f"with keys {list(KEYS)}, found {found}")
    if payload["format"] != FORMAT_VERSION:
        raise ValueError(f"model file {str(path)!r} has format {payload['format']!r}; this version reads "
                         f"format {FORMAT_VERSION}")
    return payload


def _check_map_location(map_location) -> None:
    """A device name or ``torch.device`` must name a device this machine has (else torch.load's error
    would be reported as a broken file). torch.load's other forms (a dict, a function) pass unchecked."""
    if not isinstance(map_location, (str, torch.device)):
        if map_location is None or callable(map_location) or isinstance(map_location, dict):
            return
        raise TypeError(f"map_location must be a device such as 'cpu' or 'cuda' (a str or torch.device), "
                        f"got {type(map_location).__name__}")
    try:
        torch.empty(0, device=map_location)
    except (RuntimeError, AssertionError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"map_location={map_location!r} is not a device available here (use e.g. 'cpu'): "
                         f"{reason}") from None


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Read a model written by :func:`save_model`, in eval mode, its tensors on ``map_location``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    _check_map_location(map_location)
    path = Path(path)
    payload = _read_payload(path, map_location)
    cls = MODEL_CLASSES.get(payload["class"])
    if cls is None:
        raise ValueError(f"model file {str(path)!r} holds an unknown model class {payload['class']!r}; "
                         f"expected one of {sorted(MODEL_CLASSES)}")
    try:
        model = cls(TransformerConfig.from_dict(payload["config"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model file {str(path)!r} holds an invalid config: {exc}") from None
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model file {str(path)!r}: state_dict must map names to tensors")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [f"{k}: {tuple(state[k].shape)} (expected {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise ValueError(f"model file {str(path)!r}: weights do not fit its {payload['class']} config; "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}")
    model.load_state_dict(state)
    return model.eval()
