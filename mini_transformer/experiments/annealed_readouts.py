"""Read the trained annealed pairs (chapter 6): future-token softmax probes and the repetition test.

For every model that :mod:`.myopia_annealed` saved (``<size>-seed<seed>-<mode>.pt`` beside its result
file), this script computes, per held-out window:

* :func:`~mini_transformer.analysis.future_tokens.future_token_readout`: the model's own loss and top-1
  on x_{t+1}, a softmax probe for x_{t+1} on the final state (what the unembedding reads), and for
  x_{t+2} a probe on one-hot(x_{t+1}) alone against one on the final state joined with it;
* :func:`~mini_transformer.analysis.copying.repetition_gain`: the loss on a text segment after itself
  against after another segment.

The probes take seconds per model (L-BFGS to convergence), so the chapter loads this file. Each model
is written as soon as it is read; a rerun skips what is there.

    python -m mini_transformer.experiments.annealed_readouts --threads 1
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis.copying import repetition_gain
from ..analysis.future_tokens import future_token_readout
from ..serialization import load_model
from ..tasks.shakespeare import fixed_windows, shakespeare
from . import RESULTS, read_previous, write_atomic
from .myopia_annealed import ARMS, weights_dir


@dataclass(frozen=True)
class ReadoutConfig:
    """The windows every model is read on (the same for every model)."""

    probe_windows: int = 256  # half fit the probes, half score them
    probe_length: int = 64
    probe_seed: int = 2  # the annealed script's probe windows
    segments: int = 256
    segment_length: int = 32
    segment_seed: int = 3
    control_seed: int = 4
    l2: float = 1e-4
    n_plays: int | None = None


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(v, 5) for v in values.tolist()]


def read_model(model, corpus, config: ReadoutConfig) -> dict:
    """Every readout of one model, per window."""
    probe_set = fixed_windows(corpus.val, config.probe_windows, config.probe_length, seed=config.probe_seed)
    segments = fixed_windows(corpus.val, config.segments, config.segment_length, seed=config.segment_seed)
    others = fixed_windows(corpus.val, config.segments, config.segment_length, seed=config.control_seed)
    readout = future_token_readout(model, probe_set, l2=config.l2)
    entry = {name: {k: _rounded(v) for k, v in scores.items()} for name, scores in readout.items()}
    entry["repetition"] = {k: _rounded(v) for k, v in repetition_gain(model, segments, others).items()}
    return entry


def run(source: Path, out: Path, config: ReadoutConfig = ReadoutConfig()) -> dict:
    """Read every model saved beside the result file ``source`` that ``out`` does not hold yet."""
    if not Path(source).exists():
        raise ValueError(f"source {str(source)!r} does not exist: run myopia_annealed first")
    sizes = json.loads(Path(source).read_text())["sizes"]
    corpus = shakespeare(n_plays=config.n_plays)
    result = read_previous(out, asdict(config)) or {"config": asdict(config), "models": {}}
    for size, block in sizes.items():
        for seed in sorted(block["seeds"], key=int):
            for mode in ARMS:
                key = f"{size}/{seed}/{mode}"
                if key in result["models"]:
                    continue
                model = load_model(weights_dir(source) / f"{size}-seed{seed}-{mode}.pt")
                result["models"][key] = read_model(model, corpus, config)
                write_atomic(out, lambda f: f.write(json.dumps(result, separators=(",", ":")).encode()))
                print(f"{key}: joined t+2 probe {torch.tensor(result['models'][key]['joined_t2']['loss']).mean():.4f} "
                      f"nats, repetition gain {torch.tensor(result['models'][key]['repetition']['gain']).mean():+.4f}",
                      flush=True)
    return result


def load(path: str | Path | None = None) -> dict:
    """The committed readouts of the committed annealed runs."""
    return json.loads(Path(path or RESULTS / "annealed_readouts_small.json").read_text())


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=RESULTS / "myopia_annealed_small.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "annealed_readouts_small.json")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run(args.source, args.out)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
