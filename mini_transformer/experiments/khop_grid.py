"""k-hop induction against depth: the largest k a depth-L model solves, with a budget check (chapter 4).

Sanford, Hsu & Telgarsky (ICML 2024) show that depth ⌊log₂ k⌋ + 2 suffices for k hops: their
construction reaches every k ≤ 2^(L−1) − 1 with L layers (1, 3, 7 for L = 2, 3, 4). That is a lower
bound on what depth L can express, not a prediction of k*(L), the largest k a trained model solves:
a trained model falling short of it is a failure of training, and only one exceeding a *lower* bound
on depth could conflict with theory. Their lower bound (depth of order log k, under a conjecture) is
asymptotic and holds only at sub-linear width; at the committed size (ℓ = 32 < d = 64) it does not
apply, so this grid asks whether training reaches the construction, and cannot show that depth is
necessary. (The k = 4 cells at ℓ = 32 are thin: the 4-hop target exists at about a fifth of the
positions, and the accuracy scores only those.) For each (L, k) pair of the grid, every
seed trains a fresh DTransformer at the base budget; the pairs in ``budget_pairs`` train again with
twice the steps, so that a boundary which moves with the budget is seen as the budget's, not depth's.
The file is written after every run, and a rerun skips the runs it already holds.

    python -m mini_transformer.experiments.khop_grid --scale small   # the committed file, CPU
    python -m mini_transformer.experiments.khop_grid --scale tiny    # seconds: what CI runs
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..config import TransformerConfig
from ..models import DTransformer
from ..tasks import khop
from ..training import train
from . import RESULTS, load_result, read_previous, script_arguments


@dataclass(frozen=True)
class KHopGridConfig:
    """The grid, the task's size and the training budget."""

    pairs: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (2, 2), (3, 2), (3, 4), (4, 4))  # (L, k)
    budget_pairs: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 4), (4, 4))  # trained again, 2× steps
    n_letters: int = 8
    length: int = 32
    steps: int = 3000
    batch_size: int = 64
    d_model: int = 64
    n_heads: int = 4
    lr: float = 3e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 2000


SCALES = {
    "tiny": KHopGridConfig(pairs=((1, 1), (2, 1)), budget_pairs=((1, 1),), length=12, steps=20, d_model=16,
                           n_heads=2, seeds=(0,), n_test=50),
    "small": KHopGridConfig(),
    "full": KHopGridConfig(pairs=((2, 1), (2, 2), (3, 2), (3, 4), (4, 4), (4, 8), (5, 8), (5, 16), (6, 16)),
                           budget_pairs=((2, 2), (3, 4), (4, 8), (5, 16)), length=128, steps=20000, d_model=128,
                           lr=1e-3),
}


def train_model(n_layers: int, k: int, steps: int, config: KHopGridConfig, seed: int, device=None,
                progress: bool = False) -> DTransformer:
    """A depth-``n_layers`` DTransformer trained on k-hop labels at every position."""
    torch.manual_seed(seed)
    model = DTransformer(TransformerConfig(vocab_size=config.n_letters, max_len=config.length,
                                           d_model=config.d_model, n_layers=n_layers, n_heads=config.n_heads,
                                           output_dim=config.n_letters + 1))  # the letters and NONE
    batches = khop.batches(config.batch_size, config.length, config.n_letters, k, seed=seed)
    train(model.to(device or "cpu"), khop.loss, batches, steps, lr=config.lr, schedule="cosine",
          warmup=min(100, steps // 10), grad_clip=1.0, seed=seed, progress=progress,
          description=f"L={n_layers} k={k} seed {seed} ({steps} steps)")
    return model


def held_out(config: KHopGridConfig, k: int, seed: int = 12345):
    """The held-out sequences and their k-hop labels (a generator separate from training's)."""
    x = khop.sample_letters(config.n_test, config.length, config.n_letters, torch.Generator().manual_seed(seed))
    return x, khop.targets(x, k, config.n_letters)


def runs_to_do(config: KHopGridConfig) -> list[tuple[int, int, int, int]]:
    """Every (L, k, steps, seed): the base budget for every pair, then twice it for the budget pairs."""
    base = [(L, k, config.steps, s) for L, k in config.pairs for s in config.seeds]
    doubled = [(L, k, 2 * config.steps, s) for L, k in config.budget_pairs for s in config.seeds]
    return base + doubled


def run(config: KHopGridConfig, out: Path, device=None, progress: bool = False) -> dict:
    """Train every model of the grid not already in ``out``; write ``out`` after each one."""
    result = read_previous(out, asdict(config))  # {} for a new file; an error names a foreign or truncated one
    result.update(config=asdict(config), prediction="construction's reach: every k <= 2^(L-1) - 1 (Sanford et al. 2024, depth floor(log2 k) + 2 suffices)",
                  device=str(device or "cpu"), threads=torch.get_num_threads())
    result.setdefault("runs", [])
    done = {(r["L"], r["k"], r["steps"], r["seed"]) for r in result["runs"]}
    for L, k, steps, seed in runs_to_do(config):
        if (L, k, steps, seed) in done:
            continue
        start = time.perf_counter()
        model = train_model(L, k, steps, config, seed, device, progress)
        x, y = held_out(config, k)
        result["runs"].append(dict(L=L, k=k, steps=steps, seed=seed, accuracy=khop.accuracy(model, x, y, config.n_letters),
                                   seconds=round(time.perf_counter() - start, 1)))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"L={L} k={k} steps={steps} seed={seed}: accuracy {result['runs'][-1]['accuracy']:.3f} "
              f"({result['runs'][-1]['seconds']:.0f} s)", flush=True)
    return result


def largest_k_solved(result: dict, steps: int, threshold: float = 0.9) -> dict[int, dict[int, int]]:
    """``{L: {seed: k*}}``: per depth and seed, the largest k of the grid solved at ≥ ``threshold``
    with ``steps`` training steps (0 when none is)."""
    table: dict[int, dict[int, int]] = {}
    for r in result["runs"]:
        if r["steps"] != steps:
            continue
        best = table.setdefault(r["L"], {}).setdefault(r["seed"], 0)
        if r["accuracy"] >= threshold:
            table[r["L"]][r["seed"]] = max(best, r["k"])
    return table


def load(path: str | Path | None = None) -> dict:
    """Read a result file (default: the committed CPU grid)."""
    return load_result("khop_grid", path)


def main(argv=None) -> Path:
    args, device = script_arguments(__doc__, SCALES, argv)
    out = args.out or RESULTS / f"khop_grid_{args.scale}.json"
    run(SCALES[args.scale], out, device=device)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
