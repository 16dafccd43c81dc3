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
        mt.DTransformer(small_config(mask_kind="anticausal"))
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


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), -1e-5])
def test_layer_norm_eps_must_be_finite_and_non_negative(eps):
    with pytest.raises(ValueError, match="layer_norm_eps"):
        small_config(layer_norm_eps=eps)


@pytest.mark.parametrize("cls, field, value", [
    (mt.ETransformer, "output_dim", 3),
    (mt.ETransformer, "n_dec_layers", 1),
    (mt.ETransformer, "mask_kind", "self"),
    (mt.EDTransformer, "output_dim", 3),
    (mt.EDTransformer, "d_final", 8),
    (mt.EDTransformer, "zero_past", True),
    (mt.DTransformer, "d_final", 8),
    (mt.DTransformer, "n_dec_layers", 1),
])
def test_models_reject_config_fields_they_do_not_use(cls, field, value):
    with pytest.raises(ValueError, match=f"{cls.__name__} does not use config.{field}"):
        cls(small_config(**{field: value}))


def test_config_option_types():
    with pytest.raises(TypeError, match="zero_past"):
        small_config(zero_past=1)
    with pytest.raises(ValueError, match="activation"):
        small_config(activation="swish")


def test_train_says_when_the_batches_run_out():
    model = mt.DTransformer(small_config())
    batches = [torch.randint(0, 11, (2, 8)) for _ in range(3)]
    with pytest.raises(ValueError, match="batches ran out after 3 batches, before steps=5"):
        mt.d_training(model, batches, steps=5, progress=False)


def test_train_leaves_the_global_generator_alone_by_default():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    model = mt.DTransformer(small_config())  # consumes random numbers: build it before recording the state
    state = torch.get_rng_state()
    mt.d_training(model, [torch.randint(0, 11, (2, 8), generator=torch.Generator())], steps=1, progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # no hidden reseed
    mt.d_training(model, [torch.zeros(2, 8, dtype=torch.long)], steps=1, seed=5, progress=False)
    assert torch.equal(torch.rand(3), expected)  # an explicit seed still reseeds


def test_chapter_seed_comes_from_the_environment(monkeypatch):
    from mini_transformer.notebook import session_seed, setup

    monkeypatch.setenv("THINKING_AHEAD_SEED", "2")
    assert session_seed() == 2 and session_seed(7) == 7
    monkeypatch.setenv("THINKING_AHEAD_THREADS", "1")
    session = setup()
    assert session.seed == 2 and session.threads == 1
    monkeypatch.setenv("THINKING_AHEAD_SEED", "two")
    with pytest.raises(ValueError, match="THINKING_AHEAD_SEED"):
        session_seed()
    monkeypatch.setenv("THINKING_AHEAD_SEED", "-1")
    with pytest.raises(ValueError, match="THINKING_AHEAD_SEED"):
        session_seed()
