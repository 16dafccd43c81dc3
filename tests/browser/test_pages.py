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
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser(environ=os.environ) -> str | None:
    """The browser to drive: ``$CHROME`` (a path or a command name) if set, else the first of
    BROWSER_NAMES on the PATH (Debian's ``chromium``, Ubuntu's, Google's Chrome on GitHub's runners)."""
    chosen = environ.get("CHROME")
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            pytest.fail(f"CHROME={chosen!r} is neither an executable path nor a command on the PATH", pytrace=False)
        return found
    return next(filter(None, map(shutil.which, BROWSER_NAMES)), None)


CHROMIUM = find_browser()
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]

if CHROMIUM is None:
    message = f"no browser found: set CHROME, or install one of {BROWSER_NAMES} (Debian: apt-get install chromium)"
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


def test_browser_comes_from_the_environment_variable(tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_browser({"CHROME": str(fake)}) == str(fake)
    assert find_browser({}) == next(filter(None, map(shutil.which, BROWSER_NAMES)))


def test_footer_names_version_commit_and_where_to_report():
    page = HTML / "chapters" / "01_formal_algorithms.html"
    dom = chromium("--dump-dom", page.as_uri()).stdout
    footer = re.search(r'<p class="build-info">(.*?)</p>', dom, re.S)
    assert footer, "no build-info footer"
    text = footer.group(1)
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert f"Thinking Ahead {version}" in text
    assert re.search(r"commit (<a [^>]+>)?<code>([0-9a-f]{7,}|unknown)", text), text
    assert "/issues" in text and "CC BY 4.0" in text and "MIT" in text
