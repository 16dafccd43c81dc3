"""Linear probes: how well a linear map of a residual state predicts some quantity."""

from __future__ import annotations

import torch


def fit_linear_probe(features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """Least squares with a small ridge penalty: W minimising ‖[F, 1] W − Y‖² + ridge‖W‖².

    ``features (n, d)``, ``targets (n,)`` or ``(n, k)``. Returns ``W (d + 1, k)`` (last row: bias).
    Solved in float64 for stability."""
    F_ = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64, device=features.device)], 1)
    Y = targets.double().reshape(len(targets), -1)
    gram = F_.T @ F_ + ridge * len(F_) * torch.eye(F_.shape[1], dtype=torch.float64, device=F_.device)
    return torch.linalg.solve(gram, F_.T @ Y)


def probe_r2(train_features, train_targets, test_features, test_targets, ridge: float = 1e-3) -> torch.Tensor:
    """Coefficient of determination R² = 1 − SSE/SST on held-out data, per target column."""
    W = fit_linear_probe(train_features, train_targets, ridge)
    F_ = torch.cat([test_features.double(), torch.ones(len(test_features), 1, dtype=torch.float64,
                                                         device=test_features.device)], 1)
    Y = test_targets.double().reshape(len(test_targets), -1)
    residual = ((F_ @ W - Y) ** 2).sum(0)
    total = ((Y - Y.mean(0)) ** 2).sum(0)
    return 1 - residual / total


def probe_accuracy(train_features, train_labels, test_features, test_labels, n_classes: int,
                   ridge: float = 1e-3) -> float:
    """A linear classifier fitted by ridge regression onto one-hot labels; returns the share of
    held-out rows whose largest score is the true class."""
    one_hot = torch.nn.functional.one_hot(train_labels.long(), n_classes)
    W = fit_linear_probe(train_features, one_hot, ridge)
    F_ = torch.cat([test_features.double(), torch.ones(len(test_features), 1, dtype=torch.float64,
                                                         device=test_features.device)], 1)
    return ((F_ @ W).argmax(1) == test_labels.to(F_.device)).double().mean().item()
