"""The benchmark suite: every benchmark, one table, written where the book's performance page
includes it.

    python -m benchmarks                      # full suite on this machine (a few minutes)
    python -m benchmarks --execute-chapters   # also execute every chapter now
    python -m benchmarks --quick --out DIR    # tiny sizes, few repeats (CI): timings reported, never asserted

Writes ``latest.md`` (the tables) and ``latest.json`` (the numbers) to ``book/benchmarks/`` unless
``--quick`` is given without ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from . import chapters, gradflow, inference, myopia, training

OUT = Path(__file__).resolve().parents[1] / "book" / "benchmarks"


def collect(quick: bool, threads: int, execute_chapters: bool) -> dict:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "threads": threads, "torch": torch.__version__,
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                    "quick": quick, "date": time.strftime("%Y-%m-%d")},
        "training": [row for device in devices for row in training.run(quick, threads, device)],
        "inference": inference.run(quick, threads),
        "myopia": myopia.run(quick, threads),
        "gradflow": gradflow.run(quick, threads),
        "chapters": chapters.run(execute_chapters),
    }


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Measured {m['date']} on {m['platform']} ({m['processor']}, {m['cpu_count']} cores, "
             f"{m['threads']} torch threads), torch {m['torch']}"
             + (f", GPU {m['cuda']}" if m["cuda"] else ", no GPU") + (" — QUICK MODE" if m["quick"] else "") + ".",
             "", "**Training step** (forward, backward, AdamW; float32; median of interleaved repeats):", "",
             "| configuration | device | batch × ℓ | faithful ms | fused ms | PyTorch ms | faithful / PyTorch tokens/s "
             "| fused / PyTorch tokens/s | fused FLOP rate / matmul |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in r["training"]:
        lines.append(f"| {t['name']} | {t['device']} | {t['batch']} × {t['length']} | {t['faithful_ms']:.1f} | "
                     f"{t['fused_ms']:.1f} | {t['reference_ms']:.1f} | {t['faithful_vs_reference']:.2f}× | "
                     f"{t['fused_vs_reference']:.2f}× | {t['fused_flop_share']:.1%} of {t['matmul_gflops']:.0f} GFLOP/s |")
    lines += ["", "**Sampling** (Algorithm 14, greedy, one full forward pass per new token, no key–value cache):", "",
              "| batch | tokens generated | faithful tokens/s | fused tokens/s | PyTorch tokens/s |", "|---|---|---|---|---|"]
    for i in r["inference"]:
        lines.append(f"| {i['batch']} | {i['generated']} | {i['faithful_tokens_per_s']:.0f} | "
                     f"{i['fused_tokens_per_s']:.0f} | {i['reference_tokens_per_s']:.0f} |")
    my = r["myopia"]
    lines += ["", f"**Myopic training step** (chapter 5): vanilla {my['vanilla_ms']:.1f} ms, myopic "
              f"{my['myopic_ms']:.1f} ms, ratio **{my['ratio']:.2f}**.", "",
              "**Gradient-flow tensor G** (chapter 3) against one forward + backward pass of the same batch:", "",
              "| batch | ℓ | forward + backward ms | batched G ms | naive loop ms | batched / fwd+bwd | naive / fwd+bwd |",
              "|---|---|---|---|---|---|---|"]
    for g in r["gradflow"]:
        lines.append(f"| {g['batch']} | {g['length']} | {g['forward_backward_ms']:.1f} | {g['batched_ms']:.1f} | "
                     f"{g['naive_ms']:.1f} | {g['batched_ratio']:.1f}× | {g['naive_ratio']:.1f}× |")
    lines += ["", "**Chapters** (default CPU configuration, top to bottom):", "",
              "| chapter | recorded by its last committed run (s) | executed now (s) |", "|---|---|---|"]
    for c in r["chapters"]:
        recorded = f"{c['recorded_s']:.0f}" if c["recorded_s"] is not None else "—"
        executed = f"{c['executed_s']:.0f}" if "executed_s" in c else "—"
        lines.append(f"| {c['chapter']} | {recorded} | {executed} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (CI)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--execute-chapters", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = collect(args.quick, args.threads, args.execute_chapters)
    table = to_markdown(result)
    print(table)
    out = args.out or (None if args.quick else OUT)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.md").write_text(table)
        (out / "latest.json").write_text(json.dumps(result, indent=1))
        print(f"wrote {out / 'latest.md'} and {out / 'latest.json'}")
    return result


if __name__ == "__main__":
    main()
