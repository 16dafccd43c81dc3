"""Bad input raises a ValueError or TypeError that names the argument."""

import pytest
import torch

import mini_transformer as mt
from conftest import small_config


@pytest.fixture
def model():
    return mt.DTransformer(small_config())


@pytest.mark.parametrize(
    "x, error, words",
    [
        (torch.tensor([[1, 11]]), ValueError, "outside [0, vocab_size=11)"),
        (torch.tensor([[-1, 2]]), ValueError, "token id -1"),
        (torch.zeros(1, 17, dtype=torch.long), ValueError, "longer than max_len"),
        (torch.zeros(1, 4), TypeError, "integer token ids"),
        (torch.zeros(1, 2, 3, dtype=torch.long), ValueError, "shape (ℓ,) or (batch, ℓ)"),
        (torch.zeros(1, 0, dtype=torch.long), ValueError, "at least one token"),
        ([1, 2, 3], TypeError, "torch.Tensor"),
    ],
)
def test_bad_tokens_raise_naming_x(model, x, error, words):
    with pytest.raises(error) as info:
        model(x)
    assert "x" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize(
    "overrides, error, name",
    [
        (dict(d_model=10, n_heads=3), ValueError, "n_heads"),
        (dict(vocab_size=0), ValueError, "vocab_size"),
        (dict(max_len=2.5), TypeError, "max_len"),
        (dict(n_layers="2"), TypeError, "n_layers"),
        (dict(activation="tanh"), ValueError, "activation"),
        (dict(positional="rotary"), ValueError, "positional"),
        (dict(layer_norm_eps=-1.0), ValueError, "layer_norm_eps"),
        (dict(d_mlp=0), ValueError, "d_mlp"),
    ],
)
def test_bad_config_raises_naming_the_field(overrides, error, name):
    with pytest.raises(error, match=name):
        small_config(**overrides)


def test_unknown_mask_kind_raises():
    with pytest.raises(ValueError, match="mask kind"):
        mt.attention_mask("sideways", 3)
    with pytest.raises(ValueError, match="mask_kind"):
        mt.DTransformer(small_config(), mask_kind="bidirectional")
    with pytest.raises(ValueError, match="causal mask needs"):
        mt.attention_mask("causal", 3, 4)


@pytest.mark.parametrize("tau, error", [(-0.1, ValueError), (float("nan"), ValueError), ("hot", TypeError)])
def test_bad_temperature_raises(model, tau, error):
    with pytest.raises(error, match="tau"):
        mt.d_inference(model, torch.tensor([1, 2]), 3, tau=tau)


def test_bad_generation_arguments_raise(model):
    with pytest.raises(ValueError, match="n_generate"):
        mt.d_inference(model, torch.tensor([1, 2]), 0)
    with pytest.raises(ValueError, match="optimizer"):
        mt.make_optimizer(model, "lion")
    with pytest.raises(ValueError, match="schedule"):
        mt.train(model, mt.d_training_loss, iter([]), 1, schedule="linear")
    with pytest.raises(TypeError, match="config"):
        mt.DTransformer({"vocab_size": 3})
    with pytest.raises(ValueError, match="p_mask"):
        mt.mask_tokens(torch.zeros(2, 2, dtype=torch.long), 1, p_mask=1.5)


def test_positional_embedding_rejects_long_sequences():
    with pytest.raises(ValueError, match="max_len"):
        mt.PositionalEmbedding(4, 8)(5)
    with pytest.raises(ValueError, match="even d_model"):
        mt.sinusoidal_positions(4, 7)
