"""Save and load a model: its config and weights in one file, read back with ``weights_only=True``."""

from __future__ import annotations

import os

import torch

from .config import TransformerConfig
from .models import DTransformer, EDTransformer, ETransformer

MODEL_CLASSES = {cls.__name__: cls for cls in (DTransformer, ETransformer, EDTransformer)}
FORMAT_VERSION = 1


def save_model(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write ``model`` (one of the package's transformers) to ``path``."""
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {name}")
    torch.save(
        {
            "format": FORMAT_VERSION,
            "class": name,
            "config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        path,
    )


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Read a model written by :func:`save_model`. Only tensors and plain data are unpickled."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a mini_transformer model file (format {FORMAT_VERSION})")
    cls = MODEL_CLASSES.get(payload["class"])
    if cls is None:
        raise ValueError(f"{path} holds an unknown model class {payload['class']!r}")
    model = cls(TransformerConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
