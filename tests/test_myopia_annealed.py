"""The annealed myopia-gap script (issue 29's protocol): both arms on one budget, cosine decay, weight decay."""

import json
from dataclasses import asdict

import pytest
import torch

from mini_transformer.experiments import RESULTS, myopia_annealed
from mini_transformer.serialization import load_model


def test_tiny_run_trains_both_arms_from_one_initialisation_and_saves_them(tmp_path):
    out = tmp_path / "annealed.json"
    myopia_annealed.main(["--scale", "tiny", "--out", str(out), "--threads", "1", "--seeds", "0", "--sizes", "XS"])
    result = json.loads(out.read_text())
    config = myopia_annealed.SCALES["tiny"]
    entry = result["sizes"]["XS"]["seeds"]["0"]
    for arm in myopia_annealed.ARMS:
        assert entry[arm]["steps"] == config.steps and entry[arm]["curve"][-1][0] == config.steps
        assert len(entry[arm]["window_loss"]) == config.n_val
    assert entry["vanilla"]["curve"][0] == entry["myopic"]["curve"][0]  # the same initialisation
    models = {arm: load_model(myopia_annealed.weights_dir(out) / f"XS-seed0-{arm}.pt") for arm in myopia_annealed.ARMS}
    assert any((a != b).any() for a, b in zip(models["vanilla"].parameters(), models["myopic"].parameters()))
    again = myopia_annealed.main(["--scale", "tiny", "--out", str(out), "--threads", "1", "--seeds", "0", "--sizes", "XS"])
    assert json.loads(again.read_text())["sizes"] == result["sizes"]  # nothing left to train: read back


def test_the_committed_file_is_the_small_scale_and_each_run_is_whole():
    path = RESULTS / "myopia_annealed_small.json"
    if not path.exists():
        pytest.skip("no committed annealed runs yet")
    config = myopia_annealed.SCALES["small"]
    result = myopia_annealed.load(path)
    assert result["config"] == json.loads(json.dumps(asdict(config)))
    sizes = {size.name: size for size in config.sizes}
    for name, block in result["sizes"].items():
        assert (block["d_model"], block["n_layers"], block["n_heads"]) == (
            sizes[name].d_model, sizes[name].n_layers, sizes[name].n_heads)
        for seed, entry in block["seeds"].items():
            for arm in myopia_annealed.ARMS:
                assert entry[arm]["steps"] == config.steps, (name, seed, arm)
                assert (myopia_annealed.weights_dir(path) / f"{name}-seed{seed}-{arm}.pt").exists(), (name, seed, arm)
