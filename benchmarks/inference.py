"""Sampling speed (Algorithm 14): a sequence grown one token at a time, each step a full forward
pass over the sequence so far (the package has no key–value cache), ours against PyTorch's layers.

    python -m benchmarks.inference            # chapter 1's model
    python -m benchmarks.inference --quick    # tiny sizes, for CI
"""

from __future__ import annotations

import dataclasses

import torch

import mini_transformer as mt
from mini_transformer.reference import TorchDecoder

from .timing import median_seconds, quick_arguments


@torch.no_grad()
def generate(model, prompt: torch.Tensor, n_generate: int) -> torch.Tensor:
    """Greedy Algorithm 14 for any model that maps ids to logits (used for the PyTorch reference)."""
    x = prompt
    for _ in range(n_generate):
        x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return x


def run(quick: bool = False, threads: int = 2) -> list[dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if quick:
        config = mt.TransformerConfig(vocab_size=20, max_len=16, d_model=16, n_layers=2, n_heads=2)
        batches, repeats = [1], 1
    else:
        config = mt.TransformerConfig(vocab_size=80, max_len=64, d_model=64, n_layers=2, n_heads=4)
        batches, repeats = [1, 16], 5
    faithful = mt.DTransformer(config).eval()
    fused = mt.DTransformer(dataclasses.replace(config, kernels="fused")).eval()
    fused.load_state_dict(faithful.state_dict())
    reference = TorchDecoder.from_model(faithful).eval()
    n_generate = config.max_len - 1
    rows = []
    for batch in batches:
        prompt = torch.randint(0, config.vocab_size, (batch, 1))
        seconds = {
            "faithful": median_seconds(lambda: mt.d_inference(faithful, prompt, n_generate, tau=0.0), repeats),
            "fused": median_seconds(lambda: mt.d_inference(fused, prompt, n_generate, tau=0.0), repeats),
            "reference": median_seconds(lambda: generate(reference, prompt, n_generate), repeats),
        }
        tokens = batch * n_generate
        rows.append(dict(batch=batch, generated=n_generate,
                         **{f"{k}_tokens_per_s": tokens / s for k, s in seconds.items()},
                         faithful_vs_reference=seconds["reference"] / seconds["faithful"],
                         fused_vs_reference=seconds["reference"] / seconds["fused"]))
    return rows


def main() -> None:
    args = quick_arguments(__doc__)
    for r in run(args.quick, args.threads):
        print(f"batch {r['batch']}, {r['generated']} tokens: faithful {r['faithful_tokens_per_s']:.0f}, "
              f"fused {r['fused_tokens_per_s']:.0f}, PyTorch {r['reference_tokens_per_s']:.0f} tokens/s")


if __name__ == "__main__":
    main()
