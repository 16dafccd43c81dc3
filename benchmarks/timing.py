"""Median wall-clock time of a function over repeats, after warm-up."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int = 7, warmup: int = 2, device=None) -> float:
    """Median over ``repeats`` calls of ``fn`` after ``warmup`` calls; on a CUDA ``device`` the clock
    stops only after the GPU has finished."""
    import torch

    def sync():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def quick_arguments(doc: str):
    """The command line every benchmark shares: ``--quick`` (tiny sizes, for CI) and ``--threads``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (CI)")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()
