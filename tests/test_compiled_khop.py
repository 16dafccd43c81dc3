"""The compiled k-hop model (Sanford, Hsu & Telgarsky 2024: pointer doubling at depth ⌊log₂ k⌋ + 2)
is exact for every k ≤ 2^{L−1} − 1, NONE included, and computes k hops, not k + 1."""

import pytest
import torch

from mini_transformer.analysis import compiled as C
from mini_transformer.models import DTransformer, trace
from mini_transformer.tasks import khop


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: many tiny float64 products


LENGTH = 48


def letters(n: int, length: int, n_letters: int, seed: int) -> torch.Tensor:
    return khop.sample_letters(n, length, n_letters, torch.Generator().manual_seed(seed))


# 4 letters at length 48: the 15-hop chains are long and still defined at 1 position in 10;
# 8 letters at length 32: most long chains end in NONE
LONG_CHAINS = letters(300, LENGTH, 4, seed=0)
MANY_NONE = letters(100, 32, 8, seed=1)


@pytest.mark.parametrize("n_layers", [2, 3, 4, 5])
def test_exact_for_every_k_within_reach(n_layers):
    assert C.khop_reach(n_layers) == 2 ** (n_layers - 1) - 1
    for k in range(1, C.khop_reach(n_layers) + 1):
        for n_letters, x in ((4, LONG_CHAINS), (8, MANY_NONE)):
            model = C.compile_khop(n_letters, k, n_layers, max_len=LENGTH)
            assert isinstance(model, DTransformer) and model.config.n_layers == n_layers
            y = khop.targets(x, k, n_letters)
            if n_letters == 4:  # both kinds of label occur at every k
                assert (y == n_letters).any() and (y != n_letters).any(), k
            assert torch.equal(C.khop_predictions(model, x), y), (n_layers, k, n_letters)


@pytest.mark.parametrize("n_layers", [2, 3, 4, 5])
def test_staircase_k_hops_not_more(n_layers):
    """The model for the largest k is wrong on the (k+1)-hop targets: the test can fail."""
    k = C.khop_reach(n_layers)
    predicted = C.khop_predictions(C.compile_khop(4, k, n_layers, max_len=LENGTH), LONG_CHAINS)
    assert torch.equal(predicted, khop.targets(LONG_CHAINS, k, 4))
    wrong = (predicted != khop.targets(LONG_CHAINS, k + 1, 4)).float().mean()
    assert wrong > 0.05


def test_layers_read_the_doubled_pointers():
    """Layer 1 reads the previous occurrence of the letter (BOS if none); layer l ≥ 2 reads the
    position hop^{2^{l−2}}(t) (counted with BOS in front, BOS standing for NONE)."""
    n_layers, x = 4, LONG_CHAINS[:5, :24]
    model = C.compile_khop(4, 7, n_layers, max_len=24)
    with torch.no_grad():
        _, states = trace(model, torch.cat([torch.full_like(x[:, :1], 4), x], dim=1))
    reads = [pattern[:, 0, 1:].argmax(-1) for pattern in states.patterns]  # (batch, letter t) per layer
    previous = khop.hop_pointers(x, 1) - 1  # hop(t) − 1: the previous occurrence (−2 if none)
    assert torch.equal(reads[0], torch.where(previous >= 0, previous + 1, 0))
    for l in range(2, n_layers + 1):
        pointer = khop.hop_pointers(x, 2 ** (l - 2))
        assert torch.equal(reads[l - 1], torch.where(pointer >= 0, pointer + 1, 0)), l


def test_a_margin_not_a_tie():
    model = C.compile_khop(4, 15, 5, max_len=LENGTH)
    x = LONG_CHAINS[:50]
    with torch.no_grad():
        logits = model(torch.cat([torch.full_like(x[:, :1], 4), x], dim=1))
    top2 = logits.topk(2, dim=-1).values
    assert model.config.d_model == C.compile_khop(4, 15, 5, LENGTH).layout.width
    assert (top2[..., 0] - top2[..., 1]).min() > 0.9 * C.READOUT


def test_beyond_the_reach_is_refused():
    for n_layers in (1, 2, 3, 4, 5):
        with pytest.raises(ValueError, match="reach"):
            C.compile_khop(8, 2 ** (n_layers - 1), n_layers, max_len=16)
    with pytest.raises(ValueError, match="k"):
        C.compile_khop(8, 0, 3, max_len=16)
    with pytest.raises(ValueError, match="n_layers"):
        C.compile_khop(8, 1, 0, max_len=16)
    with pytest.raises(ValueError, match="n_letters"):
        C.compile_khop(1, 1, 2, max_len=16)
    with pytest.raises(ValueError, match="x"):
        C.khop_predictions(C.compile_khop(8, 1, 2, max_len=16), torch.zeros(1, 17, dtype=torch.long))
