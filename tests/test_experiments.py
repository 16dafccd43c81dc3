"""The experiment scripts that write the chapters' result files, on their tiny configurations."""

import json

import pytest
import torch

from mini_transformer.experiments import depth_grid, myopia_gap
from mini_transformer.analysis.probes import probe_accuracy


def test_depth_grid_script_writes_a_complete_file(tmp_path):
    out = depth_grid.main(["--scale", "tiny", "--out", str(tmp_path / "grid.json"), "--threads", "1"])
    result = json.loads(out.read_text())
    config = depth_grid.SCALES["tiny"]
    assert set(result["silent"]) == {str(L) for L in config.depths}
    for runs in [*result["silent"].values(), *result["written"].values()]:
        assert len(runs) == len(config.seeds)
        assert all(len(acc) == config.length and all(0 <= a <= 1 for a in acc) for acc in runs)
    assert result["scale"] == "tiny" and result["chance"] == pytest.approx(1 / 6)


def test_myopia_gap_script_writes_a_complete_file(tmp_path):
    out = myopia_gap.main(["--scale", "tiny", "--out", str(tmp_path / "gap.json"), "--threads", "1"])
    result = json.loads(out.read_text())
    config = myopia_gap.SCALES["tiny"]
    assert list(result["sizes"]) == [s.name for s in config.sizes]
    for entry in result["sizes"].values():
        for mode in myopia_gap.MODES:
            assert len(entry[mode]) == len(config.seeds)
            record = entry[mode][0]
            assert len(record["window_loss"]) == config.n_val
            assert len(record["by_position"]) == config.length - 1
            assert ("probes" in record) == (mode != "bigram")
    assert set(result["budget"]) == {str(s) for s in config.budget_steps}
    assert all(len(v["myopic"]) == config.n_val for v in result["budget"].values())


def test_modes_share_init_and_differ_only_where_they_should():
    corpus_size = myopia_gap.ModelSize("T", 16, 1, 2)
    torch.manual_seed(0)
    a = myopia_gap.build(corpus_size, 10, 8, "vanilla")
    torch.manual_seed(0)
    b = myopia_gap.build(corpus_size, 10, 8, "bigram")
    x = torch.randint(0, 10, (2, 8))
    assert torch.equal(a(x)[:, 0], b(x)[:, 0])  # position 0 reads only itself: identical
    assert not torch.allclose(a(x)[:, 1:], b(x)[:, 1:])  # later positions lose the past in the bigram
    with pytest.raises(ValueError, match="mode"):
        myopia_gap.build(corpus_size, 10, 8, "sideways")


def test_paired_bootstrap_brackets_a_known_difference():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2000, generator=generator)
    b = a + 0.1 + 0.05 * torch.randn(2000, generator=generator)
    mean, low, high = myopia_gap.paired_bootstrap(a, b)
    assert low < 0.1 < high and abs(mean - 0.1) < 0.01 and high - low < 0.01


def test_probe_accuracy_separates_and_guesses():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=generator)
    informative = torch.nn.functional.one_hot(labels, 4).float() + 0.05 * torch.randn(400, 4, generator=generator)
    noise = torch.randn(400, 4, generator=generator)
    assert probe_accuracy(informative[:200], labels[:200], informative[200:], labels[200:], 4) == 1.0
    assert probe_accuracy(noise[:200], labels[:200], noise[200:], labels[200:], 4) < 0.45


def test_khop_grid_script_writes_a_complete_file_and_resumes(tmp_path):
    from mini_transformer.experiments import khop_grid

    out = tmp_path / "khop.json"
    khop_grid.main(["--scale", "tiny", "--out", str(out), "--threads", "1"])
    result = json.loads(out.read_text())
    config = khop_grid.SCALES["tiny"]
    assert len(result["runs"]) == len(khop_grid.runs_to_do(config))
    assert all(0 <= r["accuracy"] <= 1 for r in result["runs"])
    assert set(khop_grid.largest_k_solved(result, config.steps)) == {L for L, _ in config.pairs}
    before = out.read_text()
    khop_grid.main(["--scale", "tiny", "--out", str(out), "--threads", "1"])  # nothing left to run
    assert json.loads(out.read_text())["runs"] == json.loads(before)["runs"]
