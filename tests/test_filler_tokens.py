"""Chapter 7's filler experiment: the multiplication format, its loss and score, and the script."""

import pytest
import torch

from mini_transformer.analysis.myopia import myopic
from mini_transformer.analysis.thoughts import state_gradients
from mini_transformer.experiments import filler_tokens as ft
from mini_transformer.tasks import multiplication as mul


def test_format_is_least_significant_digit_first_with_fillers_before_the_answer():
    a, b = torch.tensor([47]), torch.tensor([86])
    x = mul.problems(a, b, 3)
    assert x[0].tolist() == [7, 4, mul.TIMES, 6, 8, mul.EQUALS, mul.FILLER, mul.FILLER, mul.FILLER, 2, 4, 0, 4]  # 4042
    assert mul.prompt(a, b, 0).shape == (1, 6)
    with pytest.raises(ValueError, match="n_fillers"):
        mul.prompt(a, b, -1)
    lo, hi = mul.sample(1000, torch.Generator().manual_seed(0))
    assert lo.min() >= 10 and hi.max() <= 99


def test_answer_loss_reads_only_the_answer_digits():
    config = ft.SCALES["tiny"]
    model = ft.build(config, 2)
    x = mul.problems(*mul.sample(8, torch.Generator().manual_seed(1)), 2)
    y = x.clone()
    y[:, 6:8] = x[:, 6:8]  # fillers unchanged; change nothing else that is scored
    assert torch.equal(mul.answer_loss(model, x), mul.answer_loss(model, y))
    z = x.clone()
    z[:, -1] = (z[:, -1] + 1) % 10  # the last digit is a target
    assert not torch.equal(mul.answer_loss(model, x), mul.answer_loss(model, z))


def test_exact_match_of_a_model_that_knows_the_answer():
    class Oracle(torch.nn.Module):
        """Reads a₀ a₁ b₀ b₁ and emits the product's digits in turn (a stand-in for a trained model)."""
        def __init__(self):
            super().__init__()
            self.config = ft.build(ft.SCALES["tiny"], 2).config
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            a, b = x[:, 0] + 10 * x[:, 1], x[:, 3] + 10 * x[:, 4]
            product = mul.digits(a * b, mul.N_ANSWER)
            written = x.shape[1] - 8  # answer digits already in x
            logits = torch.full((x.shape[0], x.shape[1], mul.VOCAB), -1e9)
            logits[torch.arange(x.shape[0]), -1, product[:, min(written, 3)]] = 0
            return logits

    a, b = mul.sample(32, torch.Generator().manual_seed(2))
    assert mul.exact_match(Oracle(), a, b, 2) == 1.0


def test_myopic_fillers_get_no_gradient_from_the_answer():
    model = ft.build(ft.SCALES["tiny"], 3).double()
    x = mul.problems(*mul.sample(4, torch.Generator().manual_seed(3)), 3)

    def loss(logits):
        return torch.nn.functional.cross_entropy(logits[:, -5:-1].reshape(-1, mul.VOCAB), x[:, -4:].reshape(-1),
                                                 reduction="sum")

    none = torch.zeros_like(x, dtype=torch.bool)
    # positions 6, 7 hold fillers with no loss; the last filler (8) predicts c₀, so its own loss reaches it
    assert state_gradients(model, x, none, loss)[:, 6:8].sum() > 0
    with myopic(model):
        G = state_gradients(model, x, none, loss)
    assert G[:, 6:8].sum() == 0 and (G[:, 8:-1] > 0).all()


def test_tiny_script_runs_and_resumes(tmp_path):
    out = tmp_path / "fillers.json"
    result = ft.run(ft.SCALES["tiny"], out, progress=False, scale="tiny")
    assert set(result["exact_match"]) == {f"{m}/{f}/0" for m in ft.MODES for f in (0, 2)}
    assert ft.run(ft.SCALES["tiny"], out, progress=False)["exact_match"] == result["exact_match"]
    with pytest.raises(ValueError, match="mode"):
        ft.train_arm("greedy", 0, ft.SCALES["tiny"])


def test_command_line_seeds_and_merge(tmp_path):
    config = ft.SCALES["tiny"]
    assert config.seeds == (0,)
    one = ft.main(["--scale", "tiny", "--out", str(tmp_path / "a.json"), "--threads", "1", "--seeds", "0"])
    merged = ft.merge([one, one], tmp_path / "m.json")
    assert set(merged["exact_match"]) == {f"{m}/{f}/0" for m in ft.MODES for f in config.fillers}
    assert ft.load(tmp_path / "m.json")["scale"] == "tiny"
    other = tmp_path / "b.json"
    ft.run(ft.FillerConfig(fillers=(0,), steps=2, d_model=16, n_heads=2, seeds=(0,), n_test=8), other, progress=False)
    with pytest.raises(ValueError, match="different configurations"):
        ft.merge([one, other], tmp_path / "x.json")
