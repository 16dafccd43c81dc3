"""Training-step speed: DTransformer (faithful and fused kernels) against PyTorch's own layers,
and the matrix-multiply FLOP rate the step achieves against ``torch.matmul`` on the same machine.

    python -m benchmarks.training            # the chapters' configurations
    python -m benchmarks.training --quick    # tiny sizes, for CI
"""

from __future__ import annotations

import dataclasses
import statistics

import torch

import mini_transformer as mt
from mini_transformer.reference import TorchDecoder

from .timing import median_seconds, quick_arguments

#: (name, config, batch size): the chapters' training configurations.
CONFIGS = [
    ("chapters 1, 3, 6: char LM", mt.TransformerConfig(vocab_size=80, max_len=64, d_model=64, n_layers=2, n_heads=4), 64),
    ("chapter 4: S3, L = 4", mt.TransformerConfig(vocab_size=6, max_len=16, d_model=64, n_layers=4, n_heads=4), 64),
]
QUICK_CONFIGS = [("quick", mt.TransformerConfig(vocab_size=20, max_len=16, d_model=16, n_layers=2, n_heads=2), 4)]


def forward_flops(config: mt.TransformerConfig, batch: int) -> float:
    """Multiply–add FLOPs (2 per multiply–add) of the forward pass's matrix products: per token and
    layer, Q, K, V and W_o (4 d²), the MLP (2 d·d_mlp), scores and weighted values (2 ℓ d, full
    ℓ × ℓ as the faithful path computes them), then the unembedding (d·N_V)."""
    d, length = config.d_model, config.max_len
    per_token = config.n_layers * (4 * d * d + 2 * d * config.d_mlp + 2 * length * d) + d * config.vocab_size
    return 2.0 * per_token * batch * length


def matmul_flop_rate(n: int = 1024, repeats: int = 5, device: str = "cpu") -> float:
    """FLOP/s of ``torch.matmul`` on two n × n float32 matrices: what this machine's BLAS reaches."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, repeats, device=device)


def step_seconds(model, x, repeats: int, steps: int, device=None) -> float:
    """Median seconds of one AdamW step (forward, backward, update) on the batch ``x``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_steps():
        for _ in range(steps):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return median_seconds(train_steps, repeats=repeats, warmup=1, device=device) / steps


def run(quick: bool = False, threads: int = 2, device: str = "cpu") -> list[dict]:
    """One row per configuration, on ``device`` ("cpu" or "cuda"), float32."""
    torch.set_num_threads(threads)
    configs = QUICK_CONFIGS if quick else CONFIGS
    repeats, steps = (1, 1) if quick else (5, 10)
    peak = matmul_flop_rate(128 if quick else 1024, device=device)
    rows = []
    for name, config, batch in configs:
        torch.manual_seed(0)
        faithful = mt.DTransformer(config).to(device)
        fused = mt.DTransformer(dataclasses.replace(config, kernels="fused")).to(device)
        fused.load_state_dict(faithful.state_dict())
        reference = TorchDecoder.from_model(faithful)
        x = torch.randint(0, config.vocab_size, (batch, config.max_len), device=device)
        times = {"faithful": [], "fused": [], "reference": []}
        for _ in range(3 if not quick else 1):  # interleave, so a slow spell hits all three alike
            for key, model in (("faithful", faithful), ("fused", fused), ("reference", reference)):
                times[key].append(step_seconds(model, x, repeats, steps, device))
        seconds = {key: statistics.median(values) for key, values in times.items()}
        tokens = batch * config.max_len
        flops = 3 * forward_flops(config, batch)  # backward ≈ 2 × forward
        rows.append(dict(
            name=name, device=str(device), batch=batch, length=config.max_len, d_model=config.d_model, n_layers=config.n_layers,
            **{f"{key}_ms": 1e3 * s for key, s in seconds.items()},
            **{f"{key}_tokens_per_s": tokens / s for key, s in seconds.items()},
            faithful_vs_reference=seconds["reference"] / seconds["faithful"],
            fused_vs_reference=seconds["reference"] / seconds["fused"],
            fused_flop_share=flops / seconds["fused"] / peak,
            reference_flop_share=flops / seconds["reference"] / peak,
            matmul_gflops=peak / 1e9,
        ))
    return rows


def main() -> None:
    args = quick_arguments(__doc__)
    for r in run(args.quick, args.threads):
        print(f"{r['name']}: faithful {r['faithful_ms']:.1f} ms, fused {r['fused_ms']:.1f} ms, "
              f"PyTorch {r['reference_ms']:.1f} ms per step; tokens/s vs PyTorch: faithful "
              f"{r['faithful_vs_reference']:.2f}×, fused {r['fused_vs_reference']:.2f}×; "
              f"fused step at {r['fused_flop_share']:.0%} of matmul's {r['matmul_gflops']:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
