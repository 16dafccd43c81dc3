"""The filler-token control of chapter 4 (depth_grid.train_filler): the silent model, trained the same
way on the filler format g_1 . g_2 . …, with s_t read at the "." after g_t."""

import itertools
import math

import torch
import torch.nn.functional as F

from mini_transformer import hooks
from mini_transformer.analysis.paths import StateGraph
from mini_transformer.experiments import depth_grid
from mini_transformer.tasks import permutations as P

# tiny, with steps ≠ written_steps, so that a filler arm on the written arm's budget is caught
CONFIG = depth_grid.DepthGridConfig(depths=(2,), length=5, steps=12, written_steps=4, batch_size=8, d_model=16,
                                    n_heads=2, seeds=(0,), n_test=50)


def recorded(monkeypatch, arm, n_layers=2, seed=0):
    """Run ``arm`` (``train_filler`` or ``train_silent``) on CONFIG with its call of ``train`` recorded:
    returns the model and the call's arguments, with ``first``, the first batch it trained on."""
    real, calls = depth_grid.train, []

    def spy(model, loss_fn, batches, steps, **kwargs):
        batches = iter(batches)
        first = next(batches)
        calls.append(dict(loss_fn=loss_fn, steps=steps, first=first, **kwargs))
        return real(model, loss_fn, itertools.chain([first], batches), steps, **kwargs)

    monkeypatch.setattr(depth_grid, "train", spy)
    model = arm(n_layers, CONFIG, seed=seed, progress=False)
    assert len(calls) == 1
    return model, calls[0]


def test_the_filler_model_is_the_silent_model_trained_the_same_way_on_the_filler_format(monkeypatch):
    filler, call = recorded(monkeypatch, depth_grid.train_filler)
    silent, silent_call = recorded(monkeypatch, depth_grid.train_silent)
    # the same model but for the vocabulary (the elements and ".") and the length (2n positions)
    assert filler.config.vocab_size == P.FILLER_VOCAB and filler.config.max_len == 2 * CONFIG.length
    for field in ("n_layers", "d_model", "n_heads", "d_mlp", "mask_kind"):
        assert getattr(filler.config, field) == getattr(silent.config, field), field
    # the same training: the silent arm's steps (not the written arm's), optimiser, schedule and seed
    budget = ("steps", "lr", "schedule", "warmup", "grad_clip", "seed", "device")
    assert call["steps"] == CONFIG.steps
    assert {k: call[k] for k in budget} == {k: silent_call[k] for k in budget}
    # on the filler format: g_1 . g_2 . … with the running products s as the labels
    x, s = call["first"]
    assert x.shape == (CONFIG.batch_size, 2 * CONFIG.length) and s.shape == (CONFIG.batch_size, CONFIG.length)
    assert (x[:, 1::2] == P.FILLER).all() and (x[:, 0::2] < P.ORDER).all()
    assert torch.equal(s, P.running_products(x[:, 0::2]))
    # each seed draws its own batches
    _, other = recorded(monkeypatch, depth_grid.train_filler, seed=1)
    assert not torch.equal(other["first"][0], x)


class Oracle(torch.nn.Module):
    """Logits that put s_t (computed from the g's of the input) at the positions ``at``: the perfect
    model if ``at`` are the "." positions."""

    def __init__(self, at: slice):
        super().__init__()
        self.at = at

    def forward(self, x):
        logits = torch.zeros(*x.shape, P.FILLER_VOCAB)
        logits[:, self.at] = 30.0 * F.one_hot(P.running_products(x[:, 0::2]), P.FILLER_VOCAB).float()
        return logits


def test_the_filler_loss_reads_s_t_at_the_dot_after_g_t_and_nowhere_else(monkeypatch):
    model, call = recorded(monkeypatch, depth_grid.train_filler)
    loss_fn, (x, s) = call["loss_fn"], call["first"]
    # labels: s_t at the "." after g_t (position 2t − 1, t = 1 … n, 0-based)
    assert loss_fn(Oracle(slice(1, None, 2)), x, s).item() < 1e-6
    assert loss_fn(Oracle(slice(0, None, 2)), x, s).item() > 1.7  # s_t at g_t instead: chance, ln 6
    # loss mask: the gradient reaches the top state at every "." and at no g position
    top = hooks.state_names(model)[-1]
    delta = torch.zeros(*x.shape, model.config.d_model, requires_grad=True)
    with hooks.perturbed(model, {top: delta}):
        loss = loss_fn(model, x, s)
    reach = torch.autograd.grad(loss, delta)[0].norm(dim=-1)
    assert (reach[:, 0::2] == 0).all() and (reach[:, 1::2] > 0).all()


def test_train_filler_is_seeded_and_learns_the_first_product():
    """Same seed, same model (the initialisation and the batches are seeded); and 30 steps already
    teach the first "." to output s_1 = g_1, which a loss at the wrong positions would not."""
    config = depth_grid.SCALES["tiny"]
    model = depth_grid.train_filler(1, config, seed=0, progress=False)
    torch.manual_seed(123)  # the global generator's state must not matter
    again = depth_grid.train_filler(1, config, seed=0, progress=False)
    other = depth_grid.train_filler(1, config, seed=1, progress=False)
    weights, same, different = model.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(weights[k], same[k]) for k in weights)
    assert not all(torch.equal(weights[k], different[k]) for k in weights)
    g, s = depth_grid.held_out(config)
    accuracy = P.filler_accuracy(model, g, s)
    assert accuracy.shape == (config.length,) and accuracy[0] > 0.5  # chance is 1/6
    with torch.no_grad():
        assert P.filler_loss(model, P.with_fillers(g), s).item() < math.log(P.ORDER) - 0.02


def test_fillers_add_positions_not_depth():
    """Why the filler arm is the control: fillers are plain inputs, so the filler sequence's graph has
    the silent model's longest path 2L, while writing adds a path through every written token."""
    n = depth_grid.SCALES["tiny"].length
    assert StateGraph(1, 2 * n).longest_path() == StateGraph(1, n).longest_path() == 2
    assert StateGraph(1, 2 * n, written=True).longest_path() > 2 * 2 * n
