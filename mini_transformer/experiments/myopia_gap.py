"""Vanilla and myopic character models on Shakespeare, trained until vanilla stops improving, then
fine-tuned from the converged vanilla model as Wu, Morris & Levine did for Pythia (chapter 6).

For every size and seed:

1. **From scratch.** A vanilla model trains at a constant learning rate (after a linear warm-up),
   evaluated on a fixed validation set every ``eval_every`` steps. It stops at the first doubling
   budget b (``budgets``) where it improved by less than ``tolerance`` (relative) since b/2, or at
   the last budget: *the convergence rule*. A myopic model (β = 0) trains for the same number of
   steps from the same initialisation on the same batches, evaluated at the same steps, so the gap
   can be read at every budget.
2. **Fine-tuned.** From the converged vanilla weights, two copies train ``finetune_steps`` more with
   the learning rate decaying to 0 (cosine) on the same fresh batches: one vanilla, one myopic. Their
   difference is the nearest analogue of the paper's Pythia gap (there too both arms fine-tune a
   vanilla model, though at different learning rates).

Per run the file keeps the validation curve, each validation window's mean loss (for a paired
bootstrap), the loss by position, and future-token probes with their baselines (an untrained model
of the same shape, the majority class, the current token alone and the next token alone). The context-free reference is the
counted bigram on the same validation windows (what a transformer bigram tends to as it converges).
Each (size, seed) is written as soon as it is done, under a file lock, so several processes may
share one result file (``--sizes``, ``--seeds``) and a rerun skips what is there. A run longer than
one sitting takes ``--checkpoints DIR``: every ``--checkpoint-every`` steps it saves the running
phase (model, optimiser, scheduler, history, RNG) and, once a phase is done, its record, so a killed
process started again with the same arguments goes on where it stopped; the result equals an
uninterrupted run's bit for bit (same machine and thread count).

    python -m mini_transformer.experiments.myopia_gap --scale small   # the committed file, CPU
    python -m mini_transformer.experiments.myopia_gap --scale converged --sizes S --threads 1 \
        --checkpoints ~/myopia_checkpoints                                      # to the 1 % rule, resumable
    python -m mini_transformer.experiments.myopia_gap --scale full    # a GPU run
"""

from __future__ import annotations

import copy
import fcntl
import json
import pickle
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..analysis.baselines import ngram_log_loss
from ..analysis.myopia import myopic
from ..analysis.probes import probe_accuracy
from ..config import TransformerConfig
from ..models import DTransformer, device_of, trace
from ..tasks.shakespeare import CharCorpus, fixed_windows, random_windows, shakespeare
from ..training import d_training, window_losses
from ..validation import check_choice
from . import RESULTS, load_result, read_previous, sizes_seeds_main, write_atomic

MODES = ("vanilla", "myopic", "bigram")
HORIZONS = (1, 2, 3)


@dataclass(frozen=True)
class ModelSize:
    name: str
    d_model: int
    n_layers: int
    n_heads: int


@dataclass(frozen=True)
class GapConfig:
    """Sizes, the convergence rule and the fine-tuning budget shared by every model."""

    sizes: tuple[ModelSize, ...]
    budgets: tuple[int, ...] = (500, 1000, 2000, 4000)  # doubling: the convergence rule's checkpoints
    tolerance: float = 0.01  # converged: < 1 % relative improvement since half the steps
    eval_every: int = 250
    finetune_steps: int = 1000
    batch_size: int = 64
    length: int = 64
    lr: float = 3e-3
    warmup: int = 100
    seeds: tuple[int, ...] = (0, 1, 2)
    n_val: int = 512  # validation windows
    probe_windows: int = 256  # windows for the probes (half fit, half score)
    n_plays: int | None = None
    kernels: str = "fused"  # vanilla steps through PyTorch's fused kernels; myopic attention is its own kernel


SCALES = {
    "tiny": GapConfig(sizes=(ModelSize("XS", 16, 1, 2), ModelSize("S", 24, 2, 2)), budgets=(10, 20, 40),
                      eval_every=5, finetune_steps=10, warmup=2, length=16, n_val=32, probe_windows=16, n_plays=2,
                      seeds=(0, 1)),
    "small": GapConfig(sizes=(ModelSize("XS", 32, 2, 2), ModelSize("S", 64, 2, 4))),
    # the small sizes trained on until the 1 % rule holds (budgets doubling to 32000): results/
    # myopia_gap_converged.json, filled one (size, seed) at a time (seeds 0-2 at both sizes)
    "converged": GapConfig(sizes=(ModelSize("XS", 32, 2, 2), ModelSize("S", 64, 2, 4)),
                           budgets=(500, 1000, 2000, 4000, 8000, 16000, 32000)),
    "full": GapConfig(sizes=(ModelSize("XS", 64, 2, 4), ModelSize("S", 128, 4, 4), ModelSize("M", 256, 6, 8),
                             ModelSize("L", 384, 8, 8)), budgets=(2500, 5000, 10000, 20000, 40000), eval_every=500,
                      finetune_steps=5000, length=128, lr=1e-3, n_val=2048, probe_windows=512),
}


def build(size: ModelSize, vocab_size: int, length: int, mode: str, kernels: str = "faithful") -> DTransformer:
    """An untrained model of ``size``; ``mode="bigram"`` zeroes what every position reads from the past."""
    check_choice(mode, "mode", MODES)
    return DTransformer(TransformerConfig(vocab_size=vocab_size, max_len=length, d_model=size.d_model,
                                          n_layers=size.n_layers, n_heads=size.n_heads, zero_past=mode == "bigram",
                                          kernels=kernels))


def converged(curve: list[tuple[int, float]], budgets: tuple[int, ...], tolerance: float) -> bool:
    """The convergence rule: the last evaluation is at a budget b of ``budgets`` whose half b/2 was
    also evaluated, and the loss fell by less than ``tolerance`` (relative) from b/2 to b."""
    losses = dict(curve)
    step = curve[-1][0]
    return step in budgets and step // 2 in losses and (losses[step // 2] - losses[step]) < tolerance * losses[step // 2]


def train_run(model: DTransformer, mode: str, corpus: CharCorpus, config: GapConfig, steps: int,
              data_seed: int, val: torch.Tensor, schedule: str = "constant", warmup: int | None = None,
              stop: bool = False, progress: bool = True, description: str = "", weight_decay: float = 0.0,
              **checkpointing) -> list[tuple[int, float]]:
    """Train ``model`` in ``mode`` ("vanilla" or "myopic", β = 0) for ``steps`` on batches seeded by
    ``data_seed``; returns the validation curve [(steps done, mean loss)]. ``stop`` applies the
    convergence rule; ``checkpointing`` (``checkpoint_every``, ``on_checkpoint``, ``resume``) goes
    to :func:`~mini_transformer.training.train`."""
    batches = random_windows(corpus.train, config.batch_size, config.length,
                             generator=torch.Generator().manual_seed(data_seed))
    with myopic(model, beta=0.0) if mode == "myopic" else nullcontext():
        history = d_training(model, batches, steps, optimizer="adamw", lr=config.lr, weight_decay=weight_decay,
                             schedule=schedule,
                             warmup=config.warmup if warmup is None else warmup, grad_clip=1.0, progress=progress,
                             description=description, eval_fn=lambda m: window_losses(m, val).mean().item(),
                             eval_every=config.eval_every,
                             stop_when=(lambda h: converged(h.evaluations, config.budgets, config.tolerance))
                             if stop else None, **checkpointing)
    return [(step, round(loss, 5)) for step, loss in history.evaluations]


@torch.no_grad()
def future_token_probes(model, windows: torch.Tensor, horizons=HORIZONS) -> dict[str, list[float]]:
    """Accuracy of linear probes that read the state X after each layer (X_0, X_1, …, X_L) at
    position t and predict the token at t + h, for each horizon h. Half of ``windows`` fits the
    probes, half scores them."""
    _, stream = trace(model, windows.to(device_of(model)))
    states = [stream.layer(l).cpu() for l in range(stream.n_layers + 1)]
    half, n, h_max = len(windows) // 2, windows.shape[1], max(horizons)
    result = {}
    for h in horizons:
        targets = windows[:, h:n - h_max + h]  # token at t + h for t = 0 … n − h_max − 1
        accuracies = []
        for X in states:
            features = X[:, :n - h_max]
            d = features.shape[-1]
            accuracies.append(probe_accuracy(features[:half].reshape(-1, d), targets[:half].reshape(-1),
                                             features[half:].reshape(-1, d), targets[half:].reshape(-1),
                                             n_classes=model.config.vocab_size))
        result[str(h)] = accuracies
    return result


def probe_baselines(windows: torch.Tensor, vocab_size: int, horizons=HORIZONS) -> dict[str, dict[str, float]]:
    """What a future-token probe must beat, on the same split as :func:`future_token_probes`:
    ``majority`` (always the most frequent token of the fitting half); ``current_token`` (the most
    frequent token at t + h given the true token at t, counted on the fitting half: what the current
    token alone says); ``next_token`` (the same given the true token at t + 1: an oracle, what a state
    that knew the next token exactly, and nothing else, would give)."""
    half, n, h_max = len(windows) // 2, windows.shape[1], max(horizons)

    def counted(given: torch.Tensor, targets: torch.Tensor) -> float:
        # accuracy of predicting each target by the commonest target after its `given` token (fitting half)
        fit_g, score_g = given[:half].reshape(-1), given[half:].reshape(-1)
        fit_t, score_t = targets[:half].reshape(-1), targets[half:].reshape(-1)
        table = torch.zeros(vocab_size, vocab_size, dtype=torch.long).index_put_(
            (fit_g, fit_t), torch.ones_like(fit_t), accumulate=True)
        return (table.argmax(1)[score_g] == score_t).double().mean().item()

    result = {}
    for h in horizons:
        targets = windows[:, h:n - h_max + h]  # token at t + h for t = 0 … n − h_max − 1
        fit_t, score_t = targets[:half].reshape(-1), targets[half:].reshape(-1)
        majority = torch.bincount(fit_t, minlength=vocab_size).argmax()
        result[str(h)] = {"majority": (score_t == majority).double().mean().item(),
                          "current_token": counted(windows[:, :n - h_max], targets),
                          "next_token": counted(windows[:, 1:n - h_max + 1], targets)}
    return result


def _rounded(values: torch.Tensor, digits: int = 5) -> list[float]:
    return [round(v, digits) for v in values.tolist()]


def _summary(model, val: torch.Tensor, probe_set: torch.Tensor | None, curve, seconds: float) -> dict:
    losses = window_losses(model, val)
    record = {"curve": curve, "steps": curve[-1][0], "window_loss": _rounded(losses.mean(1)),
              "by_position": _rounded(losses.mean(0)), "seconds": round(seconds, 1)}
    if probe_set is not None:
        record["probes"] = future_token_probes(model, probe_set)
    return record


class Phases:
    """The checkpoints of one (size, seed) in ``directory`` (None: no checkpoints): per phase, the
    running training state ``<phase>.pt`` every ``every`` steps, then its record ``<phase>.json``
    (and, for the from-scratch vanilla phase, its weights), each written atomically."""

    def __init__(self, directory: Path | None, config: GapConfig, every: int = 1000):
        self.directory, self.every = directory, every
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            stamp, wanted = directory / "config.json", json.dumps(asdict(config), sort_keys=True)
            if stamp.exists() and stamp.read_text() != wanted:
                raise ValueError(f"checkpoints {directory} belong to another configuration; remove them or "
                                 "choose another --checkpoints")
            write_atomic(stamp, lambda f: f.write(wanted.encode()))

    @staticmethod
    def _read(read, path: Path, *also: Path):
        """``read(path)``, or a ValueError naming a truncated or corrupted checkpoint file and what to delete
        (``path`` and the files ``also`` that belong with it) so that its phase starts over."""
        try:
            return read(path)
        except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, ValueError) as exc:  # JSONDecodeError too
            files = " and ".join(repr(str(f)) for f in (path, *also))
            raise ValueError(f"checkpoint file {str(path)!r} cannot be read: it is truncated or corrupted "
                             f"({type(exc).__name__}); delete {files} and run again (that phase then starts "
                             "over)") from None

    def done(self, phase: str, model=None) -> dict | None:
        """The record of ``phase`` if it finished (its weights loaded into ``model``), else None."""
        if self.directory is None or not (self.directory / f"{phase}.json").exists():
            return None
        record_path, weights_path = self.directory / f"{phase}.json", self.directory / f"{phase}.weights.pt"
        record = self._read(lambda f: json.loads(f.read_text()), record_path)
        if model is not None:
            model.load_state_dict(self._read(lambda f: torch.load(f, weights_only=True), weights_path, record_path))
        return record

    def train(self, phase: str, run) -> tuple[list[tuple[int, float]], float]:
        """``run(**checkpointing)`` (a :func:`train_run` call), resumed from ``phase``'s last
        checkpoint if there is one; returns its curve and seconds (summed over every sitting)."""
        start, before, kwargs = time.perf_counter(), 0.0, {}
        if self.directory is not None:
            path = self.directory / f"{phase}.pt"
            state = self._read(lambda f: torch.load(f, weights_only=True), path) if path.exists() else None
            before = state.pop("seconds") if state else 0.0
            kwargs = dict(checkpoint_every=self.every, resume=state, on_checkpoint=lambda s: write_atomic(
                path, lambda f: torch.save({**s, "seconds": before + time.perf_counter() - start}, f)))
        curve = run(**kwargs)
        return curve, before + time.perf_counter() - start

    def finish(self, phase: str, record: dict, model=None) -> dict:
        if self.directory is not None:
            if model is not None:
                write_atomic(self.directory / f"{phase}.weights.pt", lambda f: torch.save(model.state_dict(), f))
            write_atomic(self.directory / f"{phase}.json", lambda f: f.write(json.dumps(record).encode()))
            (self.directory / f"{phase}.pt").unlink(missing_ok=True)
        return record


def run_seed(size: ModelSize, seed: int, corpus: CharCorpus, config: GapConfig, val: torch.Tensor,
             probe_set: torch.Tensor, device=None, progress: bool = True, checkpoints: Path | None = None,
             checkpoint_every: int = 1000) -> dict:
    """One (size, seed): vanilla until converged, myopic for as many steps, and the two fine-tuned arms
    from the converged vanilla weights. With ``checkpoints`` (a directory), every phase saves its state
    there every ``checkpoint_every`` steps and a rerun goes on from the last save."""
    phases = Phases(checkpoints, config, checkpoint_every)
    vocab = corpus.tokenizer.vocab_size
    torch.manual_seed(seed)
    init = build(size, vocab, config.length, "vanilla", config.kernels).to(device or "cpu")
    untrained_probes = future_token_probes(init, probe_set)
    entry = {"scratch": {}, "finetuned": {}, "untrained_probes": untrained_probes}

    vanilla = copy.deepcopy(init)
    record = phases.done("scratch-vanilla", vanilla)
    if record is None:
        curve, seconds = phases.train("scratch-vanilla", lambda **k: train_run(
            vanilla, "vanilla", corpus, config, config.budgets[-1], seed, val, stop=True, progress=progress,
            description=f"{size.name} vanilla (seed {seed})", **k))
        record = phases.finish("scratch-vanilla", _summary(vanilla, val, probe_set, curve, seconds), vanilla)
    entry["scratch"]["vanilla"] = record
    entry["converged"] = converged(record["curve"], config.budgets, config.tolerance)
    steps = record["curve"][-1][0]

    runs = [("scratch", "myopic", init, steps, seed, dict(probe_set=probe_set, schedule="constant", warmup=None))]
    runs += [("finetuned", mode, vanilla, config.finetune_steps, seed + 10_000,
              dict(probe_set=None, schedule="cosine", warmup=0)) for mode in ("vanilla", "myopic")]
    for phase, mode, start_from, n_steps, data_seed, how in runs:
        name = f"{phase}-{mode}"
        record = phases.done(name)
        if record is None:
            model = copy.deepcopy(start_from)
            label = (f"{size.name} myopic (seed {seed}, {n_steps} steps)" if phase == "scratch"
                     else f"{size.name} fine-tune {mode} (seed {seed})")
            curve, seconds = phases.train(name, lambda **k: train_run(
                model, mode, corpus, config, n_steps, data_seed, val, schedule=how["schedule"], warmup=how["warmup"],
                progress=progress, description=label, **k))
            record = phases.finish(name, _summary(model, val, how["probe_set"], curve, seconds))
        entry[phase][mode] = record
    entry["parameters"] = sum(p.numel() for p in init.parameters())
    return entry


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path``'s lock file (several processes may write one result file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run(config: GapConfig, out: Path, sizes: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None,
        device=None, progress: bool = True, checkpoints: Path | None = None, checkpoint_every: int = 1000) -> dict:
    """Train every (size, seed) of ``config`` (or of the ``sizes`` and ``seeds`` named) not already in
    ``out``, writing ``out`` after each; returns the file's content. With ``checkpoints`` (a directory),
    each (size, seed) saves its progress in ``checkpoints/<size>-seed<seed>`` every ``checkpoint_every``
    steps and goes on from there when run again; the directory is removed once ``out`` holds the run."""
    corpus = shakespeare(n_plays=config.n_plays)
    val = fixed_windows(corpus.val, config.n_val, config.length, seed=1)
    probe_set = fixed_windows(corpus.val, config.probe_windows, config.length, seed=2)
    vocab = corpus.tokenizer.vocab_size
    with _locked(out):
        result = read_previous(out, asdict(config))
        result.update(config=asdict(config), vocab_size=vocab, device=str(device or "cpu"),
                      threads=torch.get_num_threads(),
                      bigram=round(ngram_log_loss(corpus.train, val, vocab, order=2), 5),
                      probe_baselines=probe_baselines(probe_set, vocab))
        result.setdefault("sizes", {})
        out.write_text(json.dumps(result, separators=(",", ":")))
    for size in config.sizes:
        if sizes is not None and size.name not in sizes:
            continue
        for seed in config.seeds:
            if seeds is not None and seed not in seeds:
                continue
            if str(seed) in result["sizes"].get(size.name, {}).get("seeds", {}):
                continue
            directory = None if checkpoints is None else Path(checkpoints) / f"{size.name}-seed{seed}"
            entry = run_seed(size, seed, corpus, config, val, probe_set, device, progress, directory, checkpoint_every)
            with _locked(out):
                result = read_previous(out, asdict(config))
                block = result["sizes"].setdefault(size.name, {"d_model": size.d_model, "n_layers": size.n_layers,
                                                               "n_heads": size.n_heads, "seeds": {}})
                block["parameters"] = entry.pop("parameters")
                block["seeds"][str(seed)] = entry
                write_atomic(out, lambda f: f.write(json.dumps(result, separators=(",", ":")).encode()))
            if directory is not None:
                shutil.rmtree(directory)
            scratch, tuned = entry["scratch"], entry["finetuned"]
            print(f"{size.name} seed {seed}: {scratch['vanilla']['steps']} steps (converged: {entry['converged']}); "
                  f"vanilla {scratch['vanilla']['curve'][-1][1]:.3f}, myopic {scratch['myopic']['curve'][-1][1]:.3f}; "
                  f"fine-tuned vanilla {tuned['vanilla']['curve'][-1][1]:.3f}, myopic {tuned['myopic']['curve'][-1][1]:.3f}",
                  flush=True)
    return result


def load(path: str | Path | None = None) -> dict:
    """Read a result file (default: the committed CPU run)."""
    return load_result("myopia_gap", path)


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b − a`` over paired samples (e.g. validation windows) and a 95 % bootstrap interval."""
    diff = torch.as_tensor(b, dtype=torch.float64) - torch.as_tensor(a, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(diff), (n_boot, len(diff)), generator=generator)
    means = diff[idx].mean(1)
    return diff.mean().item(), means.quantile(0.025).item(), means.quantile(0.975).item()


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of independent runs' ``values`` (one per seed) and its Student-t interval at ``level``
    (n − 1 degrees of freedom): the uncertainty that comes from training, not from the test windows."""
    from scipy import stats

    x = torch.as_tensor(values, dtype=torch.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"values must hold one number per seed, at least 2, got {list(x.shape)}")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * x.std().item() / len(x) ** 0.5
    return x.mean().item(), x.mean().item() - half, x.mean().item() + half


def seed_gaps(result: dict, size: str, phase: str = "scratch") -> list[dict]:
    """Per seed of ``size`` in ``phase`` ("scratch" or "finetuned"): steps, the vanilla and myopic
    validation losses, the gap (myopic − vanilla) and its paired bootstrap interval over windows."""
    check_choice(phase, "phase", ("scratch", "finetuned"))
    if size not in result["sizes"]:
        raise ValueError(f"size must be one of {sorted(result['sizes'])}, got {size!r}")
    rows = []
    for seed, entry in sorted(result["sizes"][size]["seeds"].items(), key=lambda item: int(item[0])):
        vanilla, myopic_run = entry[phase]["vanilla"], entry[phase]["myopic"]
        gap, low, high = paired_bootstrap(vanilla["window_loss"], myopic_run["window_loss"])
        rows.append(dict(seed=int(seed), steps=vanilla["steps"], converged=entry["converged"],
                         vanilla=sum(vanilla["window_loss"]) / len(vanilla["window_loss"]),
                         myopic=sum(myopic_run["window_loss"]) / len(myopic_run["window_loss"]),
                         gap=gap, window_low=low, window_high=high))
    return rows


def gap_curves(result: dict, size: str) -> tuple[list[int], dict[str, torch.Tensor]]:
    """The steps at which every seed of ``size`` evaluated both from-scratch runs, and at those steps
    ``(seeds, steps)`` tensors (seeds in increasing order) of the vanilla loss, the myopic loss and the gap."""
    seeds = result["sizes"][size]["seeds"]
    entries = [seeds[k]["scratch"] for k in sorted(seeds, key=int)]  # in seed order, as seed_gaps
    steps = sorted(set.intersection(*(set(s for s, _ in e[m]["curve"]) for e in entries for m in ("vanilla", "myopic"))))
    table = {m: torch.tensor([[dict(e[m]["curve"])[s] for s in steps] for e in entries], dtype=torch.float64)
             for m in ("vanilla", "myopic")}
    table["gap"] = table["myopic"] - table["vanilla"]
    return steps, table


def main(argv=None) -> Path:
    return sizes_seeds_main("myopia_gap", __doc__, SCALES, run, argv)


if __name__ == "__main__":
    main()
