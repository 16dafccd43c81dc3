"""The synthetic pre-caching task of Wu, Morris & Levine (2024).

Inputs per position n: x_n ~ N(0, 1) and a switch z_n ~ Bernoulli(p). Target:

    y_n = z_n · Σ_{i=1}^{window} sin(frequency · x_{n−i}) + (1 − z_n) · x_n      (x_m = 0 for m < 0)

The feature sin(frequency · x_n) is useless at position n (y_n never contains it) and useful at
the next ``window`` positions. The task is built so that pre-caching is the natural route:
position n computes sin(frequency · x_n) for the future and later positions sum it. It is not the
only one: a later position can fetch the raw inputs x_{n−i} through attention and compute the
sines itself, which is harder. The paper uses window 10, frequency 10, length 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PrecachingTask:
    window: int = 10
    frequency: float = 10.0
    p: float = 1.0
    length: int = 64

    def __post_init__(self):
        if not 0 <= self.p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {self.p}")
        if self.window < 1 or self.length < 2:
            raise ValueError(f"window must be ≥ 1 and length ≥ 2, got window={self.window}, length={self.length}")

    def sample(self, batch_size: int, generator: torch.Generator | None = None):
        """``(inputs (batch, length, 2), targets (batch, length))``; inputs[..., 0] = x, [..., 1] = z."""
        x = torch.randn(batch_size, self.length, generator=generator)
        z = (torch.rand(batch_size, self.length, generator=generator) < self.p).float()
        return torch.stack([x, z], dim=-1), self.targets(x, z)

    def future_feature(self, x: torch.Tensor) -> torch.Tensor:
        """sin(frequency · x): the feature each position should pre-cache."""
        return torch.sin(self.frequency * x)

    def targets(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        feature = self.future_feature(x)
        padded = F.pad(feature, (self.window, 0))  # zeros before the start
        lagged = sum(padded[:, self.window - i: self.window - i + self.length] for i in range(1, self.window + 1))
        return z * lagged + (1 - z) * x

    def batches(self, batch_size: int, seed: int = 0):
        """Yield ``(inputs, targets)`` batches forever from a seeded generator."""
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, generator)


def huber_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The paper's loss: Huber (δ = 1) between the model's scalar output and the target."""
    return F.huber_loss(model(inputs)[..., 0], targets, delta=1.0)


def trivial_loss(task: PrecachingTask, n_sequences: int = 4096, seed: int = 123) -> float:
    """Huber loss of the all-zero predictor on the task (the paper reports 1.257 at p = 1)."""
    _, targets = task.sample(n_sequences, torch.Generator().manual_seed(seed))
    return F.huber_loss(torch.zeros_like(targets), targets, delta=1.0).item()


def term_deletion_bound(task: PrecachingTask) -> float:
    """½·E[sin²(f·x)], x ~ N(0, 1), closed form (1 − e^{−2f²})/4: the most the Huber loss (δ = 1) at a
    position rises on average when its prediction loses exactly one term sin(f·x_n) of its target,
    if the model's error there is independent of that term (Huber's second derivative is ≤ 1, so
    E[h(e + s) − h(e)] ≤ E[h'(e)]·E[s] + ½E[s²], and E[s] = 0). The calibration of an erasure."""
    if not isinstance(task, PrecachingTask):
        raise TypeError(f"task must be a PrecachingTask, got {type(task).__name__}")
    return (1 - torch.exp(torch.tensor(-2.0 * task.frequency ** 2, dtype=torch.float64)).item()) / 4


def huber_losses(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The Huber loss (δ = 1) at every position, ``(batch, length)``; :func:`huber_loss` is its mean."""
    return F.huber_loss(model(inputs)[..., 0], targets, delta=1.0, reduction="none")


def loss_by_target_kind(model, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """The model's mean Huber loss on the two kinds of position, each divided by the all-zero
    predictor's loss on the same positions: ``"past"`` (z = 1: the target is the sum of past sines)
    and ``"copy"`` (z = 0: the target is x_n). 1 means no better than answering 0; the ratios do not
    depend on p, unlike the trivial loss of the whole task. A kind with no position gives NaN."""
    with torch.no_grad():
        losses = huber_losses(model, inputs, targets)
    zero = F.huber_loss(torch.zeros_like(targets), targets, delta=1.0, reduction="none")
    past = inputs[..., 1] == 1
    result = {}
    for kind, where in (("past", past), ("copy", ~past)):
        result[kind] = (losses[where].mean() / zero[where].mean()).item() if where.any() else float("nan")
    return result
