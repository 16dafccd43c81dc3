"""Continuous thoughts on the S3 word problem (chapter 7): a one-layer model that feeds its last
hidden state back as the next input (Hao et al. 2024, "Coconut", arXiv 2412.06769), trained five ways.

The format is chapter 4's written one with the written running products replaced by thoughts
(:func:`~mini_transformer.tasks.permutations.with_thoughts`): g_1 θ_1 g_2 θ_2 … g_K, and the answer
s_K = g_K ∘ … ∘ g_1 is read after g_K (logits over the six s tokens). A thought θ_t receives
layer_norm(X_top) at the position of g_t (:func:`~mini_transformer.analysis.thoughts.think`), the vector
that the written format would decode into the token s_t. Chapter 4's trained one-layer silent model
reaches only short K at this width and budget (S3 has a constant-depth shortcut, so that is not a
bound of depth alone); each thought adds one pass through the layer.

Arms (every arm trains the same total number of steps, AdamW, cosine schedule per stage):

* ``decoded``: every step is a thought and each is *supervised*: the output after g_t is trained to
  be s_t (chapter 4's pilot; the fed-back vector is detached, so this is the written format with a
  vector in place of the sampled token).
* ``curriculum``: Coconut's schedule. Stage j = 0 … K − 1 turns the first j written steps into
  thoughts; the loss is on the written steps left and the answer, never on a thought; the optimizer
  is reset at each stage. The last stage is answer-only. With backpropagation through the chain
  (``curriculum``) and without (``curriculum_detached``: the fed-back vector is ``sg(h)``).
* ``curriculum_pause``: the same curriculum with nothing fed back: the thought slots keep the
  placeholder token as a fixed input (Hao et al.'s "pause as thought" control; a filler token).
* ``decoded_pause``: ``decoded`` with nothing fed back: the same positions and the same loss at every
  step, but each slot holds the fixed placeholder (a pause, or filler, token). It has every position the
  thoughts have and none of their rounds, so against ``decoded`` it separates positions from rounds.
* ``answer_only``: the last stage from the start (no curriculum), with and without backpropagation
  through the chain (``answer_only_detached``).
* Baselines of the same size, steps and seeds: ``silent`` (g_1 … g_K, the label s_t at every
  position, as in chapter 4) and ``written`` (the written format, teacher-forced on every step; scored
  free-running: it writes each s_t itself and reads it back).

Each model is scored on the answer after K steps with every step a thought, on fresh sequences.

**Positions or rounds** (scales ``rounds_L1`` and ``rounds_L2``): silent, ``decoded_pause``, ``decoded``,
``written`` and ``curriculum`` at K = 4, 6, 8 with one and with two layers, the same steps, batches and
initialising seed per arm. The prediction from chapter 4, written down before the runs
(:func:`predicted_reach`): a silent pass runs 2L rounds, and the binary scan composes 2^L elements in L
layers, so the silent arm is predicted to reach K ≤ 2^L (a trained model may fall short, or go a little
further with more heads); a pause adds a position but no round, so ``decoded_pause`` is predicted to
reach what silent reaches (at one layer nothing a pause computes can even be read, since a later position
reads only the layer-0 inputs of earlier ones); written tokens and thoughts add a climb per step, so
``written``, ``decoded`` and ``curriculum`` are predicted to solve every K.

    python -m mini_transformer.experiments.continuous_thoughts --scale small   # the committed file, CPU
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..analysis.thoughts import think
from ..config import TransformerConfig
from ..models import DTransformer, device_of
from ..tasks import permutations as s3
from ..training import train
from ..validation import check_choice
from . import RESULTS, load_result, merge_tables, read_result_files, resume, script_arguments, write_result

TABLES = ("accuracy", "seconds")  # the result file's per-run tables, keyed "arm/K/seed"
COCONUT_ARMS = ("decoded", "curriculum", "curriculum_detached", "curriculum_pause", "answer_only",
                "answer_only_detached", "silent", "written")  # chapter 7's comparison (the default)
ARMS = COCONUT_ARMS + ("decoded_pause",)
PAUSED = ("curriculum_pause", "decoded_pause")  # the arms whose slots hold a fixed token, nothing fed back


@dataclass(frozen=True)
class ThoughtConfig:
    """Model, steps and the chain lengths K of the thought experiment."""

    lengths: tuple[int, ...] = (4, 6)  # K: elements composed; K − 1 thoughts
    arms: tuple[str, ...] = COCONUT_ARMS
    steps_per_stage: int = 250  # the curriculum has K stages; every arm trains K × this many steps
    batch_size: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 1
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 2000


SCALES = {
    "tiny": ThoughtConfig(lengths=(3,), steps_per_stage=5, d_model=16, n_heads=2, seeds=(0,), n_test=64),
    "small": ThoughtConfig(),
    "full": ThoughtConfig(lengths=(4, 6, 8, 12), steps_per_stage=2000, d_model=128, n_test=10000),
    # positions or rounds (chapters 4 and 7): every format under a loss at every step, at one and two
    # layers; at two layers a later position can read what a slot computed, at one it cannot
    "rounds_L1": ThoughtConfig(lengths=(4, 6, 8), arms=("silent", "decoded_pause", "decoded", "written", "curriculum")),
    "rounds_L2": ThoughtConfig(lengths=(4, 6, 8), arms=("silent", "decoded_pause", "decoded", "written", "curriculum"),
                               n_layers=2),
    "rounds_tiny": ThoughtConfig(lengths=(3,), arms=("silent", "decoded_pause", "decoded"), steps_per_stage=5,
                                 d_model=16, n_heads=2, n_layers=2, seeds=(0,), n_test=64),
}


def predicted_reach(arm: str, n_layers: int) -> float:
    """The largest K that chapter 4's round counting predicts ``arm`` to solve with ``n_layers`` layers:
    2^L for the arms whose rounds stay 2L (silent, pauses), unbounded for those that add a climb per
    step (written tokens, thoughts). A prediction to test, not a bound on what training finds."""
    check_choice(arm, "arm", ARMS)
    if arm in ("silent",) + PAUSED:
        return float(2 ** n_layers)
    if arm in ("written", "decoded", "curriculum"):
        return float("inf")
    raise ValueError(f"no prediction is made for arm {arm!r}: it is trained without a loss at every step")


def build(config: ThoughtConfig, length: int) -> DTransformer:
    return DTransformer(TransformerConfig(vocab_size=s3.THOUGHT_VOCAB, max_len=2 * length - 1,
                                          d_model=config.d_model, n_layers=config.n_layers, n_heads=config.n_heads))


def answer_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(batch, n, 6)``: the output after each g_t (even positions), over the six s tokens."""
    return logits[:, 0::2, s3.ORDER:2 * s3.ORDER]


def chain_loss(model, g: torch.Tensor, s: torch.Tensor, n_thoughts: int, supervise_thoughts: bool = False,
               detach: bool = False, feed: bool = True) -> torch.Tensor:
    """Cross-entropy of the output after each g_t against s_t, over the steps that are supervised:
    every written step (its next token), the answer s_n, and the thought steps only if
    ``supervise_thoughts``. The first ``n_thoughts`` steps are continuous thoughts (``feed=False``:
    pauses, the placeholder token left as a fixed input)."""
    x = s3.with_thoughts(g, s, n_thoughts)
    logits, _ = think(model, x, (x == s3.THOUGHT) & feed, detach=detach)
    first = 0 if supervise_thoughts else n_thoughts
    out = answer_logits(logits)[:, first:]
    return F.cross_entropy(out.reshape(-1, s3.ORDER), s[:, first:].reshape(-1))


@torch.no_grad()
def chain_accuracy(model, g: torch.Tensor, s: torch.Tensor, feed: bool = True) -> torch.Tensor:
    """``(n,)``: with every step a thought (``feed=False``: a pause), how often the output after g_t is
    s_t (the last entry is the answer; earlier entries decode the thoughts)."""
    model.eval()
    device = device_of(model)
    g, s = g.to(device), s.to(device)
    x = s3.with_thoughts(g, s, g.shape[1] - 1)
    logits, _ = think(model, x, (x == s3.THOUGHT) & feed)
    return (answer_logits(logits).argmax(-1) == s).float().mean(0).cpu()


def silent_loss(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The silent baseline: g_1 … g_n in, s_t out at every position t (over the six s tokens)."""
    logits = model(g)[..., s3.ORDER:2 * s3.ORDER]
    return F.cross_entropy(logits.reshape(-1, s3.ORDER), s.reshape(-1))


@torch.no_grad()
def silent_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(n,)``: how often the silent model's output at t is s_t."""
    model.eval()
    logits = model(g.to(device_of(model)))[..., s3.ORDER:2 * s3.ORDER]
    return (logits.argmax(-1).cpu() == s).float().mean(0)


@torch.no_grad()
def written_accuracy(model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(n,)``: the written baseline free-running: after each g_t the model's own s_t (greedy, over
    the six s tokens) is written as the next token; how often it is right, for t = 1 … n."""
    model.eval()
    device = device_of(model)
    g = g.to(device)
    x, right = g[:, :1], []
    for t in range(g.shape[1]):
        predicted = model(x)[:, -1, s3.ORDER:2 * s3.ORDER].argmax(-1)
        right.append((predicted.cpu() == s[:, t]).float().mean())
        if t + 1 < g.shape[1]:
            x = torch.cat([x, (predicted + s3.ORDER)[:, None], g[:, t + 1:t + 2]], dim=1)
    return torch.stack(right)


def accuracy(arm: str, model, g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(n,)``: accuracy by step of a model trained by ``arm``, scored the way that arm runs."""
    check_choice(arm, "arm", ARMS)
    if arm == "silent":
        return silent_accuracy(model, g, s)
    if arm == "written":
        return written_accuracy(model, g, s)
    return chain_accuracy(model, g, s, feed=arm not in PAUSED)


def stages(arm: str, length: int) -> list[dict]:
    """The training stages of ``arm`` for chains of ``length``: keyword arguments of :func:`chain_loss`."""
    check_choice(arm, "arm", ARMS)
    last = length - 1
    detach = arm.endswith("detached")
    if arm in ("decoded", "decoded_pause"):
        return [dict(n_thoughts=last, supervise_thoughts=True, detach=True, feed=arm == "decoded")] * length
    if arm in ("silent", "written"):
        return [dict()] * length  # the baselines' own loss (see loss_of)
    if arm.startswith("curriculum"):
        feed = arm not in PAUSED
        return [dict(n_thoughts=j, supervise_thoughts=False, detach=detach, feed=feed) for j in range(length)]
    return [dict(n_thoughts=last, supervise_thoughts=False, detach=detach)] * length


def loss_of(arm: str, kwargs: dict):
    """The loss one stage of ``arm`` trains: the silent loss, the written format teacher-forced on every
    step (no thoughts, every step supervised), or :func:`chain_loss` with the stage's arguments."""
    if arm == "silent":
        return silent_loss
    if arm == "written":
        return lambda m, g, s: chain_loss(m, g, s, 0, supervise_thoughts=True)
    return lambda m, g, s: chain_loss(m, g, s, **kwargs)


def train_arm(arm: str, length: int, config: ThoughtConfig, seed: int = 0, device=None, progress: bool = True):
    """A fresh model trained by ``arm`` on chains of ``length``; returns ``(model, seconds)``. Every arm
    runs ``length`` stages of ``steps_per_stage`` (a new optimizer and cosine schedule per stage, as
    Coconut resets it; the arms without a curriculum repeat one stage)."""
    torch.manual_seed(seed)
    model = build(config, length).to(device or "cpu")
    batches = s3.silent_batches(config.batch_size, length, seed=seed)
    start = time.perf_counter()
    for j, kwargs in enumerate(stages(arm, length)):
        train(model, loss_of(arm, kwargs), batches, config.steps_per_stage,
              lr=config.lr, schedule="cosine", warmup=min(50, config.steps_per_stage // 10), grad_clip=1.0,
              device=device, progress=progress, description=f"{arm} K={length} stage {j}")
    return model, time.perf_counter() - start


def run(config: ThoughtConfig, out=None, device=None, progress: bool = True, scale: str = "custom",
        arms: tuple[str, ...] | None = None) -> dict:
    """Train every (K, arm, seed) of ``config``; with ``out``, the file is rewritten after each run
    and a rerun with the same configuration resumes where it stopped."""
    result = {"config": asdict(config), "chance": 1 / s3.ORDER, **resume(out, asdict(config), TABLES)}
    for length in config.lengths:
        g, s = s3.sample(config.n_test, length, torch.Generator().manual_seed(10_000 + length))
        for arm in config.arms if arms is None else [a for a in config.arms if a in arms]:
            for seed in config.seeds:
                key = f"{arm}/{length}/{seed}"
                if key in result["accuracy"]:
                    continue
                model, seconds = train_arm(arm, length, config, seed, device, progress)
                result["accuracy"][key] = [round(a, 4) for a in accuracy(arm, model, g, s).tolist()]
                result["seconds"][key] = round(seconds, 1)
                print(f"{key}: answer {result['accuracy'][key][-1]:.3f} ({seconds:.0f} s)", flush=True)
                if out is not None:
                    write_result(result, "continuous_thoughts", scale, Path(out))
    return result


def merge(paths, out) -> dict:
    """Join result files whose configurations differ at most in their arms (e.g. one process per
    group of arms) into ``out``; the merged configuration lists every arm, in the order of ARMS."""
    results = read_result_files(paths, ("config", "chance", *TABLES))
    def without_arms(r):
        return {k: v for k, v in r["config"].items() if k != "arms"}
    if any(without_arms(r) != without_arms(results[0]) for r in results):
        raise ValueError(f"the files {list(map(str, paths))} differ in more than their arms")
    arms = [a for a in ARMS if any(a in r["config"]["arms"] for r in results)]
    merged = {"config": {**results[0]["config"], "arms": arms}, "chance": results[0]["chance"],
              **merge_tables(results, TABLES)}
    merged.update(scale=results[0].get("scale", "custom"), threads=results[0].get("threads"))
    Path(out).write_text(json.dumps(merged, separators=(",", ":")))
    return merged


def load(path=None) -> dict:
    return load_result("continuous_thoughts", path)


def main(argv=None):
    def extra(parser):
        parser.add_argument("--arms", nargs="+", default=None, help=f"only these arms: {' '.join(ARMS)}")

    args, device = script_arguments(__doc__, SCALES, argv, extra)
    out = args.out or RESULTS / f"continuous_thoughts_{args.scale}.json"
    arms = tuple(args.arms) if args.arms else None
    for arm in arms or ():
        check_choice(arm, "arm", ARMS)
    return write_result(run(SCALES[args.scale], out, device, scale=args.scale, arms=arms), "continuous_thoughts",
                        args.scale, out)


if __name__ == "__main__":
    main()
