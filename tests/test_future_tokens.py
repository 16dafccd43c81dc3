"""Chapter 6's readouts of trained language models: softmax probes, the future-token readout and the
repetition test, each on data whose answer is known."""

import json

import pytest
import torch

from mini_transformer.analysis.copying import repetition_gain
from mini_transformer.analysis.future_tokens import READOUTS, future_token_readout
from mini_transformer.analysis.probes import softmax_probe
from mini_transformer.experiments import annealed_readouts, myopia_annealed
from mini_transformer.experiments.myopia_gap import ModelSize, build

torch.manual_seed(0)


def test_softmax_probe_reads_a_separable_label_and_not_a_random_one():
    features = torch.randn(600, 5)
    label = (features[:, 0] > 0).long() + 2 * (features[:, 1] > 0).long()  # four classes, linearly separable
    nll, correct = softmax_probe(features[:400], label[:400], features[400:], label[400:], n_classes=4)
    assert correct.mean() > 0.95 and nll.mean() < 0.2
    noise = torch.randint(0, 4, (600,))
    nll, correct = softmax_probe(features[:400], noise[:400], features[400:], noise[400:], n_classes=4)
    assert nll.mean() > 0.9 * torch.log(torch.tensor(4.0))  # near chance: log 4 nats
    with pytest.raises(ValueError, match="train_labels"):
        softmax_probe(features[:400], label[:400] + 4, features[400:], label[400:], n_classes=4)


def test_the_next_character_alone_predicts_a_cycle_two_steps_ahead():
    V, model = 7, build(ModelSize("T", 16, 1, 2), 7, 16, "vanilla")
    start = torch.randint(0, V, (24, 1))
    windows = (start + torch.arange(16)) % V  # x_{t+1} = x_t + 1: x_{t+2} is a function of x_{t+1}
    readout = future_token_readout(model, windows)
    assert set(readout) == set(READOUTS)
    assert all(scores["loss"].shape == (12,) for scores in readout.values())  # one value per held-out window
    assert readout["next_only_t2"]["accuracy"].min() == 1 and readout["joined_t2"]["accuracy"].min() == 1
    with pytest.raises(ValueError, match="windows"):
        future_token_readout(model, windows[:, :3])


def test_repetition_is_worth_exactly_nothing_to_a_model_blind_to_the_past():
    V = 11
    segments, others = torch.randint(0, V, (8, 6)), torch.randint(0, V, (8, 6))
    others[:, 0] = (segments[:, 0] + 1) % V  # every control differs from its segment
    blind = build(ModelSize("T", 16, 2, 2), V, 12, "bigram")  # reads nothing from earlier positions
    assert repetition_gain(blind, segments, others)["gain"].abs().max() < 1e-5
    seeing = build(ModelSize("T", 16, 2, 2), V, 12, "vanilla")
    assert repetition_gain(seeing, segments, others)["gain"].abs().max() > 1e-4
    with pytest.raises(ValueError, match="others must differ"):
        repetition_gain(seeing, segments, segments)


def test_the_readout_script_reads_every_saved_model_once(tmp_path):
    source = tmp_path / "annealed.json"
    myopia_annealed.main(["--scale", "tiny", "--out", str(source), "--threads", "1", "--seeds", "0", "--sizes", "XS"])
    config = annealed_readouts.ReadoutConfig(probe_windows=8, probe_length=16, segments=8, segment_length=8, n_plays=2)
    out = tmp_path / "readouts.json"
    result = annealed_readouts.run(source, out, config)
    assert sorted(result["models"]) == ["XS/0/myopic", "XS/0/vanilla"]
    entry = result["models"]["XS/0/vanilla"]
    assert set(entry) == set(READOUTS) | {"repetition"} and len(entry["repetition"]["gain"]) == 8
    assert annealed_readouts.run(source, out, config) == json.loads(out.read_text())  # nothing left: read back
    with pytest.raises(ValueError, match="source"):
        annealed_readouts.run(tmp_path / "absent.json", out, config)
