"""Save → load round-trips exactly, through torch.load(weights_only=True)."""

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config


@pytest.mark.parametrize("cls", [mt.DTransformer, mt.ETransformer, mt.EDTransformer])
def test_save_load_round_trip(tmp_path, cls):
    cfg = small_config(positional="sinusoidal", activation="relu", n_dec_layers=1)
    model = randomize_(cls(cfg)).eval()
    path = tmp_path / "model.pt"
    mt.save_model(model, path)
    loaded = mt.load_model(path)
    assert type(loaded) is cls and loaded.config == cfg
    x = torch.randint(0, cfg.vocab_size, (2, 6))
    args = (x, x[:, :4]) if cls is mt.EDTransformer else (x,)
    assert torch.equal(model(*args), loaded(*args))
    for (name, p), (name2, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name2 and torch.equal(p, q)


def test_load_rejects_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a mini_transformer model"):
        mt.load_model(path)


def test_save_rejects_other_modules(tmp_path):
    with pytest.raises(TypeError, match="model must be one of"):
        mt.save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")
