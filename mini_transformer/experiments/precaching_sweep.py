"""Chapter 5's p-sweep: which targets the myopic model fails on, at two budgets, over seeds.

The task of :mod:`~mini_transformer.tasks.precaching` with a share p of positions whose target is a
sum of past sines (the rest copy their own input). For every p, every budget and every seed, two
models start from the same initialisation and see the same batches: one trained with the vanilla
gradient, one with the myopic one (β = 0). Each is scored on a fixed sample by
:func:`~mini_transformer.tasks.precaching.loss_by_target_kind` (loss / all-zero loss, separately on the
positions that need the past and on the copy positions). The recipe is chapter 5's ``run``: AdamW,
lr 3e-3, cosine decay after a warm-up of a tenth of the steps, gradient clipping at 1.

    python -m mini_transformer.experiments.precaching_sweep --scale small   # the committed file, CPU
    python -m mini_transformer.experiments.precaching_sweep --scale lr1e-3  # p = 1, 800 steps, lr 1e-3
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from ..analysis.myopia import myopic
from ..config import TransformerConfig
from ..models import DTransformer
from ..tasks.precaching import PrecachingTask, huber_loss, loss_by_target_kind
from ..training import train
from . import RESULTS, load_result, resume, seeds_main, write_result  # noqa: F401 (RESULTS: for the chapters)

MODES = ("vanilla", "myopic")
TABLES = ("loss", "seconds")  # per run, keyed "mode/p/steps/seed"; loss = {"past": ratio, "copy": ratio}


@dataclass(frozen=True)
class PrecachingSetting:
    """Chapter 5's task (window w, frequency f, sequence length), model and optimiser, shared by its
    scripts (this sweep and :mod:`~mini_transformer.experiments.precaching_pair`)."""

    window: int = 5
    frequency: float = 3.0
    length: int = 32
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 2
    batch_size: int = 64
    lr: float = 3e-3
    seeds: tuple[int, ...] = (0, 1, 2)


@dataclass(frozen=True)
class SweepConfig(PrecachingSetting):
    ps: tuple[float, ...] = (0.25, 0.5, 1.0)
    budgets: tuple[int, ...] = (200, 800)  # training steps
    n_eval: int = 1024  # scored sequences (seed 5, as in the chapter)


SCALES = {
    "tiny": SweepConfig(ps=(0.5, 1.0), budgets=(5, 10), d_model=16, length=16, window=3, seeds=(0,), n_eval=64),
    "small": SweepConfig(),
    "full": SweepConfig(budgets=(4000, 20000), window=10, frequency=10.0, length=64, d_model=128),
    # the main pair's setting (p = 1, 800 steps) at lower peak learning rates: does the myopic arm settle?
    "lr1e-3": SweepConfig(ps=(1.0,), budgets=(800,), lr=1e-3),
    "lr3e-4": SweepConfig(ps=(1.0,), budgets=(800,), lr=3e-4),
}


def key(mode: str, p: float, steps: int, seed: int) -> str:
    return f"{mode}/{p:g}/{steps}/{seed}"


def task_at(config: PrecachingSetting, p: float) -> PrecachingTask:
    return PrecachingTask(window=config.window, frequency=config.frequency, p=p, length=config.length)


def build(config: PrecachingSetting) -> DTransformer:
    """Chapter 5's model: real inputs (x, z), one real output, ReLU MLPs, the faithful kernels."""
    return DTransformer(TransformerConfig(vocab_size=1, max_len=config.length, d_model=config.d_model,
                                          n_layers=config.n_layers, n_heads=config.n_heads, activation="relu",
                                          input_dim=2, output_dim=1))


def train_arm(mode: str, p: float, steps: int, config: PrecachingSetting, seed: int, device=None,
              progress: bool = True, eval_fn=None, eval_every: int = 100):
    """A fresh model (initialisation and batches seeded by ``seed``) trained ``steps`` in ``mode``
    ("vanilla" or "myopic", β = 0) with chapter 5's recipe. ``eval_fn(model)``, if given, runs every
    ``eval_every`` steps (see :func:`~mini_transformer.training.train`). Returns the model (in eval
    mode), its :class:`~mini_transformer.training.TrainingHistory` and the seconds it took."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    torch.manual_seed(seed)
    model = build(config).to(device or "cpu")
    start = time.perf_counter()
    with myopic(model, beta=1.0 if mode == "vanilla" else 0.0):
        history = train(model, huber_loss, task_at(config, p).batches(config.batch_size, seed=seed), steps,
                        lr=config.lr, schedule="cosine", warmup=steps // 10, grad_clip=1.0, device=device,
                        progress=progress, description=f"{mode} p={p:g} {steps} steps seed {seed}",
                        eval_fn=eval_fn, eval_every=eval_every)
    return model.eval(), history, time.perf_counter() - start


def run(config: SweepConfig, out=None, device=None, progress: bool = True, scale: str = "custom",
        seeds: tuple[int, ...] | None = None) -> dict:
    """Every (p, budget, mode, seed) of ``config`` (or only ``seeds``); with ``out``, rewritten after
    each run and resumable."""
    result = {"config": asdict(config), **resume(out, asdict(config), TABLES)}
    for seed in config.seeds if seeds is None else [s for s in config.seeds if s in seeds]:
        for p in config.ps:
            inputs, targets = [t.to(device or "cpu") for t in task_at(config, p).sample(
                config.n_eval, torch.Generator().manual_seed(5))]
            for steps in config.budgets:
                for mode in MODES:
                    name = key(mode, p, steps, seed)
                    if name in result["loss"]:
                        continue
                    model, _, seconds = train_arm(mode, p, steps, config, seed, device, progress)
                    ratios = loss_by_target_kind(model, inputs, targets)
                    result["loss"][name] = {kind: None if ratio != ratio else round(ratio, 5)  # NaN: no such position
                                            for kind, ratio in ratios.items()}
                    result["seconds"][name] = round(seconds, 1)
                    print(f"{name}: past {ratios['past']:.3f} ({seconds:.0f} s)", flush=True)
                    if out is not None:
                        write_result(result, "precaching_sweep", scale, out)
    return result


def table(result: dict, kind: str = "past") -> dict[tuple[str, float, int], list[float]]:
    """``{(mode, p, steps): [ratio per seed, in the order of the configuration's seeds]}`` for ``kind``
    ("past" or "copy"; copy ratios are None at p = 1, where no position copies)."""
    if kind not in ("past", "copy"):
        raise ValueError(f"kind must be 'past' or 'copy', got {kind!r}")
    config = result["config"]
    return {(mode, p, steps): [result["loss"][key(mode, p, steps, seed)][kind] for seed in config["seeds"]]
            for mode in MODES for p in config["ps"] for steps in config["budgets"]}


def load(path=None) -> dict:
    return load_result("precaching_sweep", path)


def main(argv=None):
    return seeds_main("precaching_sweep", __doc__, SCALES, run, argv)


if __name__ == "__main__":
    main()
