"""mini_transformer: Phuong & Hutter's *Formal Algorithms for Transformers* (2022) in PyTorch.

The package is layered; imports run one way, from the top of this list down:

* ``notebook/`` — what serves the book: set-up, figures (``plots``), explorers (``widgets``), the
  chapters' standard training runs (``recipes``);
* ``experiments/`` — seeded scripts that write the result files the chapters load;
* ``analysis/`` — the research tools: gradient flow (``gradflow``), computation paths
  (``paths``), myopic training (``myopia``, ``untied``), probes, n-gram baselines;
  ``tasks/`` — the synthetic and real data the chapters train on;
* the paper itself, at the top of the package: Algorithms 1–7 in :mod:`~mini_transformer.algorithms`,
  8–10 in :mod:`~mini_transformer.models` (with :mod:`~mini_transformer.hooks`, the hook points on
  the residual stream), 11–13 in :mod:`~mini_transformer.training`, 14–15 in
  :mod:`~mini_transformer.inference`.

``import mini_transformer`` loads the paper layer only (no matplotlib, no ipywidgets); ``mt.plots``,
``mt.gradflow`` and the other tool modules load on first use.
"""

import importlib

from .algorithms import (
    MLP,
    LayerNorm,
    MHAttention,
    PositionalEmbedding,
    TokenEmbedding,
    Unembedding,
    attention,
    attention_mask,
    layer_norm,
    single_query_attention,
    sinusoidal_positions,
    unembedding,
)
from .config import TransformerConfig
from .hooks import HookPoint, hooked, perturbed
from .inference import continuation_log_probs, d_inference, ed_inference, sample_token
from .models import DTransformer, EDTransformer, ETransformer, ResidualTrace, state_names, trace
from .serialization import load_model, save_model
from .training import (
    TrainingHistory,
    d_training,
    d_training_loss,
    e_training,
    e_training_loss,
    ed_training,
    ed_training_loss,
    make_optimizer,
    mask_tokens,
    next_token_loss,
    token_losses,
    train,
    window_losses,
)

__version__ = "0.1.0"

# Tool modules, loaded on first use so that importing the paper layer stays light.
_LAZY_MODULES = {
    "gradflow": "analysis.gradflow", "paths": "analysis.paths", "myopia": "analysis.myopia",
    "untied": "analysis.untied", "probes": "analysis.probes", "baselines": "analysis.baselines",
    "plots": "notebook.plots", "widgets": "notebook.widgets", "recipes": "notebook.recipes",
    "notebook": "notebook", "analysis": "analysis", "tasks": "tasks", "experiments": "experiments",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        module = importlib.import_module(f".{_LAZY_MODULES[name]}", __name__)
        globals()[name] = module
        return module
    if name == "ngram_log_loss":
        from .analysis.baselines import ngram_log_loss

        return ngram_log_loss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MLP", "LayerNorm", "MHAttention", "PositionalEmbedding", "TokenEmbedding", "Unembedding",
    "attention", "attention_mask", "layer_norm", "single_query_attention", "sinusoidal_positions",
    "unembedding", "ngram_log_loss", "TransformerConfig", "HookPoint", "hooked", "perturbed",
    "continuation_log_probs", "d_inference", "ed_inference", "sample_token", "DTransformer",
    "EDTransformer", "ETransformer", "ResidualTrace", "state_names", "trace", "load_model", "save_model",
    "TrainingHistory", "d_training", "d_training_loss", "e_training", "e_training_loss", "ed_training",
    "ed_training_loss", "make_optimizer", "mask_tokens", "next_token_loss", "token_losses", "train",
    "window_losses",
]
