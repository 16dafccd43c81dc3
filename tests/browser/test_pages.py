"""Open every page of the built book in headless Chromium, as a reader would, and check what they
see: the page loads, math is typeset (no raw TeX left), every image exists, no Python traceback,
no error in the browser's console (an uncaught exception or a resource that failed to load).
Screenshots go to artifacts/screenshots/. Run after `jupyter-book build .` (see the Makefile)."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]

if CHROMIUM is None:
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("REQUIRE_BROWSER"):  # CI: a missing browser is a failure, not a skip
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def pages():
    if not (HTML / "index.html").exists():
        pytest.fail("build the book first: jupyter-book build .")
    return sorted(p for p in HTML.rglob("*.html")
                  if p.name not in ("genindex.html", "search.html", "index.html") and "_static" not in p.parts)


def chromium(*args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)


# Chromium logs every console message as INFO:CONSOLE, whatever its level; these are the errors.
CONSOLE = re.compile(r":CONSOLE[^\]]*\] (\".*)")
CONSOLE_ERROR = re.compile(r"Uncaught|Failed to load resource|ERR_|is not defined|SyntaxError|TypeError")


def console_errors(stderr: str) -> list[str]:
    messages = [m.group(1) for m in map(CONSOLE.search, stderr.splitlines()) if m]
    return [message for message in messages if CONSOLE_ERROR.search(message)]


SKIPPED = ("script", "style", "code", "pre", "mjx-assistive-mml")


class _Text(HTMLParser):
    """The visible prose of a page (outside scripts, styles, code and MathJax's hidden copies) and
    its image sources."""

    def __init__(self):
        super().__init__()
        self.text, self.images, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED:
            self._skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        if tag in SKIPPED:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(HTML)))
def test_page_renders_for_a_reader(page):
    done = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    dom = done.stdout
    assert "<body" in dom, f"{page} did not load"
    errors = console_errors(done.stderr)
    assert not errors, f"{page}: errors in the browser console: {errors[:3]}"
    parsed = _Text()
    parsed.feed(dom)
    text = "".join(parsed.text)
    source = page.read_text(encoding="utf-8")
    if "application/vnd.jupyter.widget-view+json" in source:  # static widget views (progress bars)
        assert "widgets/embed-amd.js" in source, f"{page}: the widget manager does not come from the book"
        assert "jupyter-widgets" in dom, f"{page}: widget views were not rendered"
    has_math = "class=\"math" in source
    if has_math:
        assert "mjx-container" in dom, f"{page}: MathJax did not typeset the math"
    raw = re.findall(r"\\\(|\\\[|\$\$", text)
    assert not raw, f"{page}: raw TeX left in the text: {raw[:3]}"
    assert "Traceback (most recent call last)" not in dom, f"{page}: a Python traceback is shown"
    for src in parsed.images:
        if src.startswith(("http:", "https:", "data:")):
            continue
        target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
        assert target.exists(), f"{page}: missing image {src}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (str(page.relative_to(HTML)).replace(os.sep, "__").replace(".html", ".png"))
    chromium(f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, f"{page}: no screenshot"


def test_console_errors_are_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>console.log('fine'); notAFunction();</script>"
                    "<img src='missing.png'></body></html>")
    errors = console_errors(chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()).stderr)
    assert any("Uncaught ReferenceError" in e for e in errors), errors
    assert not any(e.startswith('"fine"') for e in errors), errors
