"""Linear probes: how well a linear map of a residual state predicts some quantity."""

from __future__ import annotations

from dataclasses import dataclass

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


def probe_r2_se(train_features, train_targets, test_features, test_targets, n_groups: int, ridge: float = 1e-3,
                n_boot: int = 500, seed: int = 0) -> float:
    """Bootstrap standard error of :func:`probe_r2` (one target column) over ``n_groups`` equal, contiguous
    groups of the test rows (e.g. the test sequences, when rows are sequence-major): the probe is fitted
    once; the groups are resampled, and R² recomputed from their squared errors."""
    W = fit_linear_probe(train_features, train_targets, ridge)
    F_ = torch.cat([test_features.double(), torch.ones(len(test_features), 1, dtype=torch.float64,
                                                         device=test_features.device)], 1)
    y = test_targets.double().reshape(len(test_targets))
    if len(y) % n_groups:
        raise ValueError(f"n_groups must divide the {len(y)} test rows, got {n_groups}")
    error = ((F_ @ W)[:, 0] - y).reshape(n_groups, -1)
    y = y.reshape(n_groups, -1)
    index = torch.randint(0, n_groups, (n_boot, n_groups), generator=torch.Generator().manual_seed(seed))
    e, t = error[index].flatten(1), y[index].flatten(1)  # (n_boot, rows)
    r2 = 1 - (e ** 2).sum(1) / ((t - t.mean(1, keepdim=True)) ** 2).sum(1)
    return r2.std().item()


def probe_accuracy(train_features, train_labels, test_features, test_labels, n_classes: int,
                   ridge: float = 1e-3) -> float:
    """A linear classifier fitted by ridge regression onto one-hot labels; returns the share of
    held-out rows whose largest score is the true class."""
    one_hot = torch.nn.functional.one_hot(train_labels.long(), n_classes)
    W = fit_linear_probe(train_features, one_hot, ridge)
    F_ = torch.cat([test_features.double(), torch.ones(len(test_features), 1, dtype=torch.float64,
                                                         device=test_features.device)], 1)
    return ((F_ @ W).argmax(1) == test_labels.to(F_.device)).double().mean().item()



@dataclass(frozen=True)
class LinearEraser:
    """Removes what a linear probe can read of one scalar target from a state, changing the state
    along one direction only (LEACE for a scalar target; Belrose et al. 2023, "LEACE: Perfect linear
    concept erasure in closed form", arXiv 2306.03819).

    With c = Cov(X, y), Σ = Cov(X) and w = Σ⁻¹c (the least-squares probe), the erased state is
    X' = X − ĉ·r(X), ĉ = c/‖c‖, r(X) = ‖c‖·wᵀ(X − μ)/(wᵀc). Then Cov(X', y) = 0 on the data it was
    fitted on: no linear probe reads y from X' better than the mean does. The shift is along the
    direction in which the state *encodes* y (ĉ), by the amount the probe *reads* (r)."""

    mean: torch.Tensor       # μ (d,)
    direction: torch.Tensor  # ĉ (d,), unit
    readout: torch.Tensor    # ‖c‖·w/(wᵀc) (d,): r(X) = readout·(X − μ)

    def shift(self, states: torch.Tensor) -> torch.Tensor:
        """r(X), ``(...)``: how far each state moves along ĉ when erased."""
        return (states - self.mean.to(states.dtype)) @ self.readout.to(states.dtype)

    def __call__(self, states: torch.Tensor, direction: torch.Tensor | None = None) -> torch.Tensor:
        """``states (..., d)`` erased: X − ĉ·r(X). With ``direction`` u given, the same shift r(X)
        is applied along u/‖u‖ instead of ĉ: a control that moves every state exactly as far."""
        u = self.direction if direction is None else direction / direction.norm()
        if u.shape != self.direction.shape:
            raise ValueError(f"direction must have shape {tuple(self.direction.shape)}, got {tuple(u.shape)}")
        return states - self.shift(states)[..., None] * u.to(states.dtype)


def fit_eraser(features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-6) -> LinearEraser:
    """The :class:`LinearEraser` for ``targets (n,)`` read from ``features (n, d)`` (float64 inside;
    ``ridge`` × the mean variance is added to Σ's diagonal so that a rank-deficient Σ can be solved)."""
    if targets.dim() != 1 or len(targets) != len(features):
        raise ValueError(f"targets must have shape ({len(features)},), got {tuple(targets.shape)}")
    X, y = features.double(), targets.double().to(features.device)
    mean = X.mean(0)
    Xc, yc = X - mean, y - y.mean()
    c = Xc.T @ yc / len(X)
    if not c.norm() > 0:
        raise ValueError("the targets do not covary with the features: there is nothing to erase")
    sigma = Xc.T @ Xc / len(X)
    sigma = sigma + ridge * sigma.diagonal().mean() * torch.eye(len(c), dtype=X.dtype, device=X.device)
    w = torch.linalg.solve(sigma, c)
    readout = c.norm() * w / (w @ c)
    dtype = features.dtype
    return LinearEraser(mean.to(dtype), (c / c.norm()).to(dtype), readout.to(dtype))


def project_out(states: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """``states (..., d)`` with their component along ``direction (d,)`` removed: X − (X·u)u,
    u = direction/‖direction‖ (an orthogonal projection; :class:`LinearEraser` is the oblique one
    that removes what a probe reads)."""
    if direction.dim() != 1 or direction.shape[0] != states.shape[-1]:
        raise ValueError(f"direction must have shape ({states.shape[-1]},), got {tuple(direction.shape)}")
    u = direction.to(states.dtype) / direction.norm()
    return states - (states @ u)[..., None] * u


def softmax_probe(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                  test_labels: torch.Tensor, n_classes: int, l2: float = 1e-4,
                  max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """A softmax probe: multinomial logistic regression from ``features (n, d)`` to ``labels (n,)``,
    fitted by L-BFGS on the training rows (features standardised with the training rows' mean and
    spread; penalty ``l2``·‖W‖²). Returns, for every held-out row, its log loss in nats and whether
    the probe's most likely class is the true one (``(n_test,)`` each)."""
    for name, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
        if labels.dtype not in (torch.int64, torch.int32) or labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"{name} must be integer classes in [0, {n_classes}), got dtype {labels.dtype}")
    mean, spread = train_features.mean(0), train_features.std(0).clamp_min(1e-6)
    X, Z = (train_features - mean) / spread, (test_features - mean) / spread
    X, Z = (torch.cat([A.double(), torch.ones(len(A), 1, dtype=torch.float64)], 1) for A in (X.cpu(), Z.cpu()))
    y = train_labels.long().cpu()
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([W], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W, y) + l2 * (W[:-1] ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    with torch.no_grad():
        logits = Z @ W
        nll = torch.nn.functional.cross_entropy(logits, test_labels.long().cpu(), reduction="none")
        return nll.float(), (logits.argmax(1) == test_labels.cpu()).float()
