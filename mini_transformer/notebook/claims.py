"""Claims with their error: how a chapter asserts what it measured.

A number that comes from training, sampling or a finite sample moves when anything touches the run:
the seed, the thread count, another CPU's last bits. A chapter therefore states such a number as a
*claim*: the value, the side of a threshold it must lie on, and its standard error. The claim holds
only when the value clears the threshold by at least ``MIN_MARGIN`` standard errors; a thinner margin
fails, however the value compares with the threshold.

The standard error adds two parts in quadrature (the evaluation sets are the same for every seed, so
the spread of the seeds does not contain the sampling error of the evaluation):

- the one the chapter measured in the run (:func:`binomial_se`, :func:`mean_se`, :func:`bootstrap_se`,
  :func:`combined_se`), and
- the spread of the seeds: the standard deviation of the values the same claim took at seeds 0, 1, 2
  as ``scripts/seed_spread.py`` recorded them (``results/seed_spread.json``), only records made with
  the same thresholds. It comes from the record, not from the value being tested, so a better result
  cannot widen its own error; a seed missing from the record widens it by √(1 + 1/n).

A claim is about one run (``mode="run"``, the default: its error is the whole seed spread) or about
the experiment's mean over seeds (``mode="mean"``: this run's value averaged with the other recorded
seeds', its error divided by √n). With three seeds the spread has two degrees of freedom: a margin of
3 is a screen against claims tuned on one run, not a 0.1 % test.

Deterministic checks (float64 equivalences, exact zeros, structure) stay plain ``assert`` statements.
Every claim is kept in the chapter's :class:`Claims` registry and, when ``$THINKING_AHEAD_CLAIMS_DIR``
is set, written to ``<dir>/<chapter>-seed<seed>.json`` after each check.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

MIN_MARGIN = 3.0  # standard errors between a claimed value and its threshold
MODES = ("run", "mean")
CLAIMS_DIR_VARIABLE = "THINKING_AHEAD_CLAIMS_DIR"
DEFER_VARIABLE = "THINKING_AHEAD_CLAIMS_DEFER"  # "1": a failing claim raises at table(), after all are checked


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion ``p`` of ``n`` independent trials, with the Laplace estimate
    (k + 1) / (n + 2) in place of p, so that 0 and 1 still have an error (about 1/n)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (the number of trials), got {n!r}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"p must be a proportion in [0, 1], got {p!r}")
    q = (float(p) * n + 1) / (n + 2)
    return math.sqrt(q * (1 - q) / n)


def mean_se(samples) -> float:
    """Standard error of the mean of independent ``samples`` (a 1-d sequence, at least 2)."""
    x = torch.as_tensor(samples, dtype=torch.float64).flatten()
    if len(x) < 2:
        raise ValueError(f"samples must hold at least 2 values, got {len(x)}")
    return x.std().item() / math.sqrt(len(x))


def bootstrap_se(samples, statistic=None, n_boot: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error of ``statistic`` (default: the mean) over the rows of ``samples``
    (resampled with replacement ``n_boot`` times, seeded): for ratios, medians, differences of paired
    samples, anything without a formula. Integer rows (e.g. indices) reach ``statistic`` as integers."""
    x = torch.as_tensor(samples)
    x = x.double() if x.is_floating_point() else x
    if x.ndim == 0 or len(x) < 2:
        raise ValueError(f"samples must hold at least 2 rows, got shape {list(x.shape)}")
    statistic = statistic or (lambda rows: rows.double().mean(0))
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(0, len(x), (n_boot, len(x)), generator=generator)
    values = torch.stack([torch.as_tensor(statistic(x[i]), dtype=torch.float64) for i in index])
    return values.std(0).max().item()


def combined_se(*errors: float) -> float:
    """Standard error of a sum or difference of independent estimates: √(Σ se²)."""
    return math.sqrt(sum(float(e) ** 2 for e in errors))


@dataclass(frozen=True)
class Claim:
    """One checked claim: ``tested`` (this run's ``value``, or with ``mode="mean"`` its mean with the
    other seeds' ``n_seeds − 1`` values) must be above ``above`` and/or below ``below`` by at least
    ``MIN_MARGIN`` times ``se``."""

    name: str
    value: float  # this run's value
    above: float | None
    below: float | None
    se_sample: float  # measured in the run
    se_seeds: float | None  # the spread of the recorded seeds (None: fewer than two recorded)
    se: float  # the error of `tested`
    margin: float  # in standard errors: the smaller distance of `tested` to a threshold, divided by se
    holds: bool
    what: str = ""
    mode: str = "run"
    tested: float | None = None
    n_seeds: int = 1


def evaluate(name: str, value: float, above, below, se_sample: float, seed_values: dict[int, float], seed: int,
             what: str = "", mode: str = "run") -> Claim:
    """The claim that this run's ``value`` (seed ``seed``; with ``mode="mean"``, its mean with the
    other seeds' recorded values) lies above ``above`` and/or below ``below``. ``seed_values`` are the
    recorded values of the same claim by seed (this seed's too, if recorded); the seed spread is their
    standard deviation, widened by √(1 + 1/n) when this seed is not among them."""
    if above is None and below is None:
        raise ValueError(f"claim {name!r}: give a threshold, above= or below=")
    if mode not in MODES:
        raise ValueError(f"claim {name!r}: mode must be one of {MODES}, got {mode!r}")
    recorded = {int(s): float(v) for s, v in seed_values.items()}
    spread = torch.tensor(list(recorded.values()), dtype=torch.float64).std().item() if len(recorded) > 1 else None
    if spread is not None and seed not in recorded:
        spread *= math.sqrt(1 + 1 / len(recorded))
    values = [value, *(v for s, v in recorded.items() if s != seed)]
    n = len(values) if mode == "mean" else 1
    tested = sum(values) / n if mode == "mean" else value
    se = math.sqrt(se_sample ** 2 + (spread or 0.0) ** 2) / math.sqrt(n)
    distances = [tested - float(above)] if above is not None else []
    distances += [float(below) - tested] if below is not None else []
    margin = min(distances) / se if se > 0 else (math.inf if min(distances) > 0 else -math.inf)
    return Claim(name, value, None if above is None else float(above), None if below is None else float(below),
                 se_sample, spread, se, margin, margin >= MIN_MARGIN, what, mode, tested, n)


class Claims:
    """The claims of one chapter run. ``check`` tests one and raises ``AssertionError`` when it
    does not hold; ``table`` prints them all. ``recorded`` (default: read from
    ``results/seed_spread.json``) gives the recorded claims, ``{name: {seed: record}}`` (a record holds
    at least ``value``, ``above`` and ``below``)."""

    def __init__(self, chapter: str, seed: int, recorded: dict[str, dict[int, dict]] | None = None,
                 directory: str | Path | None = None):
        self.chapter, self.seed = chapter, seed
        self.recorded = recorded_claims(chapter, field=None) if recorded is None else recorded
        directory = directory or os.environ.get(CLAIMS_DIR_VARIABLE) or None
        self.path = None if directory is None else Path(directory) / f"{chapter}-seed{seed}.json"
        self.claims: dict[str, Claim] = {}
        self.defer = os.environ.get(DEFER_VARIABLE, "") == "1"

    def check(self, name: str, value, *, above=None, below=None, se, what: str = "", mode: str = "run") -> Claim:
        """Claim that ``value`` lies above ``above`` and/or below ``below`` with a margin of at least
        ``MIN_MARGIN`` standard errors. ``se`` is the standard error measured in this run (a number, or
        several independent parts, added in quadrature); the seed spread recorded for ``name`` adds to it. ``mode="mean"``
        claims the mean over this run and the other recorded seeds instead of this run alone."""
        if above is None and below is None:
            raise ValueError(f"claim {name!r}: give a threshold, above= or below=")
        value = _real(value, f"claim {name!r}: value")
        errors = [_real(e, f"claim {name!r}: se") for e in (se if isinstance(se, (list, tuple)) else [se])]
        if not errors or min(errors) < 0:
            raise ValueError(f"claim {name!r}: se must be one or more standard errors >= 0, got {se!r}")
        # only records of the same claim: the same thresholds (a changed definition starts a new record)
        same = {s: r["value"] for s, r in self.recorded.get(name, {}).items()
                if (r.get("above"), r.get("below")) == (_optional(above), _optional(below))}
        if max(errors) <= 0 and len(same) < 2:
            raise ValueError(f"claim {name!r}: its standard error is 0 and fewer than two seeds are recorded; "
                             "a quantity without error is a plain assert, not a claim")
        claim = evaluate(name, value, above, below, combined_se(*errors), same, self.seed, what, mode)
        self.claims[name] = claim
        self._write()
        if not claim.holds and not self.defer:
            raise AssertionError(f"claim {name!r} does not hold: {describe(claim)}")
        return claim

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records = {name: asdict(c) for name, c in self.claims.items()}
        self.path.write_text(json.dumps({"chapter": self.chapter, "seed": self.seed, "claims": records}, indent=1))

    def table(self) -> str:
        """The claims checked so far, weakest margin first, as text (and printed). With
        ``$THINKING_AHEAD_CLAIMS_DEFER=1`` the failing ones raise here, all together."""
        rows = sorted(self.claims.values(), key=lambda c: c.margin)
        text = "\n".join(f"{c.name:<34} {describe(c)}" for c in rows)
        print(text)
        failed = [c.name for c in rows if not c.holds]
        if failed:
            raise AssertionError(f"claims that do not hold: {failed}")
        return text


def describe(claim: Claim) -> str:
    """``value 0.412 > 0.300 by 5.1 SE (se 0.022: in run 0.015, page seeds 0.016)``: the error measured in
    the run (from its samples, or from the seeds of a result file it reads) and the spread of the page's
    recorded seeds; a claim on the mean over seeds says ``mean of 3 seeds 0.405``."""
    sides = []
    if claim.above is not None:
        sides.append(f"> {claim.above:.4g}")
    if claim.below is not None:
        sides.append(f"< {claim.below:.4g}")
    seeds = "" if claim.se_seeds is None else f", page seeds {claim.se_seeds:.2g}"
    tested = claim.value if claim.tested is None else claim.tested
    what = f"mean of {claim.n_seeds} seeds {tested:.4g}" if claim.mode == "mean" else f"value {tested:.4g}"
    return (f"{what} {' and '.join(sides)} by {claim.margin:.1f} SE "
            f"(se {claim.se:.2g}: in run {claim.se_sample:.2g}{seeds})")


def recorded_claims(chapter: str, path: str | Path | None = None, field: str | None = "value") -> dict[str, dict]:
    """The recorded claims of ``chapter``, ``{name: {seed: record[field]}}`` (``field``: "value",
    "margin", …; None: the whole record), from the seed-spread record (``results/seed_spread.json``);
    empty when there is none."""
    from ..experiments import RESULTS

    path = Path(path) if path is not None else RESULTS / "seed_spread.json"
    if not path.exists():
        return {}
    runs = json.loads(path.read_text()).get(chapter, {})
    values: dict[str, dict] = {}
    for seed, run in runs.items():
        for name, record in run.get("claims", {}).items():
            values.setdefault(name, {})[int(seed)] = record if field is None else record[field]
    return values


def _optional(x) -> float | None:
    return None if x is None else float(x)


def _real(x, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not (torch.is_tensor(x) and x.numel() == 1) \
            and not hasattr(x, "__float__"):
        raise TypeError(f"{what} must be a real number, got {type(x).__name__}")
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    return value
