"""Chapter 5's main pair script (tiny configuration) and the committed models."""

import json
from dataclasses import asdict

import pytest
import torch

from mini_transformer.analysis.myopia import gradient_cosines, top_parameters
from mini_transformer.experiments import precaching_pair as pair
from mini_transformer.experiments import precaching_sweep
from mini_transformer.tasks.precaching import huber_loss


def test_pair_script_writes_curves_and_weights_that_reload_as_the_trained_models(tmp_path, monkeypatch):
    out = tmp_path / "pair.json"
    config = pair.SCALES["tiny"]
    pair.main(["--scale", "tiny", "--out", str(out), "--threads", "1"])
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {f"{m}/{s}" for m in pair.MODES for s in config.seeds}
    for name, record in result["runs"].items():
        steps = [s for s, _ in record["curve"]]
        assert steps == list(range(0, config.steps + 1, config.eval_every)) and len(record["cosines"]) == len(steps)
        assert all(-1 <= a <= 1 and -1 <= b <= 1 for a, b in record["cosines"])
    model, record = pair.load_arm(out, "myopic", 1)
    retrained, again = pair.train_logged("myopic", config, 1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), retrained.parameters()))
    assert again["curve"] == [tuple(c) for c in record["curve"]]
    val = pair.validation_set(config)
    with torch.no_grad():
        assert huber_loss(model, *val).item() / pair.trivial_loss(pair.task_of(config)) == pytest.approx(
            record["curve"][-1][1], abs=1e-6)
    assert pair.load_arm(out, "vanilla", 7) is None  # a seed the file lacks: the chapter trains it
    with pytest.raises(ValueError, match="mode"):
        pair.load_arm(out, "bigram", 0)
    calls = []
    monkeypatch.setattr(pair, "train_logged", lambda *a, **k: calls.append(a))
    pair.run(config, out, progress=False)
    assert calls == []  # everything is there: nothing retrained


def test_the_gradient_angle_is_one_at_the_top_and_below_it_at_initialisation_near_one():
    config = pair.SCALES["tiny"]
    torch.manual_seed(0)
    model = precaching_sweep.build(config)
    top = top_parameters(model)
    assert top and all(n.startswith(("layers.1.", "final_ln.", "unembedding.")) for n in top)
    overall, below = gradient_cosines(model, huber_loss, *pair.angle_batch(config))
    assert 0.9 < below <= 1 + 1e-6 and overall > 0.9  # at initialisation the off-diagonal part is small


def test_the_committed_pair_matches_the_chapter_configuration_and_reloads():
    config = pair.SCALES["small"]
    path = pair.RESULTS / "precaching_pair_small.json"
    result = pair.load(path)
    assert result["config"] == json.loads(json.dumps(asdict(config)))  # the chapter's settings
    for seed in config.seeds:
        for mode in pair.MODES:
            model, record = pair.load_arm(path, mode, seed)
            assert record["curve"][-1][0] == config.steps and model.config == precaching_sweep.build(config).config
            with torch.no_grad():  # the weights are the models whose final loss the file records
                loss = huber_loss(model, *pair.validation_set(config)).item() / pair.trivial_loss(pair.task_of(config))
            assert loss == pytest.approx(record["curve"][-1][1], abs=1e-4)
