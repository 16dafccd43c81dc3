"""Each chapter's run time: as recorded by the chapter itself in its committed outputs (the glued
``chN_runtime_s``), or measured now by executing every notebook top to bottom (``--execute``).

    python -m benchmarks.chapters             # read the committed notebooks
    python -m benchmarks.chapters --execute   # run them now (minutes)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def recorded_runtime(path: Path) -> float | None:
    """The ``chN_runtime_s`` value the notebook glued in its last run, or None."""
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name", "")
            if name.endswith("_runtime_s"):
                return float(output["data"]["application/papermill.record/text/plain"])
    return None


def execute(path: Path) -> float:
    """Seconds to execute the notebook top to bottom in a fresh kernel (outputs are not saved)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def run(execute_now: bool = False) -> list[dict]:
    rows = []
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        row = dict(chapter=path.stem, recorded_s=recorded_runtime(path))
        if execute_now:
            row["executed_s"] = execute(path)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="execute every chapter now")
    args = parser.parse_args()
    for r in run(args.execute):
        executed = f", executed now in {r['executed_s']:.0f} s" if "executed_s" in r else ""
        print(f"{r['chapter']}: recorded {r['recorded_s']:.0f} s{executed}")


if __name__ == "__main__":
    main()
