"""Chapter 5's main pair: a vanilla and a myopic model trained on the pre-caching task at p = 1.

Per seed, both models start from one initialisation and see the same batches (the recipe of
:func:`~mini_transformer.experiments.precaching_sweep.train_arm`). Every ``eval_every`` steps each run
records its validation loss / trivial loss and the angle between the vanilla and the myopic gradient
(:func:`~mini_transformer.analysis.myopia.gradient_cosines`) on a fixed batch. The file keeps those
curves; the trained weights go beside it (``precaching_pair_<scale>/<mode>-seed<seed>.pt``), so the
chapter analyses the same models on every machine instead of retraining them, which costs more than
its time budget and, for a model still learning, changes with the last bits of the arithmetic.
The chapter can also train the pair itself (``TRAIN_HERE = True``, or a seed the file lacks).

    python -m mini_transformer.experiments.precaching_pair --scale small   # the committed files, CPU
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis.myopia import gradient_cosines
from ..serialization import load_model, save_model
from ..tasks.precaching import PrecachingTask, huber_loss, trivial_loss
from . import RESULTS, load_result, resume, seeds_main, write_result
from .precaching_sweep import MODES, PrecachingSetting, build, task_at, train_arm

TABLES = ("runs",)  # keyed "mode/seed": {"curve": [(step, loss / trivial)], "cosines": [(all, below top)], ...}


@dataclass(frozen=True)
class PairConfig(PrecachingSetting):
    p: float = 1.0  # share of positions whose target is a sum of past sines
    steps: int = 800
    eval_every: int = 100
    n_val: int = 512  # validation sequences (seed 99)
    n_angle: int = 64  # the batch on which the gradient angle is measured (seed 7)


SCALES = {
    "tiny": PairConfig(steps=10, window=3, length=16, d_model=16, eval_every=5, seeds=(0, 1), n_val=32, n_angle=8),
    "small": PairConfig(),
    "full": PairConfig(steps=20000, window=10, frequency=10.0, length=64, d_model=128, eval_every=1000),
}


def task_of(config: PairConfig) -> PrecachingTask:
    return task_at(config, config.p)


def validation_set(config: PairConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(t.to(device or "cpu") for t in task_of(config).sample(config.n_val, torch.Generator().manual_seed(99)))


def angle_batch(config: PairConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(t.to(device or "cpu") for t in task_of(config).sample(config.n_angle,
                                                                        torch.Generator().manual_seed(7)))


def train_logged(mode: str, config: PairConfig, seed: int, device=None, progress: bool = True):
    """One arm of the pair, trained ``config.steps``; returns ``(model, record)`` with the record's
    ``curve`` [(step, validation loss / trivial loss)], ``cosines`` [(all parameters, below the top)]
    at the same steps, and ``seconds``."""
    val, angles, trivial, cosines = validation_set(config, device), angle_batch(config, device), trivial_loss(
        task_of(config)), []

    def log(model):
        cosines.append(gradient_cosines(model, huber_loss, *angles))
        return huber_loss(model, *val).item() / trivial

    model, history, seconds = train_arm(mode, config.p, config.steps, config, seed, device, progress,
                                        eval_fn=log, eval_every=config.eval_every)
    return model, {"curve": [(s, round(v, 6)) for s, v in history.evaluations],
                   "cosines": [(round(a, 6), round(b, 6)) for a, b in cosines], "seconds": round(seconds, 1)}


def weights_path(out: str | Path, mode: str, seed: int) -> Path:
    """Where the trained ``mode`` model of ``seed`` lives beside the result file ``out``."""
    out = Path(out)
    return out.with_suffix("") / f"{mode}-seed{seed}.pt"


def run(config: PairConfig, out=None, device=None, progress: bool = True, scale: str = "custom",
        seeds: tuple[int, ...] | None = None) -> dict:
    """Train both arms for every seed of ``config`` (or only ``seeds``) not already in ``out``; with
    ``out``, writes the weights beside it and rewrites it after each run."""
    result = {"config": asdict(config), **resume(out, asdict(config), TABLES)}
    for seed in config.seeds if seeds is None else [s for s in config.seeds if s in seeds]:
        for mode in MODES:
            name = f"{mode}/{seed}"
            if name in result["runs"] and (out is None or weights_path(out, mode, seed).exists()):
                continue
            model, record = train_logged(mode, config, seed, device, progress)
            result["runs"][name] = record
            print(f"{name}: loss / trivial {record['curve'][-1][1]:.4f} ({record['seconds']:.0f} s)", flush=True)
            if out is not None:
                weights_path(out, mode, seed).parent.mkdir(parents=True, exist_ok=True)
                save_model(model, weights_path(out, mode, seed))
                write_result(result, "precaching_pair", scale, out, indent=1)
    return result


def load(path=None) -> dict:
    return load_result("precaching_pair", path)


def load_arm(path: str | Path, mode: str, seed: int):
    """The trained ``mode`` model of ``seed`` and its record from the result file ``path``; None when
    the file does not hold that seed. Raises ValueError if the weights do not match the file's
    configuration."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    result = load(path)
    record = result["runs"].get(f"{mode}/{seed}")
    if record is None or not weights_path(path, mode, seed).exists():
        return None
    model = load_model(weights_path(path, mode, seed))
    config = PairConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in result["config"].items()})
    if model.config != build(config).config:
        raise ValueError(f"{weights_path(path, mode, seed)} holds a model of another configuration than {path}")
    return model.eval(), record


def main(argv=None):
    return seeds_main("precaching_pair", __doc__, SCALES, run, argv)


if __name__ == "__main__":
    main()
