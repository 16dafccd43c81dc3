"""The package's layers: imports run one way (book helpers → experiments → analysis and tasks →
the paper), and the research tools reach the residual stream only through hook points."""

import ast
import pathlib
import re

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config
from mini_transformer.analysis.paths import StateGraph

PACKAGE = pathlib.Path(mt.__file__).parent
# the paper's Algorithms 1–15 and what they stand on: the bottom layer, the modules at the top of the
# package (a new one must be added here on purpose: see test_the_top_of_the_package_is_the_paper)
PAPER = {"algorithms", "models", "hooks", "config", "validation", "training", "inference", "serialization",
         "reference"}
LEVEL = {"paper": 0, "tasks": 1, "analysis": 1, "experiments": 2, "notebook": 3}


def layer_of(module: str) -> str:
    """``"paper"`` (any module at the top of the package), ``"tasks"``, ``"analysis"``,
    ``"experiments"`` or ``"notebook"``."""
    first = module.split(".")[0]
    return first if first in LEVEL else "paper"


def package_imports(path: pathlib.Path, source: str | None = None) -> set[str]:
    """The package modules a file imports (relative imports resolved), e.g. ``{"analysis.myopia"}``;
    ``source`` (default: the file's text) is read as if it sat at ``path``."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [alias.name] for alias in node.names] if not node.module else [target]
                found.update(".".join(t) for t in names if t)
            elif node.module and node.module.startswith("mini_transformer."):
                found.add(node.module.removeprefix("mini_transformer."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("mini_transformer.") for a in node.names
                         if a.name.startswith("mini_transformer."))
    return found


def modules():
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE]


def module_name(path: pathlib.Path) -> str:
    """``"analysis.myopia"`` for ``PACKAGE/analysis/myopia.py``."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def upward_imports(path: pathlib.Path, source: str | None = None) -> list[str]:
    """The imports of ``path`` (or of ``source`` placed there) that reach a higher layer than its own."""
    mine = layer_of(module_name(path))
    return sorted(m for m in package_imports(path, source) if LEVEL[layer_of(m)] > LEVEL[mine])


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    assert not upward_imports(path), f"{path.relative_to(PACKAGE)} imports upward: {upward_imports(path)}"


def test_the_import_checker_sees_an_upward_import():
    """The test above can fail: a paper module that imported the analysis layer is caught (the source
    is read as if it sat in the package; no file is written)."""
    source = "from .analysis.myopia import myopic_attention\nfrom . import notebook\n"
    assert upward_imports(PACKAGE / "_fake_upward.py", source) == ["analysis.myopia", "notebook"]


def test_the_top_of_the_package_is_the_paper():
    """Every module at the top of the package is one of PAPER: ``layer_of`` puts any top-level module in
    the bottom layer, so a new one (a plotting helper, say) must not land there unnoticed."""
    assert {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"} == PAPER


# ---------------------------------------------------------------------------------------------
# The tools reach the model only through its hook points
# ---------------------------------------------------------------------------------------------
#: The DTransformer's internals: the names of its submodules and of its own parameters and buffers,
#: read off a model so that the list follows models.py (today embedding, hook_embed, layers, final_ln,
#: hook_final, unembedding). Everything deeper (attn, mlp, W_q, gamma, …) is reached through one of
#: them. ``config`` is a plain attribute, not an internal.
_MODEL = mt.DTransformer(small_config())
INTERNALS = frozenset(name for name, _ in [*_MODEL.named_children(), *_MODEL.named_parameters(recurse=False),
                                           *_MODEL.named_buffers(recurse=False)])
#: torch's own back doors into a module's internals: its private tables and the methods that walk or
#: fetch submodules by name
TORCH_TABLES = {"_modules", "_parameters", "_buffers"}
TORCH_WALKERS = {"get_submodule", "get_parameter", "get_buffer", "named_modules", "modules", "named_children",
                 "children"}
#: a parameter's or submodule's name as a string, e.g. "final_ln.gamma" or f"layers.{l}.attn.W_q"
#: (what indexes ``named_parameters()`` or a state dict)
INTERNAL_PATH = re.compile(rf"(?:{'|'.join(map(re.escape, sorted(INTERNALS)))})\.[\w.{{}}]*")

#: The modules that legitimately reach inside the model, each with its reason. An entry must still
#: reach inside (a test checks it), so the list cannot go stale.
REACH_INSIDE = {
    "analysis.compiled": "compiled models: it sets W_e, W_p, W_o, W_mlp and W_u by hand, which is its purpose",
    "analysis.untied": "the untied oracle re-runs Algorithm 10 with a parameter copy per position, by name",
    "analysis.myopia": "the myopic kernel is installed in each layer's attention; top_parameters names them",
}


def reaches_inside(source: str) -> list[str]:
    """Where ``source`` reaches into a model's internals instead of going through its hook points
    (``hooked``, ``trace``, ``perturbed``): ``["line 2: model.final_ln", …]``. Flagged are

    1. an attribute named like one of INTERNALS on any object (``model.final_ln``, ``m.layers[0].attn``,
       ``self.model.embedding.position``), or one of torch's tables (``model._modules``);
    2. a call of a method that walks or fetches submodules (``model.get_submodule("layers.0")``,
       ``model.named_modules()``);
    3. ``getattr``/``setattr``/``delattr``/``hasattr`` with a literal name starting with an internal;
    4. a string or f-string that spells a parameter's path (``P["final_ln.gamma"]``, ``f"layers.{l}."``).

    Not flagged: ``model.config``, ``model(x)``, ``model.hook_points()``, ``model.parameters()``,
    ``model.state_dict()`` (whole-model operations), and hook-point names as strings (``"final_ln"``,
    ``"L1.attn"``: they are the public API). Rule 1 looks at the attribute's name, not at the type of
    the object (which a syntax tree cannot know): the names are the model's own and no other object of
    the tools has them; one that did would fail here with its line, to be renamed."""
    found = []

    def flag(node):
        found.append((node.lineno, ast.unparse(node)))

    inside_fstrings = {id(part) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.JoinedStr)
                       for part in node.values}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (node.attr in INTERNALS or node.attr in TORCH_TABLES):
            flag(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TORCH_WALKERS:
            flag(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "setattr", "delattr", "hasattr"} and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and node.args[1].value.split(".")[0] in INTERNALS):
            flag(node)
        elif isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
            if INTERNAL_PATH.fullmatch(text):
                flag(node)
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings
              and INTERNAL_PATH.fullmatch(node.value)):
            flag(node)
    return [f"line {line}: {code}" for line, code in sorted(set(found))]


TOOLS = [p for p in modules() if layer_of(module_name(p)) != "paper"]  # tasks, analysis, experiments, notebook


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_tools_reach_the_stream_only_through_hook_points(path):
    """Every module above the paper layer (tasks, analysis, experiments, notebook) reads and changes a
    model only through its hook points and whole-model calls, as :func:`reaches_inside` checks on its
    syntax tree, except the modules of REACH_INSIDE, which must still need their entry."""
    name, found = module_name(path), reaches_inside(path.read_text())
    if name in REACH_INSIDE:
        assert found, f"{name} no longer reaches inside the model: remove it from REACH_INSIDE"
    else:
        assert not found, f"{name} reaches inside the model instead of using hook points: {found}"


def test_the_hook_point_checker_sees_a_reach_inside():
    """The test above can fail: planted reaches are flagged, and clean use of the public API is not."""
    planted = ("def last_hidden(model, X):\n"
               "    return model.final_ln(X)\n")
    assert reaches_inside(planted) == ["line 2: model.final_ln"]
    for reach in ("m.layers[0].attn.W_q", "self.model.embedding.position(8)", "model._modules['unembedding']",
                  "getattr(model, 'final_ln')", "model.get_submodule('layers.0.mlp')", "P['final_ln.gamma']",
                  "f'layers.{l}.attn.W_q'", "[n for n, _ in model.named_modules()]"):
        assert reaches_inside(reach), reach
    clean = ("n = model.config.n_layers + len(model.config.__dict__)\n"
             "with hooked(model, {'final_ln': keep, 'X0.token': feed, f'L{n}.mlp': look}):\n"
             "    logits = model(x)\n"
             "logits, trace = trace(model, x)\n"
             "points = model.hook_points()\n"
             "optimizer = torch.optim.Adam(model.parameters())\n"
             "torch.save(model.state_dict(), 'w.pt')\n"
             "sys.modules['torch']\n"
             "'the final_ln. layers are described here'\n")
    assert reaches_inside(clean) == []


def test_importing_the_package_does_not_load_the_book_helpers():
    import subprocess
    import sys

    code = "import sys, mini_transformer; print(sorted(m for m in ('matplotlib', 'ipywidgets') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("i, t", [(1, 3), (2, 5), (3, 2), (4, 6)])
def test_a_patch_through_a_hook_changes_exactly_the_predicted_cone(i, t):
    """Add a random vector to one state (i, t) at its hook point: every state in the forward cone of
    (i, t) that paths.StateGraph predicts changes, and no other state does."""
    cfg = small_config(n_layers=2)
    model = randomize_(mt.DTransformer(cfg).double()).eval()
    x = torch.randint(0, cfg.vocab_size, (1, 8), generator=torch.Generator().manual_seed(i + t))
    names = mt.state_names(cfg.n_layers)
    _, clean = mt.trace(model, x)
    delta = torch.zeros(1, 8, cfg.d_model, dtype=torch.float64)
    delta[0, t] = torch.randn(cfg.d_model, dtype=torch.float64)
    with mt.hooked(model, {names[i]: lambda X: X + delta}):
        _, patched = mt.trace(model, x)
    graph = StateGraph(cfg.n_layers, 8)
    downstream = {(j, s) for j in range(graph.n_states) for s in range(8) if (i, t) in graph.cone(j, s)}
    for j in range(graph.n_states):
        for s in range(8):
            changed = (patched.states[j][0, s] - clean.states[j][0, s]).abs().max().item() > 1e-12
            assert changed == ((j, s) in downstream), (j, s)
