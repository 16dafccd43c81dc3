"""Drop repeated <script> entries from every page.

sphinx-thebe registers its inline configuration script on each ``env-before-read-docs`` event;
in a Jupyter Book 1 build that event can fire twice, and the second ``const THEBE_JS_URL = …``
declaration throws "Identifier 'THEBE_JS_URL' has already been declared" in every page's console.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (str(script), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
