"""The notebook layer's claims: a trained or sampled number must clear its threshold by 3 standard errors."""

import json
import math

import pytest
import torch

from mini_transformer.notebook.claims import (MIN_MARGIN, Claims, binomial_se, bootstrap_se, combined_se, evaluate,
                                              mean_se, recorded_claims)


def record(value, above=0.3, below=None):
    return {"value": value, "above": above, "below": below}


def test_a_claim_holds_only_with_three_standard_errors_to_spare():
    claims = Claims("00_test", seed=0, recorded={})
    assert claims.check("wide", 0.5, above=0.3, se=0.05).margin == pytest.approx(4.0)
    with pytest.raises(AssertionError, match="'thin'.*by 2.0 SE"):  # right side of the threshold, too close
        claims.check("thin", 0.4, above=0.3, se=0.05)
    assert not claims.claims["thin"].holds and claims.claims["wide"].holds


def test_two_sided_claims_take_the_nearer_threshold_and_independent_errors_add():
    claims = Claims("00_test", seed=0, recorded={})
    claim = claims.check("band", 0.17, above=0.12, below=0.22, se=[0.009, 0.012])
    assert claim.se == pytest.approx(0.015) and claim.margin == pytest.approx(0.05 / 0.015)
    with pytest.raises(AssertionError):
        claims.check("below", 0.21, above=0.0, below=0.22, se=0.01)


def test_the_spread_of_the_recorded_seeds_adds_to_the_sampling_error():
    """A planted defect: a claim that holds by its sampling error alone fails once the seeds disagree."""
    quiet = Claims("00_test", seed=0, recorded={"x": {0: record(0.5), 1: record(0.505), 2: record(0.495)}})
    assert quiet.check("x", 0.5, above=0.3, se=0.01).se == pytest.approx(math.hypot(0.01, 0.005))
    noisy = Claims("00_test", seed=0, recorded={"x": {0: record(0.5), 1: record(0.8), 2: record(0.2)}})
    with pytest.raises(AssertionError):
        noisy.check("x", 0.5, above=0.3, se=0.01)
    assert noisy.claims["x"].se_seeds == pytest.approx(0.3)


def test_a_better_result_cannot_widen_its_own_error():
    """The seed spread comes from the record, not from the value under test."""
    recorded = {"x": {0: record(0.55), 1: record(0.5), 2: record(0.6)}}
    margins = [Claims("00_test", seed=0, recorded=recorded).check("x", v, above=0.3, se=0.001).margin
               for v in (0.55, 1.0, 10.0)]
    assert margins == sorted(margins) and margins[0] > 3


def test_a_seed_missing_from_the_record_widens_the_spread():
    recorded = {"x": {1: record(0.5, above=0.0), 2: record(0.6, above=0.0)}}
    claim = Claims("00_test", seed=0, recorded=recorded).check("x", 0.55, above=0.0, se=0.0)
    assert claim.se_seeds == pytest.approx(torch.tensor([0.5, 0.6]).std().item() * math.sqrt(1.5))


def test_records_of_another_definition_are_ignored():
    recorded = {"x": {1: record(100.0, above=0.0), 2: record(-100.0, above=0.0)}}  # thresholds differ: not the same claim
    claim = Claims("00_test", seed=0, recorded=recorded).check("x", 0.5, above=0.3, se=0.01)
    assert claim.se_seeds is None and claim.holds


def test_a_claim_on_the_mean_over_seeds_divides_the_error_by_root_n():
    recorded = {"x": {0: record(0.10, above=0.05), 1: record(0.24, above=0.05), 2: record(0.19, above=0.05)}}
    run = evaluate("x", 0.10, 0.05, None, 0.0, {s: r["value"] for s, r in recorded["x"].items()}, 0)
    mean = Claims("00_test", seed=0, recorded=recorded).check("x", 0.10, above=0.05, se=0.0, mode="mean")
    assert not run.holds and mean.tested == pytest.approx(0.53 / 3) and mean.n_seeds == 3
    assert mean.se == pytest.approx(run.se / math.sqrt(3))


def test_bad_claims_are_refused_with_the_claims_name():
    claims = Claims("00_test", seed=0, recorded={})
    with pytest.raises(ValueError, match="'a'.*threshold"):
        claims.check("a", 1.0, se=0.1)
    with pytest.raises(ValueError, match="'b'.*se"):
        claims.check("b", 1.0, above=0.0, se=-1)
    with pytest.raises(ValueError, match="'c'.*standard error is 0"):
        claims.check("c", 1.0, above=0.0, se=0.0)
    with pytest.raises(TypeError, match="'d'.*value"):
        claims.check("d", "1.0", above=0.0, se=0.1)
    with pytest.raises(ValueError, match="'e'.*finite"):
        claims.check("e", float("nan"), above=0.0, se=0.1)
    with pytest.raises(ValueError, match="'f'.*mode"):
        claims.check("f", 1.0, above=0.0, se=0.1, mode="median")


def test_claims_are_written_to_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKING_AHEAD_CLAIMS_DIR", str(tmp_path))
    claims = Claims("00_test", seed=2, recorded={})
    claims.check("x", 1.0, above=0.0, se=0.1, what="a test")
    with pytest.raises(AssertionError):
        claims.check("y", 0.1, above=0.0, se=0.1)
    registry = json.loads((tmp_path / "00_test-seed2.json").read_text())
    assert registry["seed"] == 2 and set(registry["claims"]) == {"x", "y"}
    assert registry["claims"]["x"]["margin"] == pytest.approx(10.0) and registry["claims"]["y"]["holds"] is False


def test_deferred_claims_raise_together_at_the_table(monkeypatch):
    monkeypatch.setenv("THINKING_AHEAD_CLAIMS_DEFER", "1")
    claims = Claims("00_test", seed=0, recorded={})
    claims.check("thin", 0.4, above=0.3, se=0.05)  # recorded, not raised
    claims.check("wide", 0.5, above=0.3, se=0.05)
    with pytest.raises(AssertionError, match=r"\['thin'\]"):
        claims.table()


def test_recorded_claims_read_the_seed_spread_file(tmp_path):
    path = tmp_path / "seed_spread.json"
    path.write_text(json.dumps({"01_x": {"1": {"claims": {"c": {"value": 0.4, "margin": 5.0}}},
                                         "2": {"claims": {"c": {"value": 0.6, "margin": 4.0}}}}}))
    assert recorded_claims("01_x", path) == {"c": {1: 0.4, 2: 0.6}}
    assert recorded_claims("01_x", path, field="margin") == {"c": {1: 5.0, 2: 4.0}}
    assert recorded_claims("01_x", path, field=None)["c"][1] == {"value": 0.4, "margin": 5.0}
    assert recorded_claims("02_y", path) == {} and recorded_claims("01_x", tmp_path / "none.json") == {}


def test_standard_errors():
    assert binomial_se(0.5, 100) == pytest.approx(0.05, rel=1e-3)
    assert 0 < binomial_se(1.0, 1000) < 0.002  # never zero: (k + 1) / (n + 2)
    assert mean_se([1.0, 3.0]) == pytest.approx(1.0)
    assert combined_se(0.3, 0.4) == pytest.approx(0.5)
    x = torch.randn(400, generator=torch.Generator().manual_seed(0))
    assert bootstrap_se(x) == pytest.approx(mean_se(x), rel=0.15)
    assert bootstrap_se(torch.arange(10)) > 0  # integer rows: the default mean still works
    rows = torch.arange(10)  # integer rows stay integers: a statistic may index with them
    assert bootstrap_se(rows, lambda i: torch.tensor([2.0, 4.0] * 5)[i].mean()) > 0
    with pytest.raises(ValueError, match="n must"):
        binomial_se(0.5, 0)
    with pytest.raises(ValueError, match="p must"):
        binomial_se(1.5, 10)
    assert MIN_MARGIN == 3.0
