"""The Seeds page: its record of every chapter at seeds 0, 1 and 2 matches the committed pages."""

import importlib.util
import json
import pathlib

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD = ROOT / "mini_transformer" / "experiments" / "results" / "seed_spread.json"
spec = importlib.util.spec_from_file_location("seed_spread", ROOT / "scripts" / "seed_spread.py")
seed_spread = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_spread)
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
RESULTS = json.loads(RECORD.read_text())


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_seed_0_column_is_the_committed_page(path):
    """Seed 0 ran at the page's own thread count, so every number the page glues is the record's."""
    runs = RESULTS[path.stem]
    assert sorted(runs, key=int) == ["0", "1", "2"], sorted(runs)
    page = seed_spread.glued_values(nbformat.read(path, as_version=4))
    recorded = runs["0"]["glue"]
    assert runs["0"]["threads"] == seed_spread.page_threads(path)
    compared = [n for n in page if not n.endswith(seed_spread.SKIPPED_GLUE)]
    assert compared and not [n for n in compared if n not in recorded], "glued on the page, missing from the record"
    differ = {n: (page[n], recorded[n]) for n in compared if page[n] != recorded[n]}
    assert not differ, differ


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_recorded_run_held_every_claim_with_three_standard_errors(path):
    for seed, run in RESULTS[path.stem].items():
        assert run["ok"], (seed, run["error"])
        thin = {n: c["margin"] for n, c in run["claims"].items() if c["margin"] < 3 or not c["holds"]}
        assert not thin, (seed, thin)


def test_the_seeds_page_is_the_table_of_the_record():
    assert (ROOT / "book" / "seed_spread.md").read_text() == seed_spread.table(RESULTS)


def test_the_table_lists_claims_weakest_first_and_flags_thin_ones():
    claim = lambda value, margin: {"value": value, "margin": margin, "what": "w"}
    runs = {"0": {"ok": True, "glue": {}, "claims": {"a": claim(1.0, 9.0), "b": claim(2.0, 2.5)}},
            "1": {"ok": True, "glue": {}, "claims": {"a": claim(1.1, 4.0), "b": claim(2.1, 7.0)}}}
    text = seed_spread.table({"01_x": runs})
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `b`") and "2.5 **(below 3)**" in rows[0] and rows[1].startswith("| `a`")
    assert seed_spread.weakest({"01_x": runs}, 2) == [(2.5, "01_x", "b", 0), (4.0, "01_x", "a", 1)]


def test_margins_are_settled_against_the_whole_record():
    """A seed that ran first saw an older record; the script recomputes every margin from the final one."""
    def record(value, above=0.0):
        return {"claims": {"c": {"name": "c", "value": value, "above": above, "below": None, "se_sample": 0.0,
                                 "se_seeds": None, "se": 0.01, "margin": value / 0.01, "holds": True, "what": "",
                                 "mode": "run"}}}
    results = {"01_x": {"0": record(1.0), "1": record(0.0), "2": record(2.0), "3": record(5.0, above=-1.0)}}
    seed_spread.settle_margins(results)
    settled = results["01_x"]["0"]["claims"]["c"]
    assert settled["se_seeds"] == pytest.approx(1.0) and settled["margin"] == pytest.approx(1.0)  # seed 3: other claim
    assert not results["01_x"]["1"]["claims"]["c"]["holds"]
