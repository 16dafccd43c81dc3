"""Filler tokens before the answer, vanilla against myopic (chapter 7).

Two-digit multiplication (:mod:`~mini_transformer.tasks.multiplication`), a two-layer model trained
on the answer's next-token loss with F = 0 or F > 0 fillers between "=" and the answer, vanilla or
myopic (β = 0: no gradient into past positions, chapter 5), the same steps and batches for every
arm; scored by greedy exact match on held-out problems. The prediction from chapters 3 and 5: the
fillers can help the vanilla model, which trains their states through the answer's gradient, and
cannot help the myopic one, whose fillers receive no gradient at all.

    python -m mini_transformer.experiments.filler_tokens --scale small   # the committed file, CPU
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis.myopia import myopic
from ..config import TransformerConfig
from ..models import DTransformer
from ..tasks import multiplication as mul
from ..training import train
from . import load_result, merge_tables, read_result_files, resume, seeds_main, write_result

MODES = ("vanilla", "myopic")
TABLES = ("exact_match", "seconds")  # the result file's per-run tables, keyed "mode/F/seed"


@dataclass(frozen=True)
class FillerConfig:
    fillers: tuple[int, ...] = (0, 6)
    steps: int = 4000
    batch_size: int = 64
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 2000
    kernels: str = "fused"  # PyTorch's fused kernels (the myopic arm keeps its own attention kernel)


SCALES = {
    "tiny": FillerConfig(fillers=(0, 2), steps=10, d_model=16, n_heads=2, seeds=(0,), n_test=64),
    "small": FillerConfig(),
    "full": FillerConfig(fillers=(0, 6, 12), steps=20000, d_model=256, n_heads=8, n_test=8000),
}


def build(config: FillerConfig, n_fillers: int) -> DTransformer:
    return DTransformer(TransformerConfig(vocab_size=mul.VOCAB, max_len=6 + n_fillers + mul.N_ANSWER,
                                          d_model=config.d_model, n_layers=config.n_layers, n_heads=config.n_heads,
                                          kernels=config.kernels))


def train_arm(mode: str, n_fillers: int, config: FillerConfig, seed: int = 0, device=None, progress: bool = True):
    """A fresh model trained in ``mode`` with ``n_fillers`` fillers; returns ``(model, seconds)``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    torch.manual_seed(seed)
    model = build(config, n_fillers).to(device or "cpu")
    start = time.perf_counter()
    with myopic(model) if mode == "myopic" else nullcontext():
        train(model, mul.answer_loss, mul.batches(config.batch_size, n_fillers, seed=seed), config.steps,
              lr=config.lr, schedule="cosine", warmup=min(200, config.steps // 10), grad_clip=1.0, device=device,
              progress=progress, description=f"{mode} F={n_fillers} seed {seed}")
    return model, time.perf_counter() - start


def run(config: FillerConfig, out=None, device=None, progress: bool = True, scale: str = "custom",
        seeds: tuple[int, ...] | None = None) -> dict:
    """Every (F, mode, seed) of ``config`` (or only ``seeds``); with ``out``, rewritten after each run and
    resumable. Separate processes may run separate seeds into separate files: :func:`merge` joins them."""
    result = {"config": asdict(config), **resume(out, asdict(config), TABLES)}
    a, b = mul.sample(config.n_test, torch.Generator().manual_seed(12345))
    for seed in config.seeds if seeds is None else [s for s in config.seeds if s in seeds]:
        for n_fillers in config.fillers:
            for mode in MODES:
                key = f"{mode}/{n_fillers}/{seed}"
                if key in result["exact_match"]:
                    continue
                model, seconds = train_arm(mode, n_fillers, config, seed, device, progress)
                result["exact_match"][key] = round(mul.exact_match(model, a, b, n_fillers), 4)
                result["seconds"][key] = round(seconds, 1)
                print(f"{key}: exact match {result['exact_match'][key]:.3f} ({seconds:.0f} s)", flush=True)
                if out is not None:
                    write_result(result, "filler_tokens", scale, Path(out))
    return result


def merge(paths, out) -> dict:
    """Join result files of the same configuration (e.g. one per seed) into ``out``."""
    results = read_result_files(paths, ("config", *TABLES))
    if any(r["config"] != results[0]["config"] for r in results):
        raise ValueError(f"the files {list(map(str, paths))} hold different configurations")
    merged = {"config": results[0]["config"], **merge_tables(results, TABLES)}
    scale, threads = results[0].get("scale", "custom"), results[0].get("threads")
    write_result(merged, "filler_tokens", scale, Path(out))
    merged["threads"] = threads
    Path(out).write_text(json.dumps(merged, separators=(",", ":")))
    return merged


def load(path=None) -> dict:
    return load_result("filler_tokens", path)


def main(argv=None):
    return seeds_main("filler_tokens", __doc__, SCALES, run, argv)


if __name__ == "__main__":
    main()
