"""The untied-parameter picture of myopic training, by brute force (slow: for tests and figures).

Each position t computes with its own copy θ_t of the parameters: its embedding, its layer norms,
its query, the key and value maps it applies to the states it reads (those states come from their
own copies θ_s), its MLP, final layer norm and unembedding. With every copy equal to θ, the model
is the ordinary DTransformer; differentiating ℓ_t with respect to each copy separates the gradient
into the terms ∂ℓ_t/∂θ_s of Wu, Morris & Levine (2024).
"""

from __future__ import annotations

import math

import torch

from ..algorithms import ACTIVATION_FUNCTIONS, layer_norm


def untied_position_losses(model, x, copies):
    """Run a DTransformer position by position, where position t computes with its own parameter
    copy ``copies[t]`` (a dict name → tensor): its embedding, layer norms, query, the key and value
    maps it applies to the states it reads (those states come from their own copies), MLP, final
    norm and unembedding. Returns the losses ℓ_0 … ℓ_{ℓ−2} of one sequence ``x (ℓ,)``."""
    cfg = model.config
    eps, H, dh, n = cfg.layer_norm_eps, cfg.n_heads, cfg.d_head, len(x)
    P = copies
    X = [P[t]["embedding.token.weight"][x[t]] + P[t]["embedding.position.weight"][t] for t in range(n)]
    for l in range(cfg.n_layers):
        pre = f"layers.{l}."
        read = [layer_norm(X[s], P[s][pre + "ln_attn.gamma"], P[s][pre + "ln_attn.beta"], eps) for s in range(n)]
        updated = []
        for t in range(n):
            p = {k[len(pre):]: v for k, v in P[t].items() if k.startswith(pre)}
            q = torch.einsum("hed,d->he", p["attn.W_q"], read[t]) + p["attn.b_q"]
            past = torch.stack(read[: t + 1])  # states 0…t, each normalised by its own copy
            k = torch.einsum("hed,sd->she", p["attn.W_k"], past) + p["attn.b_k"]  # t's key map
            v = torch.einsum("hed,sd->she", p["attn.W_v"], past) + p["attn.b_v"]  # t's value map
            a = torch.softmax((k * q).sum(-1) / math.sqrt(dh), dim=0)  # (s, h)
            y = (a[..., None] * v).sum(0).reshape(H * dh)
            updated.append(X[t] + p["attn.W_o"] @ y + p["attn.b_o"])
        X = []
        for t in range(n):
            p = {k[len(pre):]: v for k, v in P[t].items() if k.startswith(pre)}
            h = layer_norm(updated[t], p["ln_mlp.gamma"], p["ln_mlp.beta"], eps)
            activation = ACTIVATION_FUNCTIONS[model.layers[l].mlp.activation]
            hidden = activation(p["mlp.W_mlp1"] @ h + p["mlp.b_mlp1"])
            X.append(updated[t] + p["mlp.W_mlp2"] @ hidden + p["mlp.b_mlp2"])
    losses = []
    for t in range(n - 1):
        final = layer_norm(X[t], P[t]["final_ln.gamma"], P[t]["final_ln.beta"], eps)
        logits = P[t]["unembedding.W_u"] @ final
        losses.append(-logits.log_softmax(-1)[x[t + 1]])
    return losses


def brute_force_gradients(model, x):
    """Σ_t ∂ℓ_t/∂θ_t (myopic) and Σ_t Σ_s ∂ℓ_t/∂θ_s (vanilla) of the mean loss over positions,
    for one sequence ``x (ℓ,)`` of a DTransformer with token inputs; each a list in ``model.parameters()`` order."""
    names = [name for name, _ in model.named_parameters()]
    n = len(x)
    copies = [{name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()} for _ in range(n)]
    losses = untied_position_losses(model, x, copies)
    scale = 1.0 / len(losses)
    myopic_grad = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for t, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, [copies[t][name] for name in names], retain_graph=True)
        for name, g in zip(names, grads):
            myopic_grad[name] += scale * g
    total = sum(losses) * scale
    all_copies = [copies[t][name] for t in range(n) for name in names]
    grads = torch.autograd.grad(total, all_copies, allow_unused=True)  # the last position's copy is unused
    vanilla_grad = {name: sum(grads[t * len(names) + i] for t in range(n) if grads[t * len(names) + i] is not None)
                    for i, name in enumerate(names)}
    return [myopic_grad[n_] for n_ in names], [vanilla_grad[n_] for n_ in names]




def per_position_gradient_norms(model, x) -> torch.Tensor:
    """``N (ℓ−1, ℓ)``: N[t, s] = ‖∂ℓ_t/∂θ_s‖, the size of each term of the untied gradient
    (zero for s > t), for one sequence ``x (ℓ,)``."""
    names = [name for name, _ in model.named_parameters()]
    n = len(x)
    copies = [{name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()} for _ in range(n)]
    losses = untied_position_losses(model, x, copies)
    norms = torch.zeros(len(losses), n, dtype=torch.float64)
    for t, loss in enumerate(losses):
        flat = [copies[s][name] for s in range(n) for name in names]
        grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
        for s in range(n):
            block = [g for g in grads[s * len(names):(s + 1) * len(names)] if g is not None]
            norms[t, s] = torch.sqrt(sum((g.double() ** 2).sum() for g in block)) if block else 0.0
    return norms
