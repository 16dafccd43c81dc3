import pytest
import torch

import mini_transformer as mt


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def small_config(**overrides) -> mt.TransformerConfig:
    values = dict(vocab_size=11, max_len=16, d_model=24, n_layers=2, n_heads=3, d_mlp=40)
    values.update(overrides)
    return mt.TransformerConfig(**values)


def randomize_(model: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """Give every parameter random values (biases and layer-norm γ, β included), so equivalence
    tests exercise all of them, not just the defaults of 0 and 1."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return model


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of many tiny float64 products (faster); the setting is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
