"""The benchmarks run (quick mode), so they cannot rot. Timings are not asserted."""

from benchmarks.gradflow import run


def test_gradflow_benchmark_runs_in_quick_mode():
    rows = run(quick=True, threads=1)
    assert rows and all(r["batched_ms"] > 0 and r["naive_ms"] > 0 for r in rows)


def test_myopia_benchmark_runs_in_quick_mode():
    from benchmarks.myopia import run as run_myopia

    result = run_myopia(quick=True, threads=1)
    assert result["vanilla_ms"] > 0 and result["myopic_ms"] > 0


def test_the_whole_suite_runs_in_quick_mode_and_writes_its_table(tmp_path):
    from benchmarks.__main__ import main

    result = main(["--quick", "--threads", "1", "--out", str(tmp_path)])
    table = (tmp_path / "latest.md").read_text()
    assert "QUICK MODE" in table and "Training step" in table and "Sampling" in table
    assert {r["device"] for r in result["training"]} >= {"cpu"}
    assert [c["chapter"] for c in result["chapters"]][:2] == ["01_formal_algorithms", "02_residual_stream"]
