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


def test_myopia_gap_script_writes_a_complete_file_and_resumes(tmp_path):
    out = tmp_path / "gap.json"
    config = myopia_gap.SCALES["tiny"]
    myopia_gap.main(["--scale", "tiny", "--out", str(out), "--threads", "1", "--seeds", "0"])
    first = json.loads(out.read_text())
    assert set(first["sizes"]["XS"]["seeds"]) == {"0"}
    myopia_gap.main(["--scale", "tiny", "--out", str(out), "--threads", "1"])  # adds seed 1, keeps seed 0
    result = json.loads(out.read_text())
    assert result["sizes"]["XS"]["seeds"]["0"] == first["sizes"]["XS"]["seeds"]["0"]
    assert list(result["sizes"]) == [s.name for s in config.sizes]
    for block in result["sizes"].values():
        assert set(block["seeds"]) == {str(s) for s in config.seeds}
        for entry in block["seeds"].values():
            vanilla, myopic = entry["scratch"]["vanilla"], entry["scratch"]["myopic"]
            # both arms are evaluated at the same steps, every eval_every, up to the vanilla run's stop
            assert [s for s, _ in vanilla["curve"]] == [s for s, _ in myopic["curve"]]
            assert vanilla["curve"][0][0] == 0 and vanilla["steps"] in config.budgets
            assert len(vanilla["window_loss"]) == config.n_val and len(vanilla["by_position"]) == config.length - 1
            assert set(vanilla["probes"]) == set(entry["untrained_probes"]) == {"1", "2", "3"}
            for arm in entry["finetuned"].values():
                assert arm["steps"] == config.finetune_steps and len(arm["window_loss"]) == config.n_val
    assert set(result["probe_baselines"]["2"]) == {"majority", "current_token", "next_token"}
    assert 0 < result["bigram"] < 5


def test_convergence_rule_reads_the_last_doubling():
    budgets = (10, 20, 40)
    assert myopia_gap.converged([(0, 4.0), (10, 2.0), (20, 1.995)], budgets, 0.01)  # 0.25 % since step 10
    assert not myopia_gap.converged([(0, 4.0), (10, 2.0), (20, 1.9)], budgets, 0.01)  # 5 % since step 10
    assert not myopia_gap.converged([(0, 4.0), (10, 2.0), (15, 2.0)], budgets, 0.01)  # 15 is no budget
    assert not myopia_gap.converged([(0, 4.0), (10, 2.0)], budgets, 0.01)  # no half of the first budget


def test_probe_baselines_count_the_next_token():
    # a text where the token after next is a function of the next one: the next-token baseline is exact
    windows = torch.tensor([[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]] * 4)
    base = myopia_gap.probe_baselines(windows, vocab_size=3)
    assert base["2"]["next_token"] == 1.0 and base["3"]["next_token"] == 1.0
    assert base["2"]["current_token"] == 1.0  # here the current token determines every later one too
    assert abs(base["2"]["majority"] - 1 / 3) < 0.2


def test_probe_baselines_current_token_reads_only_the_current_token():
    # x[t+1] is random, x[t+2] copies x[t]: the current token predicts t+2 exactly, the next one cannot
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(0, 4, (64, 10), generator=g)
    for t in range(2, windows.shape[1]):  # period 2 in every window, a random pair per window
        windows[:, t] = windows[:, t - 2]
    base = myopia_gap.probe_baselines(windows, vocab_size=4, horizons=(1, 2))
    assert base["2"]["current_token"] == 1.0
    assert base["2"]["next_token"] < 0.6  # x[t+1] says nothing about x[t+2] = x[t]


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


def test_the_converged_scale_differs_from_small_only_in_its_budgets():
    from dataclasses import replace

    small, converged = myopia_gap.SCALES["small"], myopia_gap.SCALES["converged"]
    assert replace(small, budgets=converged.budgets) == converged
    assert converged.budgets[:len(small.budgets)] == small.budgets  # the same checkpoints up to 4000 steps
    assert all(b == 2 * a for a, b in zip(converged.budgets, converged.budgets[1:]))  # doubling: the 1 % rule


@pytest.mark.parametrize("kill_at, phase", [(2, "scratch-vanilla"), (16, "scratch-myopic"), (28, "finetuned-vanilla")])
def test_myopia_gap_killed_mid_run_goes_on_from_its_checkpoint_to_the_same_numbers(tmp_path, monkeypatch, kill_at,
                                                                                      phase):
    common = ["--scale", "tiny", "--threads", "1", "--seeds", "0", "--sizes", "XS"]
    straight = myopia_gap.main([*common, "--out", str(tmp_path / "straight.json")])
    out, checkpoints = tmp_path / "killed.json", tmp_path / "checkpoints"
    write, saves = myopia_gap.write_atomic, []

    class Killed(Exception):
        pass

    def write_then_die(path, content):  # the process dies right after its kill_at-th training checkpoint
        write(path, content)
        if path.suffix == ".pt" and not path.name.endswith("weights.pt"):
            saves.append(path.name)
            if len(saves) == kill_at:
                raise Killed

    monkeypatch.setattr(myopia_gap, "write_atomic", write_then_die)
    killed = [*common, "--out", str(out), "--checkpoints", str(checkpoints), "--checkpoint-every", "3"]
    with pytest.raises(Killed):
        myopia_gap.main(killed)
    assert saves[-1] == f"{phase}.pt" and (checkpoints / "XS-seed0" / saves[-1]).exists()
    monkeypatch.setattr(myopia_gap, "write_atomic", write)
    myopia_gap.main(killed)
    expected, resumed = json.loads(straight.read_text()), json.loads(out.read_text())
    for entry in (expected, resumed):  # wall-clock times differ; everything else must not
        for phase in ("scratch", "finetuned"):
            for arm in entry["sizes"]["XS"]["seeds"]["0"][phase].values():
                arm.pop("seconds")
    assert resumed["sizes"] == expected["sizes"]
    assert not (checkpoints / "XS-seed0").exists()  # removed once the result file holds the run
    with pytest.raises(ValueError, match="another configuration"):
        myopia_gap.Phases(checkpoints / "old", myopia_gap.SCALES["tiny"])
        myopia_gap.Phases(checkpoints / "old", myopia_gap.SCALES["small"])


def test_the_committed_convergence_file_is_the_converged_scale_and_each_run_is_whole():
    from dataclasses import asdict

    from mini_transformer.experiments import RESULTS

    config = myopia_gap.SCALES["converged"]
    result = myopia_gap.load(RESULTS / "myopia_gap_converged.json")
    assert result["config"] == json.loads(json.dumps(asdict(config)))
    assert {name: sorted(block["seeds"], key=int) for name, block in result["sizes"].items()} == {
        size.name: [str(seed) for seed in config.seeds] for size in config.sizes}  # every size, every seed
    for name, block in result["sizes"].items():
        for seed, entry in block["seeds"].items():
            vanilla, myopic = entry["scratch"]["vanilla"], entry["scratch"]["myopic"]
            assert vanilla["steps"] in config.budgets and myopic["steps"] == vanilla["steps"], (name, seed)
            assert entry["converged"] == myopia_gap.converged(vanilla["curve"], config.budgets, config.tolerance)
            assert [s for s, _ in vanilla["curve"]] == [s for s, _ in myopic["curve"]]
            assert all(arm["steps"] == config.finetune_steps for arm in entry["finetuned"].values())
