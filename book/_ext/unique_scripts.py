"""Drop repeated <script> entries from every page.

sphinx-togglebutton and sphinx-thebe register their inline configuration scripts again on a later
build event (once with filename None, once with ""), so every page declared
``const THEBE_JS_URL`` twice and the browser console showed "Identifier 'THEBE_JS_URL' has already
been declared". Two entries with the same file (None and "" alike) and the same attributes are
the same script: keep the first.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", None) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
