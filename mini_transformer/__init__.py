"""mini_transformer: Phuong & Hutter's *Formal Algorithms for Transformers* (2022) in PyTorch.

Algorithms 1–7 live in :mod:`~mini_transformer.algorithms`, 8–10 in
:mod:`~mini_transformer.models`, 11–13 in :mod:`~mini_transformer.training` and 14–15 in
:mod:`~mini_transformer.inference`.
"""

from . import gradflow, myopia, paths, plots, recipes, widgets
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
from .baselines import ngram_log_loss
from .config import TransformerConfig
from .inference import continuation_log_probs, d_inference, ed_inference, sample_token
from .models import DTransformer, EDTransformer, ETransformer, ResidualTrace
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
    train,
)

__version__ = "0.1.0"

__all__ = [
    "MLP", "LayerNorm", "MHAttention", "PositionalEmbedding", "TokenEmbedding", "Unembedding",
    "attention", "attention_mask", "layer_norm", "single_query_attention", "sinusoidal_positions",
    "unembedding", "ngram_log_loss", "TransformerConfig", "continuation_log_probs", "d_inference", "ed_inference",
    "sample_token", "DTransformer", "EDTransformer", "ETransformer", "ResidualTrace",
    "load_model", "save_model", "TrainingHistory", "d_training", "d_training_loss", "e_training",
    "e_training_loss", "ed_training", "ed_training_loss", "make_optimizer", "mask_tokens",
    "next_token_loss", "train",
]
