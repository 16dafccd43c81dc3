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
