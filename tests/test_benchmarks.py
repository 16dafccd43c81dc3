"""The benchmarks run (quick mode), so they cannot rot. Timings are not asserted."""

from benchmarks.gradflow import run


def test_gradflow_benchmark_runs_in_quick_mode():
    rows = run(quick=True, threads=1)
    assert rows and all(r["batched_ms"] > 0 and r["naive_ms"] > 0 for r in rows)


def test_myopia_benchmark_runs_in_quick_mode():
    from benchmarks.myopia import run as run_myopia

    result = run_myopia(quick=True, threads=1)
    assert result["vanilla_ms"] > 0 and result["myopic_ms"] > 0
