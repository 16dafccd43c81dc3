"""The fused kernels compute the same function as the faithful algorithms (config.kernels)."""

import dataclasses

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config


def twins(model_cls, config, **kwargs):
    """A faithful model and a fused one holding the same float64 weights."""
    torch.manual_seed(0)
    faithful = randomize_(model_cls(config, **kwargs).double(), scale=0.3)
    fused = model_cls(dataclasses.replace(config, kernels="fused"), **kwargs).double()
    fused.load_state_dict(faithful.state_dict())
    return faithful, fused


def assert_same_function_and_gradient(faithful, fused, *inputs):
    out_a, out_b = faithful(*inputs), fused(*inputs)
    assert (out_a - out_b).abs().max() < 1e-12
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    for (name, a), (_, b) in zip(faithful.named_parameters(), fused.named_parameters()):
        assert (a.grad - b.grad).abs().max() < 1e-10, name


@pytest.mark.parametrize("mask_kind", ["causal", "self"])
def test_fused_dtransformer_equals_faithful(mask_kind):
    faithful, fused = twins(mt.DTransformer, small_config(n_layers=2, mask_kind=mask_kind))
    x = torch.randint(0, 11, (3, 9))
    assert_same_function_and_gradient(faithful, fused, x)


def test_fused_trace_still_has_patterns():
    faithful, fused = twins(mt.DTransformer, small_config(n_layers=2))
    x = torch.randint(0, 11, (2, 7))
    _, trace_a = mt.trace(faithful, x)
    _, trace_b = mt.trace(fused, x)
    for a, b in zip(trace_a.states + trace_a.patterns, trace_b.states + trace_b.patterns):
        assert (a - b).abs().max() < 1e-12


def test_fused_encoder_and_encoder_decoder_equal_faithful():
    faithful, fused = twins(mt.ETransformer, small_config(n_layers=2))
    assert_same_function_and_gradient(faithful, fused, torch.randint(0, 11, (2, 6)))
    faithful, fused = twins(mt.EDTransformer, small_config(n_layers=2))
    assert_same_function_and_gradient(faithful, fused, torch.randint(0, 11, (2, 5)), torch.randint(0, 11, (2, 7)))


def test_myopic_training_falls_back_to_the_faithful_path():
    from mini_transformer.analysis.myopia import myopic, parameter_gradients

    faithful, fused = twins(mt.DTransformer, small_config(n_layers=2))
    x = torch.randint(0, 11, (2, 8))
    with myopic(faithful), myopic(fused):
        grads_a = parameter_gradients(faithful, mt.d_training_loss, x, beta=0.0)
        grads_b = parameter_gradients(fused, mt.d_training_loss, x, beta=0.0)
    assert all((a - b).abs().max() < 1e-10 for a, b in zip(grads_a, grads_b))


def test_unknown_kernels_raise():
    with pytest.raises(ValueError, match="kernels must be one of"):
        mt.TransformerConfig(vocab_size=5, max_len=4, kernels="turbo")
