"""The repository is named in one place, `_config.yml` (repository.url); every other mention — the
Colab set-up cell of each chapter, CITATION.cff — must agree with it, so a fork changes one line
and this test points at any copy it missed."""

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def test_the_config_names_a_github_repository():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL), URL


def test_every_chapter_installs_the_package_from_that_repository():
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        setup_cell = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
        sources = re.findall(r"git\+(https://[^\"'\s]+)", setup_cell)
        assert sources == [URL], f"{path.name}: its set-up cell installs from {sources}, _config.yml says {URL}"


def test_citation_points_at_that_repository():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["repository-code"].rstrip("/") == URL
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert citation["version"] == version, "CITATION.cff's version differs from pyproject.toml's"


def test_intro_cites_this_version_and_repository():
    intro = (ROOT / "book" / "intro.md").read_text()
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    bibtex = re.search(r"```bibtex\n(.*?)```", intro, re.S).group(1)
    assert f"version = {{{version}}}" in bibtex, "the BibTeX on the intro page names another version"
    assert f"url     = {{{URL}}}" in bibtex
