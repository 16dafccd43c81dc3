"""Set-up shared by the chapters: scale switch, device, threads, seeds, figure style."""

from __future__ import annotations

import inspect
import json
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from . import plots
from ..validation import check_int

SCALE_VARIABLE = "THINKING_AHEAD_SCALE"
SEED_VARIABLE = "THINKING_AHEAD_SEED"
THREADS_VARIABLE = "THINKING_AHEAD_THREADS"
SCALES = ("small", "full")


@dataclass(frozen=True)
class Session:
    """What a chapter runs with: ``scale`` ("small": the CPU default; "full": the GPU configuration),
    the torch ``device``, the number of CPU ``threads`` and the ``seed``."""

    scale: str
    device: torch.device
    threads: int
    seed: int

    @property
    def full(self) -> bool:
        return self.scale == "full"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _from_environment(value, variable: str, default: int, minimum: int) -> int:
    """``value`` if given, else the integer in environment variable ``variable``, else ``default``."""
    if value is not None:
        return check_int(value, variable.removeprefix("THINKING_AHEAD_").lower(), minimum=minimum)
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{variable} must be an integer >= {minimum}, got {text!r}") from None
    return check_int(number, variable, minimum=minimum)


def session_seed(seed: int | None = None) -> int:
    """The seed a chapter runs with: ``seed`` if given, else ``$THINKING_AHEAD_SEED``, else 0."""
    return _from_environment(seed, SEED_VARIABLE, default=0, minimum=0)


def setup(seed: int | None = None, scale: str | None = None, threads: int | None = None) -> Session:
    """Pick the seed (argument, else ``$THINKING_AHEAD_SEED``, else 0), the scale (argument, else
    ``$THINKING_AHEAD_SCALE``, else "small"), the device (CUDA when present), a fixed number of CPU
    threads (argument, else ``$THINKING_AHEAD_THREADS``, else up to 4; two threads fighting another
    process run slower than one), seed
    everything and apply the figure style. Chapters pass ``session.seed`` to every training run, so
    one variable reruns a whole chapter with another seed."""
    seed = session_seed(seed)
    scale = scale or os.environ.get(SCALE_VARIABLE, "small")
    if scale not in SCALES:
        raise ValueError(f"{SCALE_VARIABLE} (scale) must be one of {SCALES}, got {scale!r}")
    threads = _from_environment(threads, THREADS_VARIABLE, default=max(1, min(4, os.cpu_count() or 1)), minimum=1)
    torch.set_num_threads(threads)
    seed_everything(seed)
    plots.use_style()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return Session(scale=scale, device=device, threads=threads, seed=seed)


def show_source(*objects):
    """Display the source code of functions or classes, highlighted, one after the other (for
    reading beside the pseudocode)."""
    from IPython.display import Code

    return Code("\n".join(inspect.getsource(obj) for obj in objects), language="python")


def glue(name: str, value, display: bool = True):
    """myst-nb's ``glue`` (records a value for the book's prose) where myst-nb is installed; in
    Colab, which lacks it and builds no book, just show the value when ``display`` is true."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return None
    return myst_glue(name, value, display=display)


def seed_spread(chapter: str) -> dict[str, dict[int, float]]:
    """The numbers chapter ``chapter`` (e.g. ``"05_myopic_training"``) glued when it ran with other
    seeds, by glue name: ``{name: {seed: value}}`` (numbers only). Written by
    ``scripts/seed_spread.py`` into the package's results, so Colab has them too."""
    from ..experiments import RESULTS

    path = RESULTS / "seed_spread.json"
    runs = json.loads(path.read_text()).get(chapter) if path.exists() else None
    if runs is None:
        raise ValueError(f"chapter {chapter!r} is not in {path}; run scripts/seed_spread.py --chapters {chapter[:2]}")
    values: dict[str, dict[int, float]] = {}
    for seed, run in runs.items():
        for name, text in run["glue"].items():
            number = _as_number(text)
            if number is not None:
                values.setdefault(name, {})[int(seed)] = number
    return values


def seed_spread_table(chapter: str, live: dict[str, float], seed: int) -> dict[str, tuple[float, float]]:
    """Print each headline number of this run (``live``: glue name → value, at ``seed``) beside the
    values other seeds gave (:func:`seed_spread`), and its range over all of them; returns
    ``{name: (min, max)}`` and glues them as ``<name>_seed_lo`` and ``<name>_seed_hi``. This is how a
    chapter says how much its numbers move between seeds."""
    try:
        recorded = seed_spread(chapter)
    except ValueError:  # a new chapter: no other seed has run yet (scripts/seed_spread.py records them)
        print(f"no other seed recorded for {chapter} yet: this run's numbers only")
        recorded = {}
    ranges = {}
    for name, value in live.items():
        others = {s: v for s, v in recorded.get(name, {}).items() if s != seed}
        values = [float(value), *others.values()]
        ranges[name] = (min(values), max(values))
        columns = [f"seed {seed} (this run): {float(value):.4g}"] + [f"seed {s}: {v:.4g}" for s, v in sorted(others.items())]
        print(f"{name:<24} " + "   ".join(columns) + f"   range {max(values) - min(values):.3g}")
        glue(f"{name}_seed_lo", ranges[name][0], display=False)  # for the prose: "between … and …"
        glue(f"{name}_seed_hi", ranges[name][1], display=False)
    return ranges


def _as_number(text):
    try:
        return float(str(text).strip().strip("'\"").replace(",", ""))
    except ValueError:
        return None
