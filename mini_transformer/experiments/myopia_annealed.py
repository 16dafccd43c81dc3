"""Vanilla and myopic character models trained from scratch under the paper's protocol: one fixed
budget, a cosine decay of the learning rate to zero, weight decay (chapter 6).

Wu, Morris & Levine train both arms of every comparison with AdamW, a warm-up over the first 1 % of
the steps and a cosine decay to 0, weight decay 0.01 (the defaults of their Lightning modules,
``src/models/gpt_model.py`` and ``myopic_model.py``). :mod:`.myopia_gap` instead trains at a constant
rate until vanilla stops improving, which measures learning speed and the myopic arm's instability as
much as what myopia costs. Here, for every size and seed, a vanilla and a myopic (β = 0) model start
from the same initialisation, see the same batches, and train the same ``steps`` with the same
schedule. Both final models are saved beside the result file (``<out stem>/<size>-seed<seed>-<mode>.pt``)
so a chapter can probe and test them without training.

Per run the file keeps the validation curve, each validation window's mean loss (for a paired
bootstrap), the loss by position, the future-token probes and the run time; per size the parameter
count; once, the counted bigram loss on the same windows (what context is measured against). Each
(size, seed) is written as soon as it is done, so a rerun skips what is there; ``--checkpoints DIR``
saves the running phase every ``--checkpoint-every`` steps, so a killed run goes on to the same numbers.

    python -m mini_transformer.experiments.myopia_annealed --scale small --threads 1 --sizes XS S
    python -m mini_transformer.experiments.myopia_annealed --scale small --threads 1 --sizes M --seeds 0 1
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis.baselines import ngram_log_loss
from ..serialization import save_model
from ..tasks.shakespeare import fixed_windows, shakespeare
from . import RESULTS, load_result, read_previous, sizes_seeds_main, write_atomic
from .myopia_gap import ModelSize, Phases, _locked, _summary, build, future_token_probes, probe_baselines, train_run

ARMS = ("vanilla", "myopic")


@dataclass(frozen=True)
class AnnealedConfig:
    """Sizes and the one recipe both arms of every size share."""

    sizes: tuple[ModelSize, ...]
    steps: int = 8000
    eval_every: int = 250
    batch_size: int = 64
    length: int = 64
    lr: float = 3e-3
    warmup: int = 80  # 1 % of the steps, as the paper's runs
    weight_decay: float = 0.01  # the paper's default
    seeds: tuple[int, ...] = (0, 1, 2)
    n_val: int = 512
    probe_windows: int = 256
    n_plays: int | None = None
    kernels: str = "fused"


SCALES = {
    "tiny": AnnealedConfig(sizes=(ModelSize("XS", 16, 1, 2), ModelSize("S", 24, 2, 2)), steps=20, eval_every=5,
                           warmup=2, length=16, n_val=32, probe_windows=16, n_plays=2, seeds=(0, 1)),
    # XS and S are chapter 6's converged sizes; M has about 4 times S's parameters (461k against 114k)
    "small": AnnealedConfig(sizes=(ModelSize("XS", 32, 2, 2), ModelSize("S", 64, 2, 4), ModelSize("M", 96, 4, 4))),
}


def weights_dir(out: Path) -> Path:
    """The folder beside ``out`` that holds the trained models of the file ``out``."""
    return Path(out).with_suffix("")


def run_seed(size: ModelSize, seed: int, corpus, config: AnnealedConfig, val, probe_set, device=None,
             progress: bool = True, checkpoints: Path | None = None, checkpoint_every: int = 1000):
    """Both arms of one (size, seed); returns the entry and the two trained models."""
    phases = Phases(checkpoints, config, checkpoint_every)
    torch.manual_seed(seed)
    init = build(size, corpus.tokenizer.vocab_size, config.length, "vanilla", config.kernels).to(device or "cpu")
    entry = {"untrained_probes": future_token_probes(init, probe_set), "parameters": sum(p.numel() for p in init.parameters())}
    models = {}
    for mode in ARMS:
        model = copy.deepcopy(init)
        record = phases.done(mode, model)
        if record is None:
            curve, seconds = phases.train(mode, lambda **k: train_run(
                model, mode, corpus, config, config.steps, seed, val, schedule="cosine", warmup=config.warmup,
                weight_decay=config.weight_decay, progress=progress,
                description=f"{size.name} {mode} (seed {seed})", **k))
            record = phases.finish(mode, _summary(model, val, probe_set, curve, seconds), model)
        entry[mode], models[mode] = record, model
    return entry, models


def run(config: AnnealedConfig, out: Path, sizes=None, seeds=None, device=None, progress: bool = True,
        checkpoints: Path | None = None, checkpoint_every: int = 1000) -> dict:
    """Train every (size, seed) of ``config`` (or those named) not already in ``out``; write ``out``
    and the two models after each; returns the file's content."""
    out = Path(out)
    corpus = shakespeare(n_plays=config.n_plays)
    val = fixed_windows(corpus.val, config.n_val, config.length, seed=1)
    probe_set = fixed_windows(corpus.val, config.probe_windows, config.length, seed=2)
    vocab = corpus.tokenizer.vocab_size
    with _locked(out):
        result = read_previous(out, asdict(config))
        result.update(config=asdict(config), vocab_size=vocab, device=str(device or "cpu"),
                      threads=torch.get_num_threads(),
                      bigram=round(ngram_log_loss(corpus.train, val, vocab, order=2), 5),
                      probe_baselines=probe_baselines(probe_set, vocab))
        result.setdefault("sizes", {})
        write_atomic(out, lambda f: f.write(json.dumps(result, separators=(",", ":")).encode()))
    for size in config.sizes:
        if sizes is not None and size.name not in sizes:
            continue
        for seed in config.seeds:
            if (seeds is not None and seed not in seeds) or str(seed) in result["sizes"].get(size.name, {}).get("seeds", {}):
                continue
            directory = None if checkpoints is None else Path(checkpoints) / f"{size.name}-seed{seed}"
            entry, models = run_seed(size, seed, corpus, config, val, probe_set, device, progress, directory,
                                     checkpoint_every)
            weights_dir(out).mkdir(parents=True, exist_ok=True)
            for mode, model in models.items():
                save_model(model.cpu(), weights_dir(out) / f"{size.name}-seed{seed}-{mode}.pt")
            with _locked(out):
                result = read_previous(out, asdict(config))
                block = result["sizes"].setdefault(size.name, {"d_model": size.d_model, "n_layers": size.n_layers,
                                                               "n_heads": size.n_heads, "seeds": {}})
                block["parameters"] = entry.pop("parameters")
                block["seeds"][str(seed)] = entry
                write_atomic(out, lambda f: f.write(json.dumps(result, separators=(",", ":")).encode()))
            if directory is not None:
                shutil.rmtree(directory)
            print(f"{size.name} seed {seed}: vanilla {entry['vanilla']['curve'][-1][1]:.4f}, "
                  f"myopic {entry['myopic']['curve'][-1][1]:.4f}, bigram {result['bigram']:.4f}", flush=True)
    return result


def load(path: str | Path | None = None) -> dict:
    """Read a result file (default: the committed CPU run)."""
    return load_result("myopia_annealed", path)


def main(argv=None) -> Path:
    return sizes_seeds_main("myopia_annealed", __doc__, SCALES, run, argv)


if __name__ == "__main__":
    main()
