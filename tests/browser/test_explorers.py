"""Drive every in-page explorer of the built book in headless Chromium, as a reader would, with the
network off: move each control (a key press on a slider, another option in a dropdown), check that
the figure's data changed and comes back when the control does, and that the console shows no
error and no file is missing; then open every other page the same way. Screenshots of each explorer
before and after go to artifacts/screenshots/explorers/.

Playwright for Python drives Debian's chromium (``$CHROME`` or the first browser on the PATH);
it never downloads a browser. A page that is not built yet is skipped locally and fails under
``REQUIRE_BROWSER`` (CI); a built page whose explorers do not respond fails. Run after `jupyter-book build .`."""

import json
import os
import pathlib
import re
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots" / "explorers"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# the explorers each page must have (more may come: every page with one is driven)
EXPECTED = {"chapters/02_residual_stream.html": 1, "chapters/03_gradient_flow.html": 2,
            "chapters/04_depth_bound.html": 1, "chapters/06_precaching_or_breadcrumbs.html": 1,
            "chapters/07_thinking_without_writing.html": 1}
MARKER = re.compile(r'data-mt-explorer="(mt-[0-9a-f]{10})"')


def _skip_or_fail(message):
    if os.environ.get("REQUIRE_BROWSER"):  # CI: a missing tool is a failure, not a skip
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - requirements.txt pins it
    _skip_or_fail("playwright is not installed (pip install -r requirements.txt)")

BROWSER = shutil.which(os.environ.get("CHROME", "")) if os.environ.get("CHROME") else next(
    filter(None, map(shutil.which, BROWSER_NAMES)), None)
if BROWSER is None:
    _skip_or_fail(f"no browser found: set CHROME, or install one of {BROWSER_NAMES} (Debian: apt-get install chromium)")


def explorer_pages() -> list[str]:
    """Every built page with an explorer, and every page that must have one."""
    found = {str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
             if "_static" not in p.parts and MARKER.search(p.read_text(encoding="utf-8"))} if HTML.exists() else set()
    return sorted(found | set(EXPECTED))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


FIGURE_STATE = """(root) => {
  const plot = root.querySelector('.mt-explorer-figure');
  if (!plot || !plot.data) { return null; }
  return JSON.stringify({data: plot.data, title: plot.layout.title && plot.layout.title.text});
}"""


def _state(explorer):
    return explorer.evaluate(FIGURE_STATE)


def _wait_for_change(page, explorer, before, timeout_ms=5000):
    """The figure's state once it differs from ``before`` (Plotly redraws synchronously, but be safe)."""
    waited = 0
    while waited < timeout_ms:
        now = _state(explorer)
        if now != before:
            return now
        page.wait_for_timeout(100)
        waited += 100
    return _state(explorer)


def _move(control, back=False):
    """Move a control one step as a reader would (the next option of a dropdown; an arrow key on a
    slider), or ``back`` to where it was; returns what was done."""
    if control.evaluate("el => el.tagName") == "SELECT":
        if back:
            target = int(control.get_attribute("data-was"))
        else:
            index, n = control.evaluate("el => [el.selectedIndex, el.options.length]")
            control.evaluate("el => { el.dataset.was = el.selectedIndex; }")
            target = (index + 1) % n
        control.select_option(index=target)
        return f"option {target}"
    if back:
        key = control.get_attribute("data-back")
    else:
        value, top = control.evaluate("el => [Number(el.value), Number(el.max)]")
        key = "ArrowRight" if value < top else "ArrowLeft"
        control.evaluate("(el, k) => { el.dataset.back = k; }", "ArrowLeft" if key == "ArrowRight" else "ArrowRight")
    control.focus()
    control.press(key)
    return key


@pytest.mark.parametrize("name", explorer_pages())
def test_explorers_respond_offline(browser, name):
    page_file = HTML / name
    if not page_file.exists():
        _skip_or_fail(f"{name} is not built (build the book first: make book-executed)")
    source = page_file.read_text(encoding="utf-8")
    ids = MARKER.findall(source)
    assert len(ids) >= EXPECTED.get(name, 1), f"{name}: expected {EXPECTED.get(name)} explorers, found {len(ids)}"
    assert re.search(r'<script src="(\.\./)*_static/plotly/plotly\.min\.js', source), \
        f"{name}: plotly.js is not served from the book"

    context, page, errors, missing, outside = _open(browser, page_file)
    assert page.evaluate("() => window.Plotly && window.Plotly.version") == _plotly_version(), \
        f"{name}: not the vendored plotly.js"

    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = name.replace("/", "__").removesuffix(".html")
    for k, key in enumerate(ids):
        explorer = page.locator(f'[data-mt-explorer="{key}"]')
        explorer.scroll_into_view_if_needed()
        initial = _wait_for_change(page, explorer, None)
        assert initial is not None, f"{name}: explorer {k + 1} drew no figure"
        assert json.loads(initial)["data"], f"{name}: explorer {k + 1} has an empty figure"
        explorer.screenshot(path=str(SHOTS / f"{stem}__explorer{k + 1}__before.png"))
        controls = explorer.locator("[data-control]")
        assert controls.count() >= 1, f"{name}: explorer {k + 1} has no controls"
        for c in range(controls.count()):
            control = controls.nth(c)
            label = control.get_attribute("aria-label")
            done = _move(control)
            moved = _wait_for_change(page, explorer, initial)
            assert moved != initial, f"{name}: explorer {k + 1}, control {label!r}: {done} changed nothing"
            explorer.screenshot(path=str(SHOTS / f"{stem}__explorer{k + 1}__after_{re.sub(r'[^a-z]+', '_', label.lower())}.png"))
            _move(control, back=True)
            back = _wait_for_change(page, explorer, moved)
            assert back == initial, f"{name}: explorer {k + 1}, control {label!r}: moving back did not restore the figure"
    _assert_clean(name, errors, missing, outside)
    context.close()


def _open(browser, page_file):
    """Open a built page in a fresh browser profile with the network off; returns the context, the
    page, and the lists that fill with console errors, failed requests and requests for the network."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    context.set_offline(True)  # the network is off: everything must come from the book itself
    outside, errors, missing = [], [], []
    context.route(re.compile(r"^(?!file:).*"), lambda route: (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: missing.append(r.url))
    page.goto(page_file.as_uri(), wait_until="load")
    return context, page, errors, missing, outside


def _assert_clean(name, errors, missing, outside):
    # nothing tolerated: the theme's "Got invalid theme mode" (html_context.default_mode in _config.yml)
    # and the widget manager's missing Font Awesome files (book/_static/widgets/asset-paths.js) are fixed
    assert not errors, f"{name}: errors in the browser console: {errors[:3]}"
    assert not missing, f"{name}: resources missing: {sorted(set(missing))[:3]}"
    assert not outside, f"{name}: the page asked the network for {outside[:3]}"


def all_pages() -> list[str]:
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html") if "_static" not in p.parts) if HTML.exists() else []


@pytest.mark.parametrize("name", all_pages())
def test_every_page_has_a_clean_console_offline(browser, name):
    """Every built page, opened in a fresh profile with the network off: no console error, no file
    missing, no request for the network (the widget views' pages included)."""
    context, page, errors, missing, outside = _open(browser, HTML / name)
    page.wait_for_timeout(500)  # late requests (fonts, the widget manager's views) have landed
    _assert_clean(name, errors, missing, outside)
    context.close()


def _plotly_version() -> str:
    from mini_transformer.notebook.explorers import PLOTLY_JS_VERSION

    return PLOTLY_JS_VERSION


def test_a_dead_explorer_is_caught(browser, tmp_path):
    """The check above fails on an explorer whose controls do nothing (no Plotly, no redraw)."""
    page_file = tmp_path / "dead.html"
    page_file.write_text('<html><body><div data-mt-explorer="x"><input type="range" data-control="0" min="0" max="3" '
                         'value="0" aria-label="t"><div class="mt-explorer-figure"></div></div></body></html>')
    page = browser.new_page()
    page.goto(page_file.as_uri())
    explorer = page.locator('[data-mt-explorer="x"]')
    before = _state(explorer)
    _move(explorer.locator("[data-control]").first)
    assert _wait_for_change(page, explorer, before, timeout_ms=300) == before  # nothing changed: the test would fail
    page.close()
