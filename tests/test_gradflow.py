"""Gradient flow across positions: the batched G equals the naive loop; causality; a control."""

import pytest
import torch

import mini_transformer as mt
from conftest import small_config
from mini_transformer.analysis.gradflow import gradient_flow, gradient_flow_naive, position_losses


@pytest.fixture
def model64():
    torch.manual_seed(0)
    return mt.DTransformer(small_config(n_layers=3)).double()


def test_batched_equals_the_naive_loop(model64):
    x = torch.randint(0, 11, (3, 10))
    batched, naive = gradient_flow(model64, x), gradient_flow_naive(model64, x)
    assert batched.G.shape == (7, 9, 9) and batched.names == naive.names
    torch.testing.assert_close(batched.G, naive.G, atol=1e-12, rtol=1e-10)


def test_entries_are_one_loss_one_state_gradient_norms(model64):
    x = torch.randint(0, 11, (1, 8))
    losses, trace = position_losses(model64, x)
    s, t, state = 2, 5, 3
    grad = torch.autograd.grad(losses[0, t], trace.states[state])[0][0, s]
    assert gradient_flow(model64, x).G[state, s, t].item() == pytest.approx(grad.norm().item(), rel=1e-12)


def test_no_gradient_from_a_loss_into_later_positions(model64):
    G = gradient_flow(model64, torch.randint(0, 11, (2, 12))).G
    strictly_lower = torch.ones(11, 11, dtype=torch.bool).tril(-1)  # s > t
    assert torch.all(G[:, strictly_lower] == 0)
    assert torch.all(G.diagonal(dim1=-2, dim2=-1) > 0)


def test_states_above_the_last_attention_get_only_their_own_gradient(model64):
    flow = gradient_flow(model64, torch.randint(0, 11, (2, 12)))
    share = flow.future_share()
    assert share[-1] == 0 and share[-2] == 0  # L3.mlp and L3.attn: only position-wise maps above
    assert torch.all(share[:-2] > 0)  # every state below the last attention hears later losses


def test_self_only_attention_has_no_off_diagonal_gradient():
    torch.manual_seed(0)
    model = mt.DTransformer(small_config(mask_kind="self")).double()
    flow = gradient_flow(model, torch.randint(0, 11, (2, 10)))
    off_diagonal = ~torch.eye(9, dtype=torch.bool)
    assert torch.all(flow.G[:, off_diagonal] == 0)
    assert torch.all(flow.future_share() == 0)


def test_by_distance_averages_each_diagonal(model64):
    flow = gradient_flow(model64, torch.randint(0, 11, (1, 7)))
    profile = flow.by_distance()
    assert profile.shape == (7, 6)
    torch.testing.assert_close(profile[:, 2], torch.stack([flow.G[l].diagonal(2).mean() for l in range(7)]))


def test_gradient_flow_rejects_single_token_sequences(model64):
    with pytest.raises(ValueError, match="at least 2 tokens"):
        gradient_flow(model64, torch.zeros(2, 1, dtype=torch.long))


def test_summed_future_gradient_is_the_vector_sum_of_later_losses(model64):
    """F_i[s] = Σ_{t>s} ∂ℓ_t/∂X_i[s] computed directly (one backward pass of the later losses' sum)
    gives the stored norm and cosine; the batched and naive flows agree on them too."""
    x = torch.randint(0, 11, (2, 9))
    flow, naive = gradient_flow(model64, x), gradient_flow_naive(model64, x)
    for name in ("own_norm", "future_norm", "cosine"):
        torch.testing.assert_close(getattr(flow, name), getattr(naive, name), atol=1e-12, rtol=1e-10)
    losses, trace = position_losses(model64, x)
    s, state = 3, 2
    later = losses[:, s + 1:].sum()
    future = torch.autograd.grad(later, trace.states[state], retain_graph=True)[0][:, s]  # (batch, d)
    own = torch.autograd.grad(losses[:, s].sum(), trace.states[state])[0][:, s]
    assert flow.future_norm[state, s].item() == pytest.approx(future.norm(dim=-1).mean().item(), rel=1e-10)
    assert flow.own_norm[state, s].item() == pytest.approx(own.norm(dim=-1).mean().item(), rel=1e-10)
    cos = torch.nn.functional.cosine_similarity(future, own, dim=-1).mean()
    assert flow.cosine[state, s].item() == pytest.approx(cos.item(), rel=1e-9)


def test_summing_norms_never_gives_less_than_norming_the_sum(model64):
    flow = gradient_flow(model64, torch.randint(0, 11, (2, 12)))
    assert torch.all(flow.future_share() >= flow.summed_future_share() - 1e-12)  # triangle inequality
    assert flow.summed_future_share()[-1] == 0 and flow.mean_cosine()[-1] == 0  # nothing above the last attention


def test_a_batch_flow_is_the_mean_of_its_sequences_flows(model64):
    from mini_transformer.analysis.gradflow import mean_flow, sequence_flows

    x = torch.randint(0, model64.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(5))
    whole, parts = gradient_flow(model64, x), mean_flow(sequence_flows(model64, x))
    for field in ("G", "own_norm", "future_norm", "cosine"):
        torch.testing.assert_close(getattr(parts, field), getattr(whole, field), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="flows"):
        mean_flow([])
