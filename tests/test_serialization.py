"""Save → load gives back the same function, through torch.load(weights_only=True); a file that is
not a model gives an error that names the file."""

import pickle

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config

# Every option that changes the forward pass, for the classes that use it.
OPTIONS = {
    "defaults": {},
    "sinusoidal, relu": dict(positional="sinusoidal", activation="relu"),
    "gelu_tanh, eps": dict(activation="gelu_tanh", layer_norm_eps=1e-3),
    "fused kernels": dict(kernels="fused"),
    "mask_kind self": dict(mask_kind="self"),
    "transformer bigram": dict(zero_past=True),
    "real inputs and outputs": dict(input_dim=3, output_dim=2),
    "d_mlp": dict(d_mlp=7),
    "d_final": dict(d_final=10),
    "n_dec_layers": dict(n_dec_layers=1),
}
USES = {  # the fields each class rejects are those it does not use
    mt.DTransformer: {"d_final", "n_dec_layers"},
    mt.ETransformer: {"output_dim", "n_dec_layers", "mask_kind", "zero_past"},
    mt.EDTransformer: {"output_dim", "d_final", "mask_kind", "zero_past"},
}


def cases():
    for cls, unused in USES.items():
        for name, options in OPTIONS.items():
            if not set(options) & unused and not (cls is not mt.DTransformer and "input_dim" in options):
                yield pytest.param(cls, options, id=f"{cls.__name__}-{name}")


def inputs(cls, cfg):
    torch.manual_seed(1)
    if cfg.input_dim is not None:
        x = torch.randn(2, 6, cfg.input_dim)
    else:
        x = torch.randint(0, cfg.vocab_size, (2, 6))
    return (x, x[:, :4]) if cls is mt.EDTransformer else (x,)


@pytest.mark.parametrize("cls, options", list(cases()))
def test_save_load_round_trip(tmp_path, cls, options):
    cfg = small_config(**options)
    model = randomize_(cls(cfg)).eval()
    path = tmp_path / "model.pt"
    mt.save_model(model, path)
    loaded = mt.load_model(path)
    assert type(loaded) is cls and loaded.config == cfg
    args = inputs(cls, cfg)
    assert torch.equal(model(*args), loaded(*args))
    for (name, p), (name2, q) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert name == name2 and torch.equal(p, q)


def test_options_that_change_the_function_survive_the_round_trip(tmp_path):
    """The control models differ from a causal vanilla model with the same weights, and stay different."""
    base = randomize_(mt.DTransformer(small_config())).eval()
    x = torch.randint(0, 11, (2, 8))
    for options in (dict(mask_kind="self"), dict(zero_past=True)):
        control = mt.DTransformer(small_config(**options)).eval()
        control.load_state_dict(base.state_dict())
        assert (control(x) - base(x)).abs().max() > 1e-3
        mt.save_model(control, tmp_path / "control.pt")
        assert torch.equal(mt.load_model(tmp_path / "control.pt")(x), control(x))


def valid_file(tmp_path):
    path = tmp_path / "good.pt"
    mt.save_model(mt.DTransformer(small_config()), path)
    return path


class Payload:  # an arbitrary class: weights_only=True must refuse to unpickle it
    def __reduce__(self):
        return (print, ("this must never run",))


def bad_files(tmp_path):
    good = valid_file(tmp_path).read_bytes()
    files = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "corrupted": bytes(b ^ 0x5A for b in good[:4000]) + good[4000:],
        "random bytes": bytes(range(256)) * 8,
        "arbitrary pickle": pickle.dumps(Payload()),
        "plain text": b"hello, I am not a model\n",
    }
    for name, content in files.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        path.write_bytes(content)
        yield name, path


def test_load_rejects_broken_files_with_an_error_naming_the_file(tmp_path, capsys):
    for name, path in bad_files(tmp_path):
        with pytest.raises(ValueError, match=path.name) as info:
            mt.load_model(path)
        assert "weights_only=False" not in str(info.value), name  # no unsafe advice
    assert "must never run" not in capsys.readouterr().out


def test_load_rejects_other_torch_files(tmp_path):
    for name, payload in {
        "a tensor": torch.zeros(3),
        "a list": [1, 2, 3],
        "a dict without the class": {"weights": torch.zeros(2)},
        "another format": {"format": 99, "class": "DTransformer", "config": {}, "state_dict": {}},
        "an unknown class": {"format": 1, "class": "GPT5", "config": {}, "state_dict": {}},
        "a bad config": {"format": 1, "class": "DTransformer", "config": {"vocab_size": 0, "max_len": 4},
                         "state_dict": {}},
        "an unknown config field": {"format": 1, "class": "DTransformer",
                                    "config": {"vocab_size": 3, "max_len": 4, "colour": "red"}, "state_dict": {}},
    }.items():
        path = tmp_path / "other.pt"
        torch.save(payload, path)
        with pytest.raises(ValueError, match="other.pt"):
            mt.load_model(path)


def test_load_rejects_weights_of_another_shape(tmp_path):
    path = valid_file(tmp_path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["d_mlp"] = 48  # the weights were saved for d_mlp = 40
    torch.save(payload, path)
    with pytest.raises(ValueError, match="weights do not fit"):
        mt.load_model(path)


def test_load_names_a_missing_file_and_rejects_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        mt.load_model(tmp_path / "nothing.pt")
    with pytest.raises(FileNotFoundError, match="not a file"):
        mt.load_model(tmp_path)
    with pytest.raises(TypeError, match="path"):
        mt.load_model(42)


def test_save_rejects_other_modules(tmp_path):
    with pytest.raises(TypeError, match="model must be one of"):
        mt.save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")
