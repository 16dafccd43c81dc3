"""Directional ablation of one position's residual state (analysis/ablation.py)."""

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_
from mini_transformer.analysis.ablation import loss_rise_by_lag, random_unit_directions
from mini_transformer.analysis.probes import project_out
from mini_transformer.tasks.precaching import PrecachingTask, huber_losses


def regression_model(**overrides):
    values = dict(vocab_size=1, max_len=12, d_model=16, n_layers=2, n_heads=2, activation="relu",
                  input_dim=2, output_dim=1)
    values.update(overrides)
    return randomize_(mt.DTransformer(mt.TransformerConfig(**values)).double(), 0.3).eval()


def batch():
    inputs, targets = PrecachingTask(window=3, frequency=3.0, length=12).sample(16, torch.Generator().manual_seed(0))
    return inputs.double(), targets.double()


def test_the_rise_equals_a_direct_computation():
    model, (inputs, targets) = regression_model(), batch()
    u = random_unit_directions(1, 16, torch.Generator().manual_seed(3))[0].double()
    rise = loss_rise_by_lag(model, huber_losses, inputs, targets, "L1.mlp", lambda X: project_out(X, u),
                            positions=[2, 5], max_lag=4)
    clean = huber_losses(model, inputs, targets)
    expected = torch.zeros(5, dtype=torch.float64)
    for n in (2, 5):
        _, trace = mt.trace(model, inputs)
        patched_state = trace.states[2].clone()  # "L1.mlp" is the third state
        patched_state[:, n] = project_out(patched_state[:, n], u)
        with mt.hooked(model, {"L1.mlp": lambda X: patched_state}):
            ablated = huber_losses(model, inputs, targets)
        expected += (ablated - clean)[:, n: n + 5].mean(0) / 2
    assert torch.allclose(rise, expected, atol=1e-12)
    assert rise[1:].abs().max() > 1e-6  # later positions read X_1[n] through attention


def test_per_sequence_rises_average_to_the_batch_rise():
    model, (inputs, targets) = regression_model(), batch()
    u = random_unit_directions(1, 16, torch.Generator().manual_seed(5))[0].double()
    args = (model, huber_losses, inputs, targets, "L1.mlp", lambda X: project_out(X, u), [1, 4], 3)
    each = loss_rise_by_lag(*args, per_sequence=True)
    assert each.shape == (16, 4)
    assert torch.allclose(each.mean(0), loss_rise_by_lag(*args), atol=1e-12)
    assert each[:, 1:].std(0).min() > 0  # the sequences differ: there is something to bootstrap
    with pytest.raises(TypeError, match="per_sequence"):
        loss_rise_by_lag(*args, per_sequence=1)


def test_a_model_that_reads_no_past_state_shows_a_rise_at_lag_zero_only():
    model, (inputs, targets) = regression_model(zero_past=True), batch()
    u = random_unit_directions(1, 16, torch.Generator().manual_seed(4))[0].double()
    rise = loss_rise_by_lag(model, huber_losses, inputs, targets, "X0", lambda X: project_out(X, u),
                            positions=range(0, 8), max_lag=3)
    assert rise[0].abs() > 1e-6
    assert rise[1:].abs().max() == 0


def test_a_direction_the_state_does_not_use_changes_nothing():
    model, (inputs, targets) = regression_model(), batch()
    unused = torch.zeros(16, dtype=torch.float64)
    unused[0] = 1.0

    def kill_first_coordinate(X):
        X = X.clone()
        X[..., 0] = 0
        return X

    # X0 with coordinate 0 set to zero everywhere: projecting out e_0 there is the identity
    with mt.hooked(model, {"X0": kill_first_coordinate}):
        rise = loss_rise_by_lag(model, huber_losses, inputs, targets, "X0", lambda X: project_out(X, unused),
                                positions=[1, 4], max_lag=2)
    assert rise.abs().max() == 0


def test_bad_arguments_are_named():
    model, (inputs, targets) = regression_model(), batch()
    u = lambda X: X  # noqa: E731 (the identity edit)
    with pytest.raises(TypeError, match="edit must be a function"):
        loss_rise_by_lag(model, huber_losses, inputs, targets, "X0", torch.ones(16), [1], 2)
    with pytest.raises(ValueError, match="state must be one of"):
        loss_rise_by_lag(model, huber_losses, inputs, targets, "L3.mlp", u, [1], 2)
    with pytest.raises(ValueError, match="positions"):
        loss_rise_by_lag(model, huber_losses, inputs, targets, "X0", u, [10], 2)
    with pytest.raises(ValueError, match="max_lag"):
        loss_rise_by_lag(model, huber_losses, inputs, targets, "X0", u, [1], -1)
    with pytest.raises(ValueError, match="count"):
        random_unit_directions(0, 4)
    directions = random_unit_directions(5, 7, torch.Generator().manual_seed(0))
    assert directions.shape == (5, 7) and torch.allclose(directions.norm(dim=1), torch.ones(5))


def test_erasing_a_feature_the_next_position_reads_raises_the_loss_there():
    """A loss built so that only position n + 1 reads a feature of X0[n]: ℓ_t = (X0[t − 1] · e_3)².
    Erasing the feature at n must change ℓ_{n+1} and nothing else; the eraser itself must leave no
    covariance with the feature, and its control must move each state as far along another axis."""
    from mini_transformer.analysis.probes import fit_eraser

    model = regression_model(n_layers=1)
    inputs, targets = batch()
    _, trace = mt.trace(model, inputs)
    X0 = trace.states[0]
    feature = X0[..., 3]  # a feature the state holds linearly
    eraser = fit_eraser(X0.reshape(-1, 16), feature.reshape(-1))
    erased = eraser(X0.reshape(-1, 16))
    # after erasure the feature no longer covaries with the state (what no linear probe can read)
    cov = ((erased - erased.mean(0)) * (feature.reshape(-1, 1) - feature.mean())).mean(0)
    assert cov.abs().max().item() < 1e-10
    # and the control moves every state exactly as far, along another direction
    u = torch.zeros(16, dtype=torch.float64)
    u[5] = 2.0
    moved = eraser(X0.reshape(-1, 16), u)
    assert torch.allclose((X0.reshape(-1, 16) - moved).norm(dim=1), (X0.reshape(-1, 16) - erased).norm(dim=1))
    assert torch.allclose((X0.reshape(-1, 16) - moved)[:, [i for i in range(16) if i != 5]],
                          torch.zeros(len(moved), 15, dtype=torch.float64))

    def reads_previous_feature(model, inputs, targets):  # ℓ_t = (X0[t − 1, 3] − 0)², ℓ_0 = 0
        _, tr = mt.trace(model, inputs)
        f = tr.states[0][..., 3]
        return torch.nn.functional.pad(f[:, :-1] ** 2, (1, 0))

    rise = loss_rise_by_lag(model, reads_previous_feature, inputs, targets, "X0", eraser, range(0, 8), max_lag=2)
    assert rise[0].item() == 0 and rise[2].item() == 0  # only position n + 1 reads X0[n]
    assert rise[1].item() != 0
