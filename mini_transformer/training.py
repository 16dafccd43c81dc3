"""Algorithms 11–13 of Phuong & Hutter (2022): training the three architectures.

The paper's loops take one sequence at a time and step with plain SGD, θ ← θ − η·∇loss(θ).
Here a step takes a *batch*, the loss is the mean log loss per predicted token (nats/token;
the paper's sum over tokens only rescales η), and the optimiser is ``"sgd"`` (the paper's rule)
or ``"adamw"`` (what practice uses). One :func:`train` loop serves all three algorithms; each
algorithm is its loss function.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .models import device_of
from .validation import check_choice, check_int, check_positive_int, check_real

# tqdm's monitor thread refreshes a stalled bar from a second thread; in a notebook that sends widget
# messages to the kernel's sockets from outside the main thread. The bars refresh on their own anyway.
tqdm.monitor_interval = 0

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "cosine")


def token_losses(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(batch, ℓ−1)``: ℓ_t = −log P[x[t+1], t], Algorithm 13's line 5 one term per position."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")


def next_token_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean of −log P[x[t+1], t] over t = 1…ℓ−1: the log loss of Algorithm 13, line 5 (per token)."""
    return token_losses(logits, x).mean()


@torch.no_grad()
def window_losses(model, windows: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """``(n, ℓ−1)``: the next-token loss of every window ``windows (n, ℓ)`` at every position,
    evaluated ``chunk`` windows at a time on the model's device (results on the CPU)."""
    device = device_of(model)
    return torch.cat([token_losses(model(w.to(device)), w.to(device)).cpu() for w in windows.split(chunk)])


def d_training_loss(model, x: torch.Tensor) -> torch.Tensor:
    """Algorithm 13 (DTraining), lines 3–5: loss(θ) = −Σ_{t=1}^{ℓ−1} log P(θ)[x[t+1], t], per token."""
    return next_token_loss(model(x), x)


def ed_training_loss(model, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Algorithm 11 (EDTraining), lines 3–5: the decoder's next-token log loss given the context z."""
    return next_token_loss(model(z, x), x)


def mask_tokens(x: torch.Tensor, mask_token: int, p_mask: float, generator: torch.Generator | None = None):
    """Algorithm 12, lines 4–5: replace each token by ``mask_token`` with probability p_mask.

    Returns ``(x̃, masked)`` where ``masked`` is the boolean set T̃ of masked positions.
    """
    if not 0 < p_mask < 1:
        raise ValueError(f"p_mask must lie in (0, 1), got {p_mask}")
    masked = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) < p_mask
    return x.masked_fill(masked, mask_token), masked


def e_training_loss(model, x: torch.Tensor, mask_token: int, p_mask: float = 0.15,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 12 (ETraining), lines 3–7: loss(θ) = −Σ_{t ∈ T̃} log P(θ)[x[t], t], per masked token."""
    x_masked, masked = mask_tokens(x, mask_token, p_mask, generator)
    logits = model(x_masked)  # line 6: P(θ) ← ETransformer(x̃ | θ)
    if not masked.any():
        return logits.sum() * 0.0  # no token was masked: nothing to predict
    return F.cross_entropy(logits[masked], x[masked])  # line 7


def make_optimizer(model: torch.nn.Module, name: str = "adamw", lr: float = 1e-3,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``"sgd"``: θ ← θ − η ∇loss(θ) (the paper's line); ``"adamw"``: AdamW (Loshchilov & Hutter).
    η = ``lr`` must be > 0 and ``weight_decay`` ≥ 0."""
    check_choice(name, "optimizer", OPTIMIZERS)
    lr = check_real(lr, "lr (the learning rate η)", 0, low_open=True)
    weight_decay = check_real(weight_decay, "weight_decay", 0)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


@dataclass
class TrainingHistory:
    """The loss at every step of a :func:`train` run."""

    losses: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, float]] = field(default_factory=list)  # (steps done, eval_fn value)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def train(
    model: torch.nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    batches: Iterable,
    steps: int,
    *,
    optimizer: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup: int = 0,
    grad_clip: float | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    description: str = "training",
    eval_fn: Callable[[torch.nn.Module], float] | None = None,
    eval_every: int = 100,
    stop_when: Callable[[TrainingHistory], bool] | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> TrainingHistory:
    """Run ``steps`` gradient steps of ``loss_fn(model, *batch)`` on batches drawn from ``batches``.

    ``batches`` yields a tensor or a tuple of tensors per step; they are moved to ``device``
    (default: the model's device). ``schedule="cosine"`` decays η to 0 after ``warmup`` linear
    warm-up steps. ``seed``, if given, seeds torch's global generator before the first step (the
    default, None, leaves it alone: no hidden reseeding). A ``tqdm.auto`` bar shows the loss.
    ``batches`` running out before ``steps`` raises ``ValueError``. If ``eval_fn`` is given, it is called
    (in eval mode, without gradients) before the first step, every ``eval_every`` steps and after the
    last, and its values are kept in ``history.evaluations``. ``stop_when(history)``, if given, is
    asked after every evaluation; training ends early when it returns True (``len(history.losses)``
    then tells how many steps ran).

    A run can stop and go on later. ``on_checkpoint(state)`` is called every ``checkpoint_every``
    steps with a ``torch.save``-able dict of what the rest of the run needs: the steps done, the
    model's, optimiser's and scheduler's states, the history and torch's global RNG state. A later
    call with the same arguments and ``resume=state`` loads them into ``model``, skips the first
    ``state["step"]`` batches of ``batches`` (pass the same iterable afresh) and goes on: the result
    equals the uninterrupted run's bit for bit on the same machine and thread count.

    ``lr`` must be > 0, ``warmup`` ≥ 0, ``grad_clip`` (the largest gradient norm) None or > 0, and
    every batch non-empty: each raises an error naming it otherwise.
    """
    steps = check_positive_int(steps, "steps")
    eval_every = check_positive_int(eval_every, "eval_every")
    check_choice(schedule, "schedule", SCHEDULES)
    lr = check_real(lr, "lr (the learning rate η)", 0, low_open=True)
    warmup = check_int(warmup, "warmup", minimum=0)
    if grad_clip is not None:  # a negative norm would flip the gradient, zero would stop training
        grad_clip = check_real(grad_clip, "grad_clip (the largest gradient norm)", 0, low_open=True)
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if (checkpoint_every is None) != (on_checkpoint is None):
        raise ValueError("checkpoint_every and on_checkpoint go together: give both or neither")
    settings = dict(steps=steps, optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule,
                    warmup=warmup, grad_clip=grad_clip, eval_every=eval_every)
    if seed is not None:
        torch.manual_seed(seed)
    device = torch.device(device) if device is not None else device_of(model)
    model.to(device).train()
    opt = make_optimizer(model, optimizer, lr, weight_decay)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    history = TrainingHistory()
    first = 0
    if resume is not None:
        first = _load_checkpoint(resume, settings, model, opt, scheduler, history)

    def evaluate(step: int) -> None:
        if eval_fn is None:
            return
        model.eval()
        with torch.no_grad():
            history.evaluations.append((step, float(eval_fn(model))))
        model.train()

    batch_iter = iter(batches)
    for _ in itertools.islice(batch_iter, first):  # a resumed run: the batches the first steps drew
        pass
    bar = tqdm(range(first, steps), desc=description, disable=not progress, mininterval=1.0, initial=first,
               total=steps)
    if first == 0:
        evaluate(0)
    for step in bar:  # Alg. 11–13, lines 1–2: for each epoch, for each (batch of) sequence(s)
        try:
            batch = next(batch_iter)
        except StopIteration:
            raise ValueError(f"batches ran out after {step} batches, before steps={steps}: pass an "
                             "iterable that yields at least `steps` batches (or an endless generator)") from None
        batch = batch if isinstance(batch, tuple) else (batch,)
        if any(isinstance(b, torch.Tensor) and b.dim() > 0 and len(b) == 0 for b in batch):  # a NaN mean loss
            shapes = [tuple(b.shape) for b in batch if isinstance(b, torch.Tensor)]
            raise ValueError(f"batch {step} from batches is empty (shapes {shapes}): the batch size must be >= 1")
        batch = tuple(b.to(device) if isinstance(b, torch.Tensor) else b for b in batch)
        loss = loss_fn(model, *batch)  # lines 3–5: P(θ) ← Transformer(x | θ); loss(θ)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()  # line 6: θ ← θ − η · ∇loss(θ) (or the AdamW update)
        scheduler.step()
        history.losses.append(loss.item())
        bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            evaluate(step + 1)
            if stop_when is not None and stop_when(history):
                break
        if checkpoint_every is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            on_checkpoint(dict(step=step + 1, settings=settings, model=model.state_dict(),
                               optimizer=opt.state_dict(), scheduler=scheduler.state_dict(),
                               history=asdict(history), rng=torch.get_rng_state()))
    model.eval()
    return history


def _load_checkpoint(state: dict, settings: dict, model, opt, scheduler, history: TrainingHistory) -> int:
    """Load a :func:`train` checkpoint ``state`` (``resume=``) into the run's objects; returns its step."""
    keys = {"step", "settings", "model", "optimizer", "scheduler", "history", "rng"}
    if not isinstance(state, dict) or not keys <= set(state):
        raise ValueError(f"resume must be a dict that on_checkpoint received (keys {sorted(keys)}), "
                         f"got {type(state).__name__}" + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
    if state["settings"] != settings:
        changed = sorted(k for k in settings if state["settings"].get(k) != settings[k])
        raise ValueError(f"resume comes from a run with other settings ({', '.join(changed)}): "
                         f"{ {k: state['settings'].get(k) for k in changed} } here { {k: settings[k] for k in changed} }")
    if not 0 < state["step"] < settings["steps"]:
        raise ValueError(f"resume['step'] must lie in (0, steps={settings['steps']}), got {state['step']}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(f"resume['model'] does not fit this model: {error}") from None
    opt.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    history.losses[:] = state["history"]["losses"]
    history.evaluations[:] = [tuple(e) for e in state["history"]["evaluations"]]
    torch.set_rng_state(state["rng"])
    return state["step"]


def d_training(model, batches: Iterable, steps: int, **kwargs) -> TrainingHistory:
    """Algorithm 13: θ̂ ← DTraining(x_{1:N}, θ). ``batches`` yields token ids ``(batch, ℓ)``."""
    return train(model, d_training_loss, batches, steps, **kwargs)


def ed_training(model, batches: Iterable, steps: int, **kwargs) -> TrainingHistory:
    """Algorithm 11: θ̂ ← EDTraining(z_{1:N}, x_{1:N}, θ). ``batches`` yields pairs ``(z, x)``."""
    return train(model, ed_training_loss, batches, steps, **kwargs)


def e_training(model, batches: Iterable, steps: int, *, mask_token: int, p_mask: float = 0.15,
               generator: torch.Generator | None = None, **kwargs) -> TrainingHistory:
    """Algorithm 12: θ̂ ← ETraining(x_{1:N}, θ) with masked-token prediction at rate p_mask."""
    if not 0 <= mask_token < model.config.vocab_size:
        raise ValueError(f"mask_token must be in [0, vocab_size={model.config.vocab_size}), got {mask_token}")

    def loss_fn(m, x):
        return e_training_loss(m, x, mask_token, p_mask, generator)

    return train(model, loss_fn, batches, steps, **kwargs)
