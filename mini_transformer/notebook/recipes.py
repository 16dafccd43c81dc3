"""The book's standard training runs, shared by the chapters that need the same model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import TransformerConfig
from ..models import DTransformer
from ..tasks.shakespeare import CharCorpus, random_windows
from ..training import TrainingHistory, d_training, window_losses
from ..validation import check_choice


@dataclass(frozen=True)
class CharLMRecipe:
    """A character-level DTransformer on Shakespeare: its config and Algorithm 13's settings."""

    config: TransformerConfig
    steps: int
    batch_size: int
    lr: float
    warmup: int = 50


def char_lm_recipe(scale: str, vocab_size: int) -> CharLMRecipe:
    """``"small"``: chapter 1's model, 600 steps (under a minute on 2 CPU cores); ``"full"``: a GPU run.

    Both train through the fused kernels (``kernels="fused"``): the same function as the faithful
    code, with the same parameters (``tests/test_fused.py``), faster on a CPU (``benchmarks``). A
    trained model loads into a faithful one with ``load_state_dict`` unchanged."""
    check_choice(scale, "scale", ("small", "full"))
    if scale == "full":
        config = TransformerConfig(vocab_size=vocab_size, max_len=256, d_model=384, n_layers=6, n_heads=6,
                                   kernels="fused")
        return CharLMRecipe(config, steps=5000, batch_size=64, lr=1e-3)
    config = TransformerConfig(vocab_size=vocab_size, max_len=64, d_model=64, n_layers=2, n_heads=4, kernels="fused")
    return CharLMRecipe(config, steps=600, batch_size=64, lr=5e-3)


def validation_loss(model, windows: torch.Tensor, chunk: int = 256) -> float:
    """Mean next-token loss over ``windows (n, ℓ)``, in nats per token."""
    return window_losses(model, windows, chunk).mean().item()


def train_char_lm(recipe: CharLMRecipe, corpus: CharCorpus, *, seed: int = 0, device=None, **kwargs):
    """Build and train the recipe's model (AdamW, warm-up, cosine decay, clipping at 1).
    Extra keyword arguments go to :func:`~mini_transformer.training.train` (e.g. ``eval_fn``).
    Returns ``(model, history)``."""
    torch.manual_seed(seed)
    model = DTransformer(recipe.config).to(device or "cpu")
    batches = random_windows(corpus.train, recipe.batch_size, recipe.config.max_len,
                             generator=torch.Generator().manual_seed(seed))
    history: TrainingHistory = d_training(
        model, batches, recipe.steps, optimizer="adamw", lr=recipe.lr, schedule="cosine",
        warmup=recipe.warmup, grad_clip=1.0, seed=seed, **kwargs,
    )
    return model, history
