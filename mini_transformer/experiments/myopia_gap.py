"""Vanilla, myopic and transformer-bigram character models on Shakespeare, at several sizes
(chapter 6): the myopia gap with its uncertainty, loss by position, and probes for future tokens.

Every model of one size sees the same batches (same data seed) for the same number of steps from
the same initialisation; only the gradient differs (myopic: β = 0) or, for the bigram baseline,
the forward pass (past keys and values zeroed). Per validation window the script stores each
model's mean loss, so the chapter can bootstrap the paired difference.

    python -m mini_transformer.experiments.myopia_gap --scale small   # the committed file, CPU
    python -m mini_transformer.experiments.myopia_gap --scale full    # a GPU run
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..config import TransformerConfig
from ..models import DTransformer, device_of, trace
from ..analysis.myopia import myopic
from ..analysis.probes import probe_accuracy
from ..tasks.shakespeare import CharCorpus, fixed_windows, random_windows, shakespeare
from ..training import d_training, window_losses
from ..validation import check_choice
from . import RESULTS, load_result, script_arguments, write_result
MODES = ("vanilla", "myopic", "bigram")


@dataclass(frozen=True)
class ModelSize:
    name: str
    d_model: int
    n_layers: int
    n_heads: int


@dataclass(frozen=True)
class GapConfig:
    """Sizes and the training budget shared by every model."""

    sizes: tuple[ModelSize, ...]
    steps: int = 600
    batch_size: int = 64
    length: int = 64
    lr: float = 5e-3
    warmup: int = 50
    seeds: tuple[int, ...] = (0,)
    n_val: int = 1024  # validation windows
    probe_windows: int = 256  # windows for the probes (half fit, half score)
    n_plays: int | None = None
    budget_size: str | None = None  # a size to train again at each of ``budget_steps`` (seed 0)
    budget_steps: tuple[int, ...] = ()


SCALES = {
    "tiny": GapConfig(sizes=(ModelSize("XS", 16, 1, 2), ModelSize("S", 24, 2, 2)), steps=20, length=16,
                      n_val=32, probe_windows=16, n_plays=2, budget_size="XS", budget_steps=(10, 20)),
    "small": GapConfig(sizes=(ModelSize("XS", 32, 2, 2), ModelSize("S", 64, 2, 4), ModelSize("M", 96, 3, 4)),
                       seeds=(0, 1), budget_size="S", budget_steps=(300, 1200, 2400)),
    "full": GapConfig(sizes=(ModelSize("XS", 64, 2, 4), ModelSize("S", 128, 4, 4), ModelSize("M", 256, 6, 8),
                             ModelSize("L", 384, 8, 8)), steps=5000, length=128, lr=1e-3, seeds=(0, 1, 2),
                      n_val=2048, probe_windows=512, budget_size="S", budget_steps=(1250, 2500, 10000)),
}


def build(size: ModelSize, vocab_size: int, length: int, mode: str) -> DTransformer:
    """An untrained model of ``size``; ``mode="bigram"`` zeroes what every position reads from the past."""
    check_choice(mode, "mode", MODES)
    return DTransformer(TransformerConfig(vocab_size=vocab_size, max_len=length, d_model=size.d_model,
                                          n_layers=size.n_layers, n_heads=size.n_heads, zero_past=mode == "bigram"))


def train_model(size: ModelSize, mode: str, corpus: CharCorpus, config: GapConfig, seed: int = 0,
                device=None, progress: bool = True) -> DTransformer:
    """Train one model: vanilla (β = 1), myopic (β = 0) or transformer bigram, from the init and the
    batches that ``seed`` fixes for every mode."""
    torch.manual_seed(seed)
    model = build(size, corpus.tokenizer.vocab_size, config.length, mode).to(device or "cpu")
    batches = random_windows(corpus.train, config.batch_size, config.length,
                             generator=torch.Generator().manual_seed(seed))
    with myopic(model, beta=0.0) if mode == "myopic" else nullcontext():
        d_training(model, batches, config.steps, optimizer="adamw", lr=config.lr, schedule="cosine",
                   warmup=config.warmup, grad_clip=1.0, seed=seed, progress=progress,
                   description=f"{size.name} {mode} (seed {seed})")
    return model


@torch.no_grad()
def future_token_probes(model, windows: torch.Tensor, horizons=(1, 2, 3)) -> dict[str, list[float]]:
    """Accuracy of linear probes that read the state X after each layer (X_0, X_2, …, X_2L) at
    position t and predict the token at t + h, for each horizon h. Half of ``windows`` fits the
    probes, half scores them."""
    device = device_of(model)
    _, stream = trace(model, windows.to(device))
    states = [stream.layer(l).cpu() for l in range(stream.n_layers + 1)]  # X_0, X_1, …, X_L
    half, n, h_max = len(windows) // 2, windows.shape[1], max(horizons)
    result = {}
    for h in horizons:
        targets = windows[:, h:n - h_max + h]  # token at t + h for t = 0 … n − h_max − 1
        accuracies = []
        for X in states:
            features = X[:, :n - h_max]
            d = features.shape[-1]
            accuracies.append(probe_accuracy(features[:half].reshape(-1, d), targets[:half].reshape(-1),
                                             features[half:].reshape(-1, d), targets[half:].reshape(-1),
                                             n_classes=model.config.vocab_size))
        result[str(h)] = accuracies
    return result


def _rounded(values: torch.Tensor, digits: int = 5) -> list[float]:
    return [round(v, digits) for v in values.tolist()]


def budget_sweep(config: GapConfig, corpus: CharCorpus, val: torch.Tensor, device=None,
                 progress: bool = True) -> dict:
    """Vanilla and myopic models of ``config.budget_size`` trained for each of ``config.budget_steps``
    (seed 0): does the gap close with more training? Returns {steps: {mode: per-window losses}}."""
    size = next(s for s in config.sizes if s.name == config.budget_size)
    sweep = {}
    for steps in config.budget_steps:
        budget = replace(config, steps=steps)
        sweep[str(steps)] = {mode: _rounded(window_losses(train_model(size, mode, corpus, budget, 0, device, progress),
                                                          val).mean(1))
                             for mode in ("vanilla", "myopic")}
    return sweep


def run(config: GapConfig, device=None, progress: bool = True, sizes: bool = True, budget: bool = True) -> dict:
    """Train every (size, mode, seed) and return per-window losses, loss by position and probes, and
    (``budget``) the training-budget sweep of :func:`budget_sweep`."""
    corpus = shakespeare(n_plays=config.n_plays)
    val = fixed_windows(corpus.val, config.n_val, config.length, seed=1)
    probe_set = fixed_windows(corpus.val, config.probe_windows, config.length, seed=2)
    result = {"config": asdict(config), "vocab_size": corpus.tokenizer.vocab_size, "sizes": {}, "seconds": {}}
    if budget and config.budget_size is not None:
        start = time.perf_counter()
        result["budget"] = budget_sweep(config, corpus, val, device, progress)
        result["seconds"]["budget sweep"] = time.perf_counter() - start
    for size in (config.sizes if sizes else ()):
        entry = {"parameters": None, **{mode: [] for mode in MODES}}
        for seed in config.seeds:
            for mode in MODES:
                start = time.perf_counter()
                model = train_model(size, mode, corpus, config, seed, device, progress)
                result["seconds"][f"{size.name} {mode} seed {seed}"] = time.perf_counter() - start
                entry["parameters"] = sum(p.numel() for p in model.parameters())
                losses = window_losses(model, val)
                record = {"seed": seed, "window_loss": _rounded(losses.mean(1)), "by_position": _rounded(losses.mean(0))}
                if mode != "bigram":
                    record["probes"] = future_token_probes(model, probe_set)
                entry[mode].append(record)
        result["sizes"][size.name] = entry
    result["device"] = str(device or "cpu")
    return result


def load(path: str | Path | None = None) -> dict:
    """Read a result file (default: the committed CPU run)."""
    return load_result("myopia_gap", path)


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b − a`` over paired samples (e.g. validation windows) and a 95 % bootstrap interval."""
    diff = torch.as_tensor(b, dtype=torch.float64) - torch.as_tensor(a, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(diff), (n_boot, len(diff)), generator=generator)
    means = diff[idx].mean(1)
    return diff.mean().item(), means.quantile(0.025).item(), means.quantile(0.975).item()


def main(argv=None) -> Path:
    def only_budget(parser):
        parser.add_argument("--only-budget", action="store_true",
                            help="run only the training-budget sweep and add it to an existing result file")

    args, device = script_arguments(__doc__, SCALES, argv, extra=only_budget)
    config = SCALES[args.scale]
    if args.only_budget:
        result = json.loads((args.out or RESULTS / f"myopia_gap_{args.scale}.json").read_text())
        sweep = run(config, device=device, sizes=False)
        result["budget"], result["seconds"]["budget sweep"] = sweep["budget"], sweep["seconds"]["budget sweep"]
        result["config"] = sweep["config"]
    else:
        result = run(config, device=device)
    return write_result(result, "myopia_gap", args.scale, args.out)


if __name__ == "__main__":
    main()
