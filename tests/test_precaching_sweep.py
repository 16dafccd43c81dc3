"""Chapter 5's p-sweep script (tiny configuration), the shared resume helper, and the committed file."""

import json

import pytest
import torch

from mini_transformer.experiments import RESULTS, resume
from mini_transformer.experiments import precaching_sweep as ps


def test_sweep_writes_every_run_and_resumes_without_retraining(tmp_path, monkeypatch):
    out = tmp_path / "sweep.json"
    config = ps.SCALES["tiny"]
    ps.main(["--scale", "tiny", "--out", str(out), "--threads", "1"])
    result = json.loads(out.read_text())
    expected = {ps.key(m, p, s, seed) for m in ps.MODES for p in config.ps for s in config.budgets for seed in config.seeds}
    assert set(result["loss"]) == set(result["seconds"]) == expected
    for name, ratios in result["loss"].items():
        assert ratios["past"] > 0
        assert (ratios["copy"] is None) == (name.split("/")[1] == "1")  # p = 1: no copy position
    calls = []
    monkeypatch.setattr(ps, "train_arm", lambda *a, **k: calls.append(a))
    assert ps.run(config, out, progress=False)["loss"] == result["loss"] and calls == []


def test_vanilla_and_myopic_share_initialisation_and_batches_and_differ_after_training():
    config = ps.SCALES["tiny"]
    a, _, _ = ps.train_arm("vanilla", 1.0, 10, config, seed=0, progress=False)
    b, _, _ = ps.train_arm("vanilla", 1.0, 10, config, seed=0, progress=False)
    c, _, _ = ps.train_arm("myopic", 1.0, 10, config, seed=0, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))  # seeded
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))
    with pytest.raises(ValueError, match="mode"):
        ps.train_arm("bigram", 1.0, 10, config, seed=0)


def test_table_orders_seeds_and_checks_the_kind(tmp_path):
    config = ps.SCALES["tiny"]
    result = ps.run(config, progress=False)
    past = ps.table(result)
    assert set(past) == {(m, p, s) for m in ps.MODES for p in config.ps for s in config.budgets}
    assert all(len(v) == len(config.seeds) for v in past.values())
    assert ps.table(result, "copy")["vanilla", 1.0, config.budgets[0]] == [None] * len(config.seeds)
    with pytest.raises(ValueError, match="kind"):
        ps.table(result, "future")


def test_resume_refuses_a_file_of_another_configuration(tmp_path):
    out = tmp_path / "r.json"
    assert resume(out, {"a": 1}, ("loss",)) == {"loss": {}}
    out.write_text(json.dumps({"config": {"a": 1}, "loss": {"x": 1}}))
    assert resume(out, {"a": 1}, ("loss", "seconds")) == {"loss": {"x": 1}, "seconds": {}}
    with pytest.raises(ValueError, match="r.json holds another configuration"):
        resume(out, {"a": 2}, ("loss",))


def test_the_committed_file_is_complete_for_the_small_configuration():
    path = RESULTS / "precaching_sweep_small.json"
    result = json.loads(path.read_text())
    config = ps.SCALES["small"]
    assert result["config"] == json.loads(json.dumps(ps.asdict(config)))
    assert len(result["loss"]) == len(ps.MODES) * len(config.ps) * len(config.budgets) * len(config.seeds)
