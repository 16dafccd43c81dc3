"""Run every chapter with several seeds and record how far its glued numbers move between them.

    python scripts/seed_spread.py                  # seeds 1 2, every chapter, 2 kernels at once
    python scripts/seed_spread.py --seeds 1 --chapters 05 06 --jobs 1

Seed 0 is what the committed notebooks show: its numbers are read from them, not re-run.

Each chapter runs top to bottom in a fresh kernel (nbclient) with ``THINKING_AHEAD_SEED`` set and
one torch thread per kernel; a cell that runs longer than ``--timeout`` seconds fails the run.
Writes ``mini_transformer/experiments/results/seed_spread.json`` (every glued number, per chapter
and seed, pass or fail; package data, so the chapters can quote the spread in Colab too) and
``book/seed_spread.md`` (the table the book's "Seeds" page includes). Nothing is asserted here:
the chapters' own closing cells are the assertions, and ``make test-seeds`` runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
GLUE_MIME = "application/papermill.record/text/plain"


def glued_values(notebook) -> dict[str, str]:
    """The values recorded with myst-nb's ``glue``, by name, as their text."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and GLUE_MIME in output.get("data", {}):
                values[name] = output["data"][GLUE_MIME]
    return values


def run_chapter(path: Path, seed: int, timeout: int) -> dict:
    notebook = nbformat.read(path, as_version=4)
    env = {"THINKING_AHEAD_SEED": str(seed), "THINKING_AHEAD_THREADS": "1"}
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
    return {"ok": error is None, "error": error, "seconds": round(time.perf_counter() - start, 1),
            "glue": glued_values(notebook)}


def as_number(text: str):
    try:
        return float(text.strip().strip("'\"").replace(",", ""))
    except ValueError:
        return None


def table(results: dict) -> str:
    """Markdown: per chapter, each numeric glued value's value at every seed and its spread."""
    seeds = sorted({int(s) for runs in results.values() for s in runs})
    lines = []
    for chapter, runs in sorted(results.items()):
        lines += [f"## {chapter}", "",
                  "| run | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|" + "---|" * len(seeds),
                  "| claims hold | " + " | ".join(
                      ("yes" if runs[str(s)]["ok"] else "**no**") if str(s) in runs else "–" for s in seeds) + " |",
                  "", "| glued number | " + " | ".join(f"seed {s}" for s in seeds) + " | max − min |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        names = sorted({n for run in runs.values() for n in run["glue"]})
        for name in names:
            if name.endswith(("_runtime_s", "_seconds", "_threads", "_seed_lo", "_seed_hi")):
                continue  # timings vary with the machine, not the seed; seed ranges are derived
            values = [as_number(runs[str(s)]["glue"].get(name, "")) if str(s) in runs else None for s in seeds]
            if any(v is None for v in values) or len(set(values)) == 1:
                continue  # text, or the same at every seed (set-up constants)
            spread = max(values) - min(values)
            lines.append(f"| `{name}` | " + " | ".join(f"{v:.4g}" for v in values) + f" | {spread:.3g} |")
        if lines[-1].startswith("|---"):  # no row: nothing the chapter quotes depends on the seed
            lines[-3:] = ["", "No number this chapter quotes changes with the seed."]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2],
                        help="seeds to run (none: only re-read seed 0 from the committed notebooks and rewrite the table)")
    parser.add_argument("--chapters", nargs="+", default=None, help="chapter number prefixes, e.g. 01 05")
    parser.add_argument("--jobs", type=int, default=2, help="kernels run at once (one torch thread each)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a cell may run")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "mini_transformer" / "experiments" / "results" / "seed_spread.json")
    parser.add_argument("--table", type=Path, default=ROOT / "book" / "seed_spread.md")
    args = parser.parse_args(argv)

    paths = sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in args.chapters]
        if not paths:
            raise ValueError(f"--chapters {args.chapters} matches no notebook in chapters/")
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    for path in paths:  # seed 0: the committed, executed notebook
        committed = nbformat.read(path, as_version=4)
        results.setdefault(path.stem, {})["0"] = {"ok": True, "error": None, "seconds": None,
                                                   "glue": glued_values(committed), "committed": True}
    jobs = [(p, s) for p in paths for s in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for (path, seed), run in zip(jobs, pool.map(lambda job: run_chapter(*job, args.timeout), jobs)):
            results.setdefault(path.stem, {})[str(seed)] = run
            status = "ok" if run["ok"] else f"FAILED: {run['error']}"
            print(f"{path.stem} seed {seed}: {run['seconds']:.0f} s, {status}", flush=True)
            args.output.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    args.table.write_text(table(results))


if __name__ == "__main__":
    main()
