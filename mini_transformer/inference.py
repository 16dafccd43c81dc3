"""Algorithms 14–15 of Phuong & Hutter (2022): sampling from a trained transformer.

Temperature τ: the next token is drawn from q ∝ p^{1/τ}, i.e. softmax(logits / τ).
τ = 0 is the limit τ → 0: greedy decoding, the argmax.
"""

from __future__ import annotations

import torch

from .models import device_of
from .validation import check_positive_int, check_temperature, check_tokens


def sample_token(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row of ``logits (batch, N_V)`` from q ∝ p^{1/τ}; τ = 0 takes the argmax."""
    tau = check_temperature(tau)
    if tau == 0:
        return logits.argmax(dim=-1)
    q = torch.softmax(logits.double() / tau, dim=-1)  # p^{1/τ}, normalised
    return torch.multinomial(q.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


@torch.no_grad()
def d_inference(model, x: torch.Tensor, n_generate: int, tau: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 14: y ← DInference(x, θ̂), the ℓ_gen = ``n_generate`` tokens that follow prompt x.

    ``x``: prompt ids ``(batch, ℓ)`` or ``(ℓ,)``; returns ``(batch, n_generate)`` (or
    ``(n_generate,)``). Once the sequence is longer than ℓ_max, only its last ℓ_max tokens are fed
    to the model (a sliding window; the paper assumes ℓ + ℓ_gen ≤ ℓ_max).
    """
    config = model.config
    one_sequence = isinstance(x, torch.Tensor) and x.dim() == 1
    x = check_tokens(x, name="x", vocab_size=config.vocab_size, max_len=config.max_len)
    n_generate = check_positive_int(n_generate, "n_generate")
    tau = check_temperature(tau)
    x = x.to(device_of(model))
    was_training = model.training
    model.eval()
    start = x.shape[1]
    for _ in range(n_generate):  # line 2: for i = 1, …, ℓ_gen
        logits = model(x[:, -config.max_len:])  # line 3: P ← DTransformer(x | θ̂)
        y = sample_token(logits[:, -1], tau, generator)  # lines 4–5: p ← P[:, ℓ+i−1]; y ~ q ∝ p^{1/τ}
        x = torch.cat([x, y[:, None]], dim=1)  # line 6: x ← [x, y]
    model.train(was_training)
    generated = x[:, start:]  # line 8: return y = x[ℓ+1 : ℓ+ℓ_gen]
    return generated[0] if one_sequence else generated


@torch.no_grad()
def ed_inference(model, z: torch.Tensor, bos_token: int, eos_token: int, tau: float = 1.0,
                 max_length: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 15: x̂ ← EDInference(z, θ̂), decode from [bos] until eos.

    ``z``: context ids ``(batch, ℓ_z)`` or ``(ℓ_z,)``. Decoding stops when every sequence has
    emitted ``eos_token`` or reached ``max_length`` tokens (default ℓ_max; the paper has no cap).
    Sequences that finished early are padded with ``eos_token``. Returns x̂ including bos.
    """
    config = model.config
    one_sequence = isinstance(z, torch.Tensor) and z.dim() == 1
    z = check_tokens(z, name="z", vocab_size=config.vocab_size, max_len=config.max_len)
    tau = check_temperature(tau)
    for name, token in (("bos_token", bos_token), ("eos_token", eos_token)):
        if not 0 <= token < config.vocab_size:
            raise ValueError(f"{name} must be in [0, vocab_size={config.vocab_size}), got {token}")
    max_length = config.max_len if max_length is None else check_positive_int(max_length, "max_length")
    if max_length > config.max_len:
        raise ValueError(f"max_length must be <= max_len ℓ_max={config.max_len}, got {max_length}")
    device = device_of(model)
    z = z.to(device)
    was_training = model.training
    model.eval()
    x = torch.full((z.shape[0], 1), bos_token, dtype=torch.long, device=device)  # line 1: x̂ ← [bos_token]
    done = torch.zeros(z.shape[0], dtype=torch.bool, device=device)
    while not done.all() and x.shape[1] < max_length:  # line 3: while y ≠ eos_token
        logits = model(z, x)  # line 4: P ← EDTransformer(z, x̂ | θ̂)
        y = sample_token(logits[:, -1], tau, generator)  # lines 5–6: p ← P[:, length(x̂)]; y ~ p^{1/τ}
        y = torch.where(done, torch.full_like(y, eos_token), y)
        x = torch.cat([x, y[:, None]], dim=1)  # line 7: x̂ ← [x̂, y]
        done = done | (y == eos_token)
    model.train(was_training)
    return x[0] if one_sequence else x


@torch.no_grad()
def continuation_log_probs(model, x: torch.Tensor, start: int, chunk: int = 256) -> torch.Tensor:
    """log P(x[i] | context) for i = start … ℓ−1 of one sequence ``x (ℓ,)``, where the context is
    what Algorithm 14 would have fed the model when it produced x[i]: the preceding tokens, at most
    the last ℓ_max of them. Returns a float tensor of length ℓ − start (natural log)."""
    config = model.config
    if not isinstance(x, torch.Tensor) or x.dim() != 1:
        raise ValueError(f"x must be one sequence of shape (ℓ,), got {getattr(x, 'shape', type(x).__name__)}")
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < len(x):
        raise ValueError(f"start must be an int in [1, {len(x) - 1}], got {start!r}")
    check_tokens(x[: config.max_len], name="x", vocab_size=config.vocab_size, max_len=config.max_len)
    check_tokens(x, name="x", vocab_size=config.vocab_size, max_len=len(x))
    was_training = model.training
    model.eval()
    window = config.max_len
    # tokens 1 … ℓ_max−1 are predicted from the first window in one pass
    head = model(x[None, :window])[0, :-1].log_softmax(-1)
    log_probs = [head.gather(-1, x[1:window, None])[:, 0]]
    # every later token i is predicted from the ℓ_max tokens before it
    if len(x) > window:
        contexts = x.unfold(0, window, 1)[: len(x) - window]  # row j: x[j : j + ℓ_max], predicts x[j + ℓ_max]
        for rows, targets in zip(contexts.split(chunk), x[window:].split(chunk)):
            last = model(rows)[:, -1].log_softmax(-1)
            log_probs.append(last.gather(-1, targets[:, None])[:, 0])
    model.train(was_training)
    return torch.cat(log_probs)[start - 1:]
