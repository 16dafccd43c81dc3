"""The chapters' replacements for asserts that could not fail, each failing on a planted defect.

Chapters 3 and 4 check that no gradient crosses a sampled token *although* the later loss depends on it;
chapter 4 claims that a compiled scan is right about 1/|G| of the time past its reach; chapter 3 claims
that at initialisation the later losses' gradients mostly cancel (‖Σ‖ / Σ‖·‖ < 0.5). Each check is run
here on the real thing and on a planted defect that it must catch.
"""

import pytest
import torch
import torch.nn.functional as F

import mini_transformer as mt
from conftest import small_config
from mini_transformer.analysis import compiled
from mini_transformer.analysis.gradflow import gradient_flow, mean_flow, sequence_flows
from mini_transformer.notebook.claims import Claims, mean_se
from mini_transformer.tasks import permutations as s3


def gradient_into_the_chooser(model, x, target, feed_back):
    """The chapters' check, on one step: the gradient of the later loss with respect to the logits that
    chose the next input (None: no path), where ``feed_back(logits)`` gives the later loss."""
    logits = model(x)[:, -1]
    (grad,) = torch.autograd.grad(feed_back(logits), logits, allow_unused=True)
    return grad


def test_no_gradient_crosses_a_sampled_token_and_the_check_sees_a_soft_token():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config(n_layers=1)).double()
    x, target = torch.randint(0, 11, (2, 5)), torch.tensor([1, 2])

    def later_loss(token):
        return F.cross_entropy(model(torch.cat([x, token[:, None]], dim=1))[:, -1], target)

    def written(logits):  # Algorithm 14: the chosen token is an integer id, embedded again
        return later_loss(mt.sample_token(logits, tau=0.0))

    def soft(logits):  # planted: the "token" is the probability-weighted embedding, written in at X0.token
        embedding = logits.softmax(-1) @ model.embedding.token.weight
        with mt.hooked(model, {"X0.token": lambda E: torch.cat([E[:, :-1], embedding[:, None]], dim=1)}):
            return later_loss(torch.zeros(len(x), dtype=torch.long))

    token = mt.sample_token(model(x)[:, -1], tau=0.0)
    assert abs(later_loss((token + 1) % 11).item() - later_loss(token).item()) > 1e-3  # the loss depends on it
    assert gradient_into_the_chooser(model, x, target, written) is None
    planted = gradient_into_the_chooser(model, x, target, soft)
    assert planted is not None and planted.abs().max() > 0  # the check would fail on the planted defect


def test_past_its_reach_the_compiled_scan_is_at_chance_and_a_leak_fails_the_claim():
    L, n = 2, 16
    scan = compiled.compile_scan(s3.COMPOSE, L, max_len=n + 1)
    g, s = s3.sample(200, n, torch.Generator().manual_seed(0))
    correct = (compiled.scan_products(scan, g) == s).float()
    beyond = correct[:, 2 ** L:].mean(1)
    claims = Claims("00_test", seed=0, recorded={})
    chance = 1 / s3.ORDER
    claims.check("beyond", beyond.mean().item(), above=chance - 0.05, below=chance + 0.05, se=mean_se(beyond))
    leaked = (s == s).float()[:, 2 ** L:].mean(1)  # planted: a model that reads the answer
    with pytest.raises(AssertionError):
        claims.check("beyond_leak", leaked.mean().item(), above=chance - 0.05, below=chance + 0.05,
                     se=max(mean_se(leaked), 1e-3))


def test_later_gradients_cancel_at_initialisation_and_summed_norms_would_not():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config(n_layers=2, max_len=32)).double()
    x = torch.randint(0, 11, (8, 32), generator=torch.Generator().manual_seed(1))
    flows = sequence_flows(model, x)
    flow = mean_flow(flows)
    coherence = (flow.future_norm.sum(-1) / flow.future())[0].item()
    per_window = torch.tensor([(f.future_norm.sum(-1) / f.future())[0].item() for f in flows])
    claims = Claims("00_test", seed=0, recorded={})
    claims.check("cancel", coherence, below=0.5, se=mean_se(per_window))
    # planted: F computed as the sum of the later losses' norms (the bug the claim guards against)
    with pytest.raises(AssertionError):
        claims.check("no_cancel", (flow.future() / flow.future())[0].item(), below=0.5, se=mean_se(per_window))
    assert gradient_flow(model, x).G.shape == flow.G.shape
