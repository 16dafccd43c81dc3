"""Linear probes and the synthetic pre-caching task."""

import math

import pytest
import torch

import mini_transformer as mt
from mini_transformer.analysis.probes import probe_r2
from mini_transformer.tasks.precaching import PrecachingTask, huber_loss, term_deletion_bound, trivial_loss


def test_probe_recovers_a_linear_target_and_not_noise():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2000, 8, generator=g)
    w = torch.randn(8, generator=g)
    y = X @ w + 0.5
    assert probe_r2(X[:1000], y[:1000], X[1000:], y[1000:]).item() > 0.999
    noise = torch.randn(2000, generator=g)
    assert abs(probe_r2(X[:1000], noise[:1000], X[1000:], noise[1000:]).item()) < 0.05


def test_precaching_targets_follow_the_definition():
    task = PrecachingTask(window=3, frequency=10.0, p=0.5, length=8)
    inputs, y = task.sample(4, torch.Generator().manual_seed(0))
    x, z = inputs[..., 0], inputs[..., 1]
    for b in range(4):
        for n in range(8):
            lagged = sum(math.sin(10 * x[b, n - i].item()) for i in range(1, 4) if n - i >= 0)
            expected = lagged if z[b, n] == 1 else x[b, n].item()
            assert y[b, n].item() == pytest.approx(expected, abs=1e-5)


def test_trivial_loss_matches_the_paper_at_its_setting():
    assert trivial_loss(PrecachingTask()) == pytest.approx(1.257, abs=0.02)  # Wu et al. report 1.257
    assert trivial_loss(PrecachingTask(p=0.0)) < trivial_loss(PrecachingTask(p=1.0))


def test_term_deletion_bound_is_half_the_mean_square_of_the_term_and_bounds_the_huber_rise():
    task = PrecachingTask(window=5, frequency=3.0, p=1.0, length=32)
    x = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    term = torch.sin(3.0 * x)
    assert abs(term_deletion_bound(task) - 0.5 * (term ** 2).mean().item()) < 3e-3
    error = 0.7 * torch.randn(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    huber = lambda e: torch.nn.functional.huber_loss(e, torch.zeros_like(e), delta=1.0, reduction="none")
    rise = (huber(error + term) - huber(error)).mean().item()
    assert 0 < rise < term_deletion_bound(task)  # Huber's curvature ≤ 1: at most ½E[s²]
    assert term_deletion_bound(PrecachingTask(frequency=0.1)) < 0.01  # sin(0.1x) is small
    with pytest.raises(TypeError, match="task"):
        term_deletion_bound(3.0)


def test_regression_model_takes_real_inputs_and_gives_scalar_outputs():
    cfg = mt.TransformerConfig(vocab_size=1, max_len=16, d_model=16, n_layers=1, n_heads=2, input_dim=2, output_dim=1)
    model = mt.DTransformer(cfg)
    task = PrecachingTask(length=16)
    inputs, targets = task.sample(3)
    assert model(inputs).shape == (3, 16, 1)
    assert huber_loss(model, inputs, targets).ndim == 0
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="p must lie"):
        PrecachingTask(p=2.0)


def test_witten_bell_ngrams_match_a_direct_count_and_improve_with_order():
    from mini_transformer.analysis.baselines import ngram_log_loss, witten_bell_log_loss

    g = torch.Generator().manual_seed(0)
    # a Markov chain of order 2 over 5 symbols: higher orders must help up to 3, not beyond much
    table = torch.rand(5, 5, 5, generator=g) ** 4
    table = table / table.sum(-1, keepdim=True)
    # sample the chain by inverse transform: one uniform per step, a 5-way search instead of a multinomial call
    cumulative, uniforms = table.cumsum(-1), torch.rand(20000, generator=g).tolist()
    seq = [0, 1]
    for u in uniforms:
        row = cumulative[seq[-2], seq[-1]].tolist()
        seq.append(next((k for k, c in enumerate(row) if u < c), 4))
    seq = torch.tensor(seq)
    train, val = seq[:15000], seq[15000:]
    losses = [witten_bell_log_loss(train, val, 5, n) for n in (1, 2, 3, 4)]
    assert losses[0] > losses[1] > losses[2] and abs(losses[3] - losses[2]) < 0.05
    assert abs(witten_bell_log_loss(train, val, 5, 1) - ngram_log_loss(train, val, 5, 1)) < 1e-12
    # by hand for one target: p_2(w | h) = (c(hw) + N(h) p_1(w)) / (c(h) + N(h))
    h, w = int(val[0]), int(val[1])
    c_hw = sum(1 for a, b in zip(train[:-1].tolist(), train[1:].tolist()) if (a, b) == (h, w))
    c_h = sum(1 for a in train[:-1].tolist() if a == h)
    n_h = len({b for a, b in zip(train[:-1].tolist(), train[1:].tolist()) if a == h})
    p1 = (torch.bincount(train, minlength=5).double() + 1)[w] / (len(train) + 5)
    expected = -torch.log((c_hw + n_h * p1) / (c_h + n_h)).item()
    assert witten_bell_log_loss(train, val[:2], 5, 2) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="order"):
        witten_bell_log_loss(train, val, 5, 0)


def test_project_out_removes_exactly_one_direction():
    from mini_transformer.analysis.probes import probe_r2, project_out

    g = torch.Generator().manual_seed(2)
    X = torch.randn(2, 5, 8, generator=g, dtype=torch.float64)
    u = torch.randn(8, generator=g, dtype=torch.float64)
    Y = project_out(X, 3 * u)  # the length of the direction does not matter
    unit = u / u.norm()
    assert (Y @ unit).abs().max().item() < 1e-12
    assert torch.allclose(X - Y, (X @ unit)[..., None] * unit)  # only the part along u changed
    assert torch.allclose(project_out(Y, u), Y)
    # a target written along u alone is no longer readable after the projection
    F_ = torch.randn(4000, 8, generator=g, dtype=torch.float64)
    y = F_ @ unit
    assert probe_r2(F_[:2000], y[:2000], F_[2000:], y[2000:]).item() > 0.999
    G = project_out(F_, u)
    assert abs(probe_r2(G[:2000], y[:2000], G[2000:], y[2000:]).item()) < 0.01
    with pytest.raises(ValueError, match="direction must have shape"):
        project_out(X, torch.ones(7))


def test_huber_losses_by_position_and_by_kind_of_target():
    from mini_transformer.tasks.precaching import huber_losses, loss_by_target_kind

    class Constant(torch.nn.Module):  # answers 0 (the trivial predictor) or copies x_n
        def __init__(self, copy):
            super().__init__()
            self.copy = copy

        def forward(self, inputs):
            return inputs[..., :1] if self.copy else torch.zeros_like(inputs[..., :1])

    task = PrecachingTask(window=3, frequency=3.0, p=0.5, length=16)
    inputs, targets = task.sample(64, torch.Generator().manual_seed(0))
    zero, copy = Constant(False), Constant(True)
    assert huber_losses(copy, inputs, targets).shape == (64, 16)
    assert huber_losses(copy, inputs, targets).mean().item() == pytest.approx(huber_loss(copy, inputs, targets).item())
    assert loss_by_target_kind(zero, inputs, targets) == pytest.approx({"past": 1.0, "copy": 1.0})
    kinds = loss_by_target_kind(copy, inputs, targets)
    assert kinds["copy"] == 0.0 and kinds["past"] > 0.5
    all_past = PrecachingTask(window=3, frequency=3.0, p=1.0, length=16).sample(8)
    assert math.isnan(loss_by_target_kind(copy, *all_past)["copy"])


def test_the_eraser_leaves_nothing_for_a_linear_probe_and_keeps_what_is_orthogonal():
    from mini_transformer.analysis.probes import fit_eraser

    g = torch.Generator().manual_seed(5)
    # a target spread over several coordinates (as features are in a trained residual stream),
    # plus coordinates that do not covary with it
    X = torch.randn(6000, 10, generator=g, dtype=torch.float64)
    y = torch.sin(X[:, :4].sum(1)) + 0.3 * X[:, 0]
    assert probe_r2(X[:3000], y[:3000], X[3000:], y[3000:]).item() > 0.1
    eraser = fit_eraser(X[:3000], y[:3000])
    E = eraser(X)
    assert abs(probe_r2(E[:3000], y[:3000], E[3000:], y[3000:]).item()) < 0.01
    assert eraser.direction.norm().item() == pytest.approx(1.0)
    moved = X - E  # one direction only: every shift is parallel to ĉ
    assert torch.allclose(moved, eraser.shift(X)[:, None] * eraser.direction)
    with pytest.raises(ValueError, match="targets must have shape"):
        fit_eraser(X, y[:10])
    with pytest.raises(ValueError, match="nothing to erase"):
        fit_eraser(X, torch.zeros(6000, dtype=torch.float64))
    with pytest.raises(ValueError, match="direction must have shape"):
        eraser(X, torch.ones(3, dtype=torch.float64))


def test_probe_r2_se_shrinks_with_more_test_groups_and_matches_a_repeated_experiment():
    from mini_transformer.analysis.probes import probe_r2, probe_r2_se

    g = torch.Generator().manual_seed(0)

    def sample(n):
        X = torch.randn(n, 4, generator=g)
        return X, X[:, 0] + torch.randn(n, generator=g)  # R² = 1/2

    Xf, yf = sample(4000)
    tests = [sample(400) for _ in range(200)]
    spread = torch.tensor([probe_r2(Xf, yf, X, y).item() for X, y in tests]).std().item()
    se = probe_r2_se(Xf, yf, *tests[0], n_groups=40)
    assert 0.6 * spread < se < 1.6 * spread, (se, spread)
    assert probe_r2_se(Xf, yf, *sample(3200), n_groups=40) < se
    with pytest.raises(ValueError, match="n_groups"):
        probe_r2_se(Xf, yf, *tests[0], n_groups=7)
