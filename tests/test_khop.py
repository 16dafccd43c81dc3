"""k-hop induction: the vectorised pointers equal a direct reading of the definition."""

import pytest
import torch

from mini_transformer.tasks import khop


def hops_by_definition(seq, k):
    """hop(p) = 1 + the last j < p with seq[j] == seq[p]; −1 once a hop is undefined."""
    pointers = []
    for t in range(len(seq)):
        p = t
        for _ in range(k):
            if p < 0:
                break
            earlier = [j for j in range(p) if seq[j] == seq[p]]
            p = earlier[-1] + 1 if earlier else -1
        pointers.append(p)
    return pointers


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_pointers_match_the_definition(k):
    x = khop.sample_letters(50, 24, 4, torch.Generator().manual_seed(k))
    pointers = khop.hop_pointers(x, k)
    for row, seq in zip(pointers.tolist(), x.tolist()):
        assert row == hops_by_definition(seq, k)


def test_letters_never_repeat_and_targets_use_none():
    x = khop.sample_letters(100, 30, 5, torch.Generator().manual_seed(0))
    assert (x[:, 1:] != x[:, :-1]).all() and x.min() >= 0 and x.max() < 5
    y = khop.targets(x, 2, 5)
    assert (y[:, 0] == 5).all()  # position 0 has no earlier occurrence: NONE
    one_hop = khop.targets(x, 1, 5)
    t = 7  # the classic induction head: the letter after the previous occurrence of x_t
    for seq, label in zip(x.tolist(), one_hop[:, t].tolist()):
        earlier = [j for j in range(t) if seq[j] == seq[t]]
        assert label == (seq[earlier[-1] + 1] if earlier else 5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_letters"):
        khop.sample_letters(2, 5, 1)
    with pytest.raises(ValueError, match="k"):
        khop.hop_pointers(torch.zeros(1, 3, dtype=torch.long), -1)
