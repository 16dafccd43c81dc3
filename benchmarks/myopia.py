"""The cost of a myopic training step against a vanilla one (chapter 5's configuration).

    python -m benchmarks.myopia            # chapter 5's configuration
    python -m benchmarks.myopia --quick    # tiny sizes, for CI
"""

from __future__ import annotations

import statistics

import torch

import mini_transformer as mt
from mini_transformer.analysis.myopia import myopic
from mini_transformer.tasks.precaching import PrecachingTask, huber_loss

from .timing import median_seconds, quick_arguments


def run(quick: bool = False, threads: int = 2) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    length, d_model, repeats, steps = (8, 16, 2, 2) if quick else (32, 64, 7, 20)
    task = PrecachingTask(window=5, frequency=3.0, p=1.0, length=length)
    config = mt.TransformerConfig(vocab_size=1, max_len=length, d_model=d_model, n_layers=2, n_heads=2,
                                  activation="relu", input_dim=2, output_dim=1)
    model = mt.DTransformer(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs, targets = task.sample(64, torch.Generator().manual_seed(0))

    def steps_of_training():
        for _ in range(steps):
            loss = huber_loss(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    # interleave the two, so that a slow spell of the machine hits both alike
    vanilla_times, myopic_times = [], []
    for _ in range(repeats):
        vanilla_times.append(median_seconds(steps_of_training, repeats=1, warmup=1) / steps)
        with myopic(model):
            myopic_times.append(median_seconds(steps_of_training, repeats=1, warmup=1) / steps)
    vanilla, myopic_step = statistics.median(vanilla_times), statistics.median(myopic_times)
    return dict(vanilla_ms=1e3 * vanilla, myopic_ms=1e3 * myopic_step, ratio=myopic_step / vanilla)


def main() -> None:
    args = quick_arguments(__doc__)
    r = run(args.quick, args.threads)
    print(f"vanilla step {r['vanilla_ms']:.1f} ms, myopic step {r['myopic_ms']:.1f} ms, ratio {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
