"""Serve plotly.js from the book itself, on the pages that have an explorer and only there.

The explorers of ``mini_transformer.notebook.explorers`` are HTML outputs with a ``data-mt-explorer``
attribute; they carry their data but not plotly.js. This adds the vendored copy
(``book/_static/plotly/plotly.min.js``, see THIRD_PARTY.md) to those pages' ``<head>``, so their
controls work offline and pages without an explorer do not load 4.7 MB of JavaScript.
"""

PLOTLY = "plotly/plotly.min.js"
MARKER = "data-mt-explorer="


def _add_plotly(app, pagename, templatename, context, doctree):
    if MARKER in context.get("body", ""):
        app.add_js_file(PLOTLY, priority=400)  # a page-local script (Sphinx ≥ 3.5), before myst-nb's


def setup(app):
    app.connect("html-page-context", _add_plotly)  # before unique_scripts (priority 900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
