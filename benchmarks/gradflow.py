"""The cost of the gradient-flow tensor G (chapter 3) against one ordinary backward pass.

    python -m benchmarks.gradflow            # chapter 3's configuration
    python -m benchmarks.gradflow --quick    # tiny sizes, for CI

Prints a table: one forward + backward of the mean loss, the batched G (torch.func), and the
naive loop (one backward per loss position), with the ratios to the forward + backward.
"""

from __future__ import annotations


import torch

import mini_transformer as mt
from mini_transformer.analysis.gradflow import gradient_flow, gradient_flow_naive

from .timing import median_seconds, quick_arguments


def run(quick: bool = False, threads: int = 2) -> list[dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if quick:
        config = mt.TransformerConfig(vocab_size=20, max_len=16, d_model=16, n_layers=2, n_heads=2)
        batches, repeats = [2], 2
    else:  # chapter 3: the chapter 1 model, ℓ = 64
        config = mt.TransformerConfig(vocab_size=80, max_len=64, d_model=64, n_layers=2, n_heads=4)
        batches, repeats = [1, 8], 7
    model = mt.DTransformer(config)
    rows = []
    for batch in batches:
        x = torch.randint(0, config.vocab_size, (batch, config.max_len))

        def forward_backward():
            model.zero_grad(set_to_none=True)
            mt.d_training_loss(model, x).backward()

        base = median_seconds(forward_backward, repeats)
        batched = median_seconds(lambda: gradient_flow(model, x), repeats)
        naive = median_seconds(lambda: gradient_flow_naive(model, x), max(1, repeats // 2))
        rows.append(dict(batch=batch, length=config.max_len, forward_backward_ms=1e3 * base,
                         batched_ms=1e3 * batched, naive_ms=1e3 * naive,
                         batched_ratio=batched / base, naive_ratio=naive / base))
    return rows


def main() -> None:
    args = quick_arguments(__doc__)
    print(f"{'batch':>5} {'ℓ':>4} {'fwd+bwd ms':>11} {'batched G ms':>13} {'naive G ms':>11} "
          f"{'batched/fwd+bwd':>16} {'naive/fwd+bwd':>14}")
    for r in run(args.quick, args.threads):
        print(f"{r['batch']:>5} {r['length']:>4} {r['forward_backward_ms']:>11.1f} {r['batched_ms']:>13.1f} "
              f"{r['naive_ms']:>11.1f} {r['batched_ratio']:>16.1f} {r['naive_ratio']:>14.1f}")


if __name__ == "__main__":
    main()
