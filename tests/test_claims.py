"""The notebook layer's claims: a trained or sampled number must clear its threshold by 3 standard errors."""

import json
import math

import pytest
import torch

from mini_transformer.notebook.claims import (MIN_MARGIN, Claims, binomial_se, bootstrap_se, combined_se, mean_se,
                                              recorded_claims)


def test_a_claim_holds_only_with_three_standard_errors_to_spare():
    claims = Claims("00_test", seed=0, recorded={})
    assert claims.check("wide", 0.5, above=0.3, se=0.05).margin == pytest.approx(4.0)
    with pytest.raises(AssertionError, match="'thin'.*by 2.0 SE"):  # right side of the threshold, too close
        claims.check("thin", 0.4, above=0.3, se=0.05)
    assert not claims.claims["thin"].holds and claims.claims["wide"].holds


def test_two_sided_claims_take_the_nearer_threshold_and_the_largest_error():
    claims = Claims("00_test", seed=0, recorded={})
    claim = claims.check("band", 0.17, above=0.12, below=0.22, se=[0.01, 0.0125])
    assert claim.se == 0.0125 and claim.margin == pytest.approx(4.0)
    with pytest.raises(AssertionError):
        claims.check("below", 0.21, above=0.0, below=0.22, se=0.01)


def test_the_spread_of_other_seeds_counts_when_it_is_larger():
    """A planted defect: a claim that holds by its sampling error alone fails once the seeds disagree."""
    quiet = Claims("00_test", seed=0, recorded={"x": {1: 0.505, 2: 0.495}})
    assert quiet.check("x", 0.5, above=0.3, se=0.01).se == 0.01  # the seeds agree: the sample error counts
    noisy = Claims("00_test", seed=0, recorded={"x": {1: 0.8, 2: 0.2}})
    with pytest.raises(AssertionError):
        noisy.check("x", 0.5, above=0.3, se=0.01)
    assert noisy.claims["x"].se_seeds == pytest.approx(torch.tensor([0.5, 0.8, 0.2]).std().item())
    own = Claims("00_test", seed=1, recorded={"x": {1: 100.0, 2: 0.5}})  # this seed's own record is not "another"
    assert own.check("x", 0.5, above=0.3, se=0.01).se_seeds == 0.0


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


def test_claims_are_written_to_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKING_AHEAD_CLAIMS_DIR", str(tmp_path))
    claims = Claims("00_test", seed=2, recorded={})
    claims.check("x", 1.0, above=0.0, se=0.1, what="a test")
    with pytest.raises(AssertionError):
        claims.check("y", 0.1, above=0.0, se=0.1)
    record = json.loads((tmp_path / "00_test-seed2.json").read_text())
    assert record["seed"] == 2 and set(record["claims"]) == {"x", "y"}
    assert record["claims"]["x"]["margin"] == pytest.approx(10.0) and record["claims"]["y"]["holds"] is False


def test_recorded_claims_read_the_seed_spread_file(tmp_path):
    path = tmp_path / "seed_spread.json"
    path.write_text(json.dumps({"01_x": {"1": {"claims": {"c": {"value": 0.4, "margin": 5.0}}},
                                         "2": {"claims": {"c": {"value": 0.6, "margin": 4.0}}}}}))
    assert recorded_claims("01_x", path) == {"c": {1: 0.4, 2: 0.6}}
    assert recorded_claims("01_x", path, field="margin") == {"c": {1: 5.0, 2: 4.0}}
    assert recorded_claims("02_y", path) == {} and recorded_claims("01_x", tmp_path / "none.json") == {}


def test_standard_errors():
    assert binomial_se(0.5, 100) == pytest.approx(0.05, rel=1e-3)
    assert 0 < binomial_se(1.0, 1000) < 0.002  # never zero: (k + 1) / (n + 2)
    assert mean_se([1.0, 3.0]) == pytest.approx(math.sqrt(2) / math.sqrt(2))
    assert combined_se(0.3, 0.4) == pytest.approx(0.5)
    x = torch.randn(400, generator=torch.Generator().manual_seed(0))
    assert bootstrap_se(x) == pytest.approx(mean_se(x), rel=0.15)
    rows = torch.arange(10)  # integer rows stay integers: a statistic may index with them
    assert bootstrap_se(rows, lambda i: torch.tensor([2.0, 4.0] * 5)[i].mean()) > 0
    with pytest.raises(ValueError, match="n must"):
        binomial_se(0.5, 0)
    with pytest.raises(ValueError, match="p must"):
        binomial_se(1.5, 10)
    assert MIN_MARGIN == 3.0


def test_deferred_claims_raise_together_at_the_table(monkeypatch):
    monkeypatch.setenv("THINKING_AHEAD_CLAIMS_DEFER", "1")
    claims = Claims("00_test", seed=0, recorded={})
    claims.check("thin", 0.4, above=0.3, se=0.05)  # recorded, not raised
    claims.check("wide", 0.5, above=0.3, se=0.05)
    with pytest.raises(AssertionError, match=r"\['thin'\]"):
        claims.table()
