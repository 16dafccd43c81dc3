"""Algorithms 11–15: training lowers the loss; sampling obeys the temperature."""

import pytest
import torch

import mini_transformer as mt
from conftest import small_config


def repeating_batches(vocab_size: int, length: int = 12, batch: int = 8, seed: int = 0):
    """Sequences counting up modulo vocab_size from a random start: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    while True:
        start = torch.randint(0, vocab_size, (batch, 1), generator=g)
        yield (start + torch.arange(length)) % vocab_size


@pytest.mark.parametrize("optimizer, lr", [("adamw", 1e-2), ("sgd", 0.5)])
def test_d_training_lowers_the_loss(optimizer, lr):
    cfg = small_config()
    model = mt.DTransformer(cfg)
    data = repeating_batches(cfg.vocab_size)
    probe = next(repeating_batches(cfg.vocab_size, seed=99))
    before = mt.d_training_loss(model, probe).item()
    history = mt.d_training(model, data, steps=60, optimizer=optimizer, lr=lr, progress=False)
    after = mt.d_training_loss(model, probe).item()
    assert len(history.losses) == 60
    assert after < 0.5 * before, (before, after)


def test_training_is_reproducible_with_a_seed():
    cfg = small_config()
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = mt.DTransformer(cfg)
        runs.append(mt.d_training(model, repeating_batches(cfg.vocab_size), steps=5, seed=7, progress=False).losses)
    assert runs[0] == runs[1]


def test_cosine_schedule_with_warmup_runs_and_lowers_the_loss():
    cfg = small_config()
    model = mt.DTransformer(cfg)
    history = mt.d_training(model, repeating_batches(cfg.vocab_size), steps=40, lr=1e-2, schedule="cosine",
                            warmup=5, grad_clip=1.0, progress=False)
    assert history.final_loss < history.losses[0]


def test_e_training_lowers_the_masked_token_loss():
    cfg = small_config(vocab_size=12)
    mask_token = 11
    model = mt.ETransformer(cfg)

    def constant_batches():  # every sequence repeats one token: a masked token is any unmasked one
        g = torch.Generator().manual_seed(0)
        while True:
            yield torch.randint(0, 11, (16, 1), generator=g).expand(16, 12).contiguous()

    data = constant_batches()
    g = torch.Generator().manual_seed(0)
    history = mt.e_training(model, data, steps=80, mask_token=mask_token, p_mask=0.3, lr=1e-2,
                            generator=g, progress=False)
    assert sum(history.losses[-10:]) / 10 < 0.5 * sum(history.losses[:10]) / 10


def test_mask_tokens_masks_at_the_requested_rate():
    x = torch.zeros(200, 50, dtype=torch.long)
    x_masked, masked = mt.mask_tokens(x, mask_token=9, p_mask=0.15, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x_masked == 9, masked)
    assert abs(masked.float().mean().item() - 0.15) < 0.01


def test_ed_training_learns_to_copy_the_context():
    cfg = small_config(vocab_size=10)
    bos = 9
    model = mt.EDTransformer(cfg)

    def copy_batches():
        g = torch.Generator().manual_seed(0)
        while True:
            z = torch.randint(0, 9, (16, 6), generator=g)
            yield z, torch.cat([torch.full((16, 1), bos), z], dim=1)

    history = mt.ed_training(model, copy_batches(), steps=150, lr=5e-3, progress=False)
    assert sum(history.losses[-10:]) / 10 < 0.3 * sum(history.losses[:10]) / 10


def test_greedy_sampling_is_the_argmax():
    cfg = small_config()
    model = mt.DTransformer(cfg)
    prompt = torch.randint(0, cfg.vocab_size, (2, 3))
    generated = mt.d_inference(model, prompt, n_generate=6, tau=0)
    x = prompt
    for i in range(6):  # Alg. 14 by hand, with the argmax at each step
        x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(generated, x[:, 3:])


def test_sample_token_tau_zero_is_argmax_and_small_tau_approaches_it():
    logits = torch.randn(500, 7)
    assert torch.equal(mt.sample_token(logits, 0), logits.argmax(-1))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mt.sample_token(logits * 100, 0.01, g), logits.argmax(-1))


def test_sampling_at_tau_one_matches_the_model_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20000, 3)
    draws = mt.sample_token(logits, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    torch.testing.assert_close(freq, logits[0].double().softmax(-1), atol=0.015, rtol=0)


def test_sampling_is_reproducible_and_slides_past_max_len():
    cfg = small_config(max_len=8)
    model = mt.DTransformer(cfg)
    prompt = torch.randint(0, cfg.vocab_size, (5,))
    a = mt.d_inference(model, prompt, 20, tau=1.0, generator=torch.Generator().manual_seed(3))
    b = mt.d_inference(model, prompt, 20, tau=1.0, generator=torch.Generator().manual_seed(3))
    assert a.shape == (20,) and torch.equal(a, b)


def test_ed_inference_starts_with_bos_and_stops_at_eos():
    cfg = small_config(vocab_size=6)
    model = mt.EDTransformer(cfg)
    with torch.no_grad():  # make eos (5) the certain next token
        model.unembedding.W_u.zero_()
        model.decoder[-1].ln_mlp.beta.fill_(1.0)
        model.unembedding.W_u[5] = 10.0
    out = mt.ed_inference(model, torch.tensor([1, 2, 3]), bos_token=4, eos_token=5, tau=0)
    assert out.tolist() == [4, 5]
    long = mt.ed_inference(mt.EDTransformer(cfg), torch.tensor([[1, 2], [3, 1]]), bos_token=4, eos_token=5,
                           tau=1.0, max_length=6, generator=torch.Generator().manual_seed(0))
    assert long.shape[0] == 2 and long.shape[1] <= 6 and torch.all(long[:, 0] == 4)


def test_continuation_log_probs_scores_each_token_with_its_generation_context():
    cfg = small_config(max_len=6)
    model = mt.DTransformer(cfg)
    x = torch.randint(0, cfg.vocab_size, (15,))
    scores = mt.continuation_log_probs(model, x, start=2, chunk=4)
    assert scores.shape == (13,)
    for i in range(2, 15):  # by hand: the model sees at most the last max_len tokens before x[i]
        context = x[max(0, i - cfg.max_len):i]
        expected = model(context[None])[0, -1].log_softmax(-1)[x[i]]
        torch.testing.assert_close(scores[i - 2], expected)
    with pytest.raises(ValueError, match="start"):
        mt.continuation_log_probs(model, x, start=0)


def test_train_stops_when_asked_after_an_evaluation():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    batches = iter(lambda: (torch.randn(8, 2),), None)
    history = mt.train(model, lambda m, x: m(x).pow(2).mean(), batches, steps=100, progress=False, eval_every=10,
                    eval_fn=lambda m: 0.0, stop_when=lambda h: h.evaluations[-1][0] >= 30)
    assert len(history.losses) == 30 and [s for s, _ in history.evaluations] == [0, 10, 20, 30]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_run_stopped_at_a_checkpoint_and_resumed_equals_the_straight_run_bit_for_bit(tmp_path, schedule):
    cfg = small_config()
    kwargs = dict(lr=1e-2, schedule=schedule, warmup=3, grad_clip=1.0, eval_every=4, progress=False,
                  eval_fn=lambda m: mt.d_training_loss(m, next(repeating_batches(cfg.vocab_size, seed=9))).item())
    torch.manual_seed(0)
    init = mt.DTransformer(cfg)
    straight = mt.DTransformer(cfg)
    straight.load_state_dict(init.state_dict())
    torch.manual_seed(5)
    expected = mt.d_training(straight, repeating_batches(cfg.vocab_size), 20, **kwargs)

    class Stop(Exception):
        pass

    def save_and_stop(state):  # the process dies right after its second checkpoint (step 10)
        torch.save(state, tmp_path / "run.pt")
        if state["step"] == 10:
            raise Stop

    first = mt.DTransformer(cfg)
    first.load_state_dict(init.state_dict())
    torch.manual_seed(5)
    with pytest.raises(Stop):
        mt.d_training(first, repeating_batches(cfg.vocab_size), 20, checkpoint_every=5, on_checkpoint=save_and_stop,
                      **kwargs)
    torch.manual_seed(1234)  # a new process: another global RNG state, a fresh model
    second = mt.DTransformer(cfg)
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    resumed = mt.d_training(second, repeating_batches(cfg.vocab_size), 20, resume=state, **kwargs)
    assert resumed.losses == expected.losses
    assert resumed.evaluations == expected.evaluations
    for name, value in straight.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name


def test_resume_refuses_a_checkpoint_of_other_settings_or_another_shape():
    cfg = small_config()
    states = []
    model = mt.DTransformer(cfg)
    mt.d_training(model, repeating_batches(cfg.vocab_size), 6, lr=1e-2, progress=False, checkpoint_every=3,
                  on_checkpoint=states.append)
    with pytest.raises(ValueError, match="other settings.*lr"):
        mt.d_training(mt.DTransformer(cfg), repeating_batches(cfg.vocab_size), 6, lr=1e-3, progress=False,
                      resume=states[0])
    with pytest.raises(ValueError, match="does not fit this model"):
        mt.d_training(mt.DTransformer(small_config(d_model=cfg.d_model * 2)), repeating_batches(cfg.vocab_size), 6,
                      lr=1e-2, progress=False, resume=states[0])
    with pytest.raises(ValueError, match="resume must be a dict"):
        mt.d_training(model, repeating_batches(cfg.vocab_size), 6, lr=1e-2, progress=False, resume={"step": 3})
    with pytest.raises(ValueError, match="go together"):
        mt.d_training(model, repeating_batches(cfg.vocab_size), 6, progress=False, checkpoint_every=3)
