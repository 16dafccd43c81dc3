"""Accuracy of *trained* models on the S3 word problem against depth L and the number k of elements
composed (chapter 4).

One model per depth L is trained with a label at every position, so a single model is scored at
every k = 1 … n: s_k = g_k ∘ … ∘ g_1. The written-steps model (one layer) writes each running
product as a token and reads it back; :func:`train_filler` trains the filler-token control. What
the grid measures is what this training budget found, not what depth allows: S3 is solvable, and a
two-layer model solves it exactly at every length (:func:`mini_transformer.analysis.compiled.compile_s3_shortcut`).

    python -m mini_transformer.experiments.depth_grid --scale small   # the committed file, CPU
    python -m mini_transformer.experiments.depth_grid --scale full    # a GPU run
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..config import TransformerConfig
from ..models import DTransformer
from ..tasks import permutations as s3
from ..training import train
from . import load_result, script_arguments, write_result


@dataclass(frozen=True)
class DepthGridConfig:
    """Sizes and training budget of the depth × steps grid."""

    depths: tuple[int, ...] = (1, 2, 3, 4)
    length: int = 16  # n: the largest k
    steps: int = 3000
    written_steps: int = 600
    written_depth: int = 1
    batch_size: int = 64
    d_model: int = 64
    n_heads: int = 4
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1)
    n_test: int = 2000


SCALES = {
    "tiny": DepthGridConfig(depths=(1, 2), length=6, steps=30, written_steps=30, d_model=16, n_heads=2,
                            seeds=(0,), n_test=100),
    "small": DepthGridConfig(),
    "full": DepthGridConfig(depths=(1, 2, 3, 4, 6), length=32, steps=20000, written_steps=3000, d_model=128,
                            seeds=(0, 1, 2)),
}


def _fit(model, loss_fn, batches, steps: int, config: DepthGridConfig, seed: int, device, progress: bool, name: str):
    train(model, loss_fn, batches, steps, lr=config.lr, schedule="cosine", warmup=min(100, steps // 10),
          grad_clip=1.0, seed=seed, device=device, progress=progress, description=name)
    return model


def train_silent(n_layers: int, config: DepthGridConfig, seed: int = 0, device=None, progress: bool = True):
    """A DTransformer of depth ``n_layers`` trained to output s_t at every position t, silently."""
    torch.manual_seed(seed)
    model = DTransformer(TransformerConfig(vocab_size=s3.ORDER, max_len=config.length, d_model=config.d_model,
                                           n_layers=n_layers, n_heads=config.n_heads))
    batches = s3.silent_batches(config.batch_size, config.length, seed=seed)
    return _fit(model, s3.silent_loss, batches, config.steps, config, seed, device, progress, f"silent L={n_layers}")


def train_written(n_layers: int, config: DepthGridConfig, seed: int = 0, device=None, progress: bool = True):
    """A DTransformer of depth ``n_layers`` trained (teacher-forced) to write each s_t after g_t."""
    torch.manual_seed(seed)
    model = DTransformer(TransformerConfig(vocab_size=s3.WRITTEN_VOCAB, max_len=2 * config.length,
                                           d_model=config.d_model, n_layers=n_layers, n_heads=config.n_heads))
    batches = s3.written_batches(config.batch_size, config.length, seed=seed)
    return _fit(model, s3.written_loss, batches, config.written_steps, config, seed, device, progress,
                f"written L={n_layers}")


def train_filler(n_layers: int, config: DepthGridConfig, seed: int = 0, device=None, progress: bool = True):
    """A DTransformer of depth ``n_layers`` trained on the filler format g_1 . g_2 . … to output s_t at
    the "." after g_t, silently, for ``config.steps`` steps (as many positions as the written format)."""
    torch.manual_seed(seed)
    model = DTransformer(TransformerConfig(vocab_size=s3.FILLER_VOCAB, max_len=2 * config.length,
                                           d_model=config.d_model, n_layers=n_layers, n_heads=config.n_heads))
    batches = s3.filler_batches(config.batch_size, config.length, seed=seed)
    return _fit(model, s3.filler_loss, batches, config.steps, config, seed, device, progress, f"filler L={n_layers}")


def held_out(config: DepthGridConfig, seed: int = 12345):
    """The held-out sequences every model is scored on (a generator separate from training's)."""
    return s3.sample(config.n_test, config.length, torch.Generator().manual_seed(seed))


def run(config: DepthGridConfig, device=None, progress: bool = True) -> dict:
    """Train every model of the grid and return accuracies by (depth, k), per seed."""
    g, s = held_out(config)
    result = {"config": asdict(config), "chance": 1 / s3.ORDER, "silent": {}, "silent_sign": {}, "written": {},
              "seconds": {}}
    for n_layers in config.depths:
        start = time.perf_counter()
        models = [train_silent(n_layers, config, seed, device, progress) for seed in config.seeds]
        result["silent"][str(n_layers)] = [s3.silent_accuracy(m, g, s).tolist() for m in models]
        result["silent_sign"][str(n_layers)] = [s3.silent_sign_accuracy(m, g, s).tolist() for m in models]
        result["seconds"][f"silent L={n_layers}"] = time.perf_counter() - start
    start = time.perf_counter()
    result["written"][str(config.written_depth)] = [
        s3.written_accuracy(train_written(config.written_depth, config, seed, device, progress), g, s).tolist()
        for seed in config.seeds]
    result["seconds"][f"written L={config.written_depth}"] = time.perf_counter() - start
    result["device"] = str(device or "cpu")
    return result


def load(path: str | Path | None = None) -> dict:
    """Read a result file (default: the committed CPU grid)."""
    return load_result("depth_grid", path)


def main(argv=None) -> Path:
    args, device = script_arguments(__doc__, SCALES, argv)
    return write_result(run(SCALES[args.scale], device=device), "depth_grid", args.scale, args.out, indent=1)


if __name__ == "__main__":
    main()
