"""Run every chapter with seeds 0, 1 and 2 and record its glued numbers and its claims at each.

    python scripts/seed_spread.py                     # seeds 0 1 2, every chapter
    python scripts/seed_spread.py --seeds 1 --chapters 05 06

Each chapter runs top to bottom in a fresh kernel (nbclient) with ``THINKING_AHEAD_SEED`` set and
the **thread count its committed page was executed with** (the page glues it as ``chN_threads``), so
seed 0 repeats the committed page to every digit on the machine that executed it
(``tests/test_seed_spread.py`` checks the committed page against the seed-0 column). Kernels run
side by side only while their threads fit the machine's cores. A cell that runs longer than
``--timeout`` seconds fails the run.

Writes ``mini_transformer/experiments/results/seed_spread.json`` (per chapter and seed: pass or fail,
run time, every glued number, and every claim with its value, standard error and margin in standard
errors; package data, so chapters read the spread in Colab too) and ``book/seed_spread.md`` (the tables
of the book's "Seeds" page: every claim with its value per seed and its smallest margin, weakest
first, then every number the prose quotes). The chapters' own closing cells are the assertions; a
claim whose margin is below 3 standard errors fails its chapter, and ``make test`` runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mini_transformer.notebook.claims import evaluate
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
GLUE_MIME = "application/papermill.record/text/plain"
# timings vary with the machine, not the seed; seed ranges are derived from the record itself
SKIPPED_GLUE = ("_runtime_s", "_seconds", "_threads", "_threads_text", "_seed_lo", "_seed_hi",
                "_cost_ms0", "_cost_msc", "_cost_ratio")


def glued_values(notebook) -> dict[str, str]:
    """The values recorded with myst-nb's ``glue``, by name, as their text."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and GLUE_MIME in output.get("data", {}):
                values[name] = output["data"][GLUE_MIME]
    return values


def page_threads(path: Path) -> int:
    """The torch thread count the committed page ``path`` ran with (its ``chN_threads`` glue)."""
    glue = glued_values(nbformat.read(path, as_version=4))
    key = f"ch{int(path.name[:2])}_threads"
    if key not in glue:
        raise ValueError(f"{path} glues no {key}: execute it first (make notebooks)")
    return int(as_number(glue[key]))


def run_chapter(path: Path, seed: int, threads: int, timeout: int) -> dict:
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as claims_dir:
        env = {"THINKING_AHEAD_SEED": str(seed), "THINKING_AHEAD_THREADS": str(threads),
               "THINKING_AHEAD_CLAIMS_DIR": claims_dir,
               "THINKING_AHEAD_CLAIMS_DEFER": "1"}  # a failing claim raises after all are recorded
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        error = None
        try:
            client.execute(env={**os.environ, **env})
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1][:300]
        except Exception as exc:  # a kernel death or a timeout: record it, do not stop the other runs
            error = f"{type(exc).__name__}: {exc}"[:300]
        registry = Path(claims_dir) / f"{path.stem}-seed{seed}.json"
        claims = json.loads(registry.read_text())["claims"] if registry.exists() else {}
    return {"ok": error is None, "error": error, "seconds": round(time.perf_counter() - start, 1),
            "threads": threads, "glue": glued_values(notebook), "claims": claims}


def as_number(text: str):
    try:
        return float(str(text).strip().strip("'\"").replace(",", ""))
    except ValueError:
        return None


def claims_table(runs: dict, seeds: list[int]) -> list[str]:
    """Markdown rows: every claim of one chapter, its value at each seed and its smallest margin."""
    names = {n for run in runs.values() for n in run.get("claims", {})}
    rows = []
    for name in names:
        records = {s: runs[str(s)]["claims"].get(name) for s in seeds if str(s) in runs}
        margins = [r["margin"] for r in records.values() if r]
        what = next((r.get("what", "") for r in records.values() if r), "")
        rows.append((min(margins), name, what, records))
    lines = ["| claim | " + " | ".join(f"seed {s}" for s in seeds) + " | smallest margin (SE) |",
             "|---|" + "---|" * (len(seeds) + 1)]
    for margin, name, what, records in sorted(rows, key=lambda row: (row[0], row[1])):
        cells = [f"{records[s]['value']:.4g}" if records.get(s) else "–" for s in seeds]
        if any(r and r.get("mode") == "mean" for r in records.values()):
            what += " (claimed on the mean over seeds)"
        flag = "" if margin >= 3 else " **(below 3)**"
        lines.append(f"| `{name}`: {what} | " + " | ".join(cells) + f" | {margin:.1f}{flag} |")
    return lines


def settle_margins(results: dict) -> None:
    """Recompute every recorded claim's seed error and margin from the whole record: a run saw only the
    other seeds recorded before it, so the seeds that ran first used an older record."""
    for runs in results.values():
        for seed, run in runs.items():
            for name, record in run.get("claims", {}).items():
                same = {int(s): r["claims"][name]["value"] for s, r in runs.items() if name in r.get("claims", {})
                        and (r["claims"][name]["above"], r["claims"][name]["below"]) == (record["above"], record["below"])}
                claim = evaluate(name, record["value"], record["above"], record["below"], record["se_sample"],
                                 same, int(seed), record.get("what", ""), record.get("mode", "run"))
                record.update(asdict(claim))


def weakest(results: dict, n: int = 5) -> list[tuple[float, str, str, int]]:
    """The ``n`` claims with the smallest margin over every chapter and seed, each at its weakest seed:
    (margin, chapter, claim, seed)."""
    every = sorted((record["margin"], chapter, name, int(seed)) for chapter, runs in results.items()
                   for seed, run in runs.items() for name, record in run.get("claims", {}).items())
    seen, distinct = set(), []
    for row in every:  # each claim once, at its weakest seed
        if (row[1], row[2]) not in seen:
            seen.add((row[1], row[2]))
            distinct.append(row)
    return distinct[:n]


def table(results: dict) -> str:
    """Markdown: the weakest claims of the book; per chapter, its claims (weakest first) and each numeric
    glued value's value at every seed with its spread."""
    seeds = sorted({int(s) for runs in results.values() for s in runs})
    lines = ["## The weakest claims", "",
             "The claims with the smallest margin over every chapter and seed, in standard errors:", "",
             "| margin (SE) | chapter | claim | seed |", "|---|---|---|---|"]
    lines += [f"| {m:.1f} | {c} | `{n}` | {s} |" for m, c, n, s in weakest(results)]
    lines.append("")
    for chapter, runs in sorted(results.items()):
        lines += [f"## {chapter}", "",
                  "| run | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|" + "---|" * len(seeds),
                  "| claims hold | " + " | ".join(
                      ("yes" if runs[str(s)]["ok"] else "**no**") if str(s) in runs else "–" for s in seeds) + " |",
                  "| torch threads | " + " | ".join(str(runs[str(s)].get("threads", "–")) if str(s) in runs else "–"
                                                   for s in seeds) + " |", ""]
        if any(run.get("claims") for run in runs.values()):
            lines += ["Its claims, weakest first (each must clear its threshold by 3 standard errors):", ""]
            lines += claims_table(runs, seeds) + [""]
        lines += ["Every number its prose quotes that moves with the seed:", "",
                  "| glued number | " + " | ".join(f"seed {s}" for s in seeds) + " | max − min |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        names = sorted({n for run in runs.values() for n in run["glue"]})
        for name in names:
            if name.endswith(SKIPPED_GLUE):
                continue  # timings vary with the machine, not the seed; seed ranges are derived
            values = [as_number(runs[str(s)]["glue"].get(name, "")) if str(s) in runs else None for s in seeds]
            if any(v is None for v in values) or len(set(values)) == 1:
                continue  # text, or the same at every seed (set-up constants)
            spread = max(values) - min(values)
            lines.append(f"| `{name}` | " + " | ".join(f"{v:.4g}" for v in values) + f" | {spread:.3g} |")
        if lines[-1].startswith("|---"):  # no row: nothing the chapter quotes depends on the seed
            lines[-3:] = ["No number this chapter quotes changes with the seed."]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="seeds to run (none: only rewrite the table from the record)")
    parser.add_argument("--chapters", nargs="+", default=None, help="chapter number prefixes, e.g. 01 05")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="CPU cores to fill: kernels run side by side while their threads fit")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per kernel (default: each page's own, read from its chN_threads glue)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may run")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "mini_transformer" / "experiments" / "results" / "seed_spread.json")
    parser.add_argument("--table", type=Path, default=ROOT / "book" / "seed_spread.md")
    args = parser.parse_args(argv)

    paths = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in args.chapters]
        if not paths:
            raise ValueError(f"--chapters takes two-digit chapter prefixes such as 05; {args.chapters} matches no notebook in chapters/")
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    jobs = [(p, s, args.threads or page_threads(p)) for p in paths for s in args.seeds]
    workers = max(1, args.cores // max((t for _, _, t in jobs), default=1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (path, seed, threads), run in zip(jobs, pool.map(lambda job: run_chapter(*job, args.timeout), jobs)):
            results.setdefault(path.stem, {})[str(seed)] = run
            status = "ok" if run["ok"] else f"FAILED: {run['error']}"
            print(f"{path.stem} seed {seed} ({threads} threads): {run['seconds']:.0f} s, {status}", flush=True)
            args.output.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    settle_margins(results)
    args.output.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    args.table.write_text(table(results))
    for margin, chapter, name, seed in weakest(results):
        print(f"weakest: {margin:.1f} SE  {chapter} {name} (seed {seed})")


if __name__ == "__main__":
    main()
