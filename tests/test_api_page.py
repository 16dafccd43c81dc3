"""The API reference page documents every module of the package (autodoc lists their names)."""

import pathlib
import pkgutil

import mini_transformer

API = pathlib.Path(__file__).resolve().parents[1] / "book" / "api.md"


def test_every_module_is_on_the_api_page():
    page = API.read_text()
    modules = [m.name for m in pkgutil.walk_packages(mini_transformer.__path__, "mini_transformer.")
               if not m.name.split(".")[-1].startswith("_")]
    missing = [name for name in modules if f"automodule:: {name}\n" not in page]
    assert not missing, f"add these modules to book/api.md: {missing}"
