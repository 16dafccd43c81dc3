"""The package's layers: imports run one way (book helpers → experiments → analysis and tasks →
the paper), and the research tools reach the residual stream only through hook points."""

import ast
import pathlib

import pytest
import torch

import mini_transformer as mt
from conftest import randomize_, small_config
from mini_transformer.analysis.paths import StateGraph

PACKAGE = pathlib.Path(mt.__file__).parent
# the paper's Algorithms 1–15 and what they stand on: the bottom layer
PAPER = {"algorithms", "models", "hooks", "config", "validation", "training", "inference", "serialization",
         "reference"}
LEVEL = {"paper": 0, "tasks": 1, "analysis": 1, "experiments": 2, "notebook": 3}


def layer_of(module: str) -> str:
    """``"paper"`` (any module at the top of the package), ``"tasks"``, ``"analysis"``,
    ``"experiments"`` or ``"notebook"``."""
    first = module.split(".")[0]
    return first if first in LEVEL else "paper"


def package_imports(path: pathlib.Path) -> set[str]:
    """The package modules a file imports (relative imports resolved), e.g. ``{"analysis.myopia"}``."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
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


def upward_imports(path: pathlib.Path) -> list[str]:
    """The imports of ``path`` that reach a higher layer than its own."""
    mine = layer_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    return sorted(m for m in package_imports(path) if LEVEL[layer_of(m)] > LEVEL[mine])


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    assert not upward_imports(path), f"{path.relative_to(PACKAGE)} imports upward: {upward_imports(path)}"


def test_the_import_checker_sees_an_upward_import():
    """The test above can fail: a paper module that imported the analysis layer is caught."""
    fake = PACKAGE / "_fake_upward.py"
    try:
        fake.write_text("from .analysis.myopia import myopic_attention\nfrom . import notebook\n")
        assert upward_imports(fake) == ["analysis.myopia", "notebook"]
    finally:
        fake.unlink()


def test_tools_reach_the_stream_only_through_hook_points():
    for name in ("gradflow", "paths", "myopia", "probes"):
        source = (PACKAGE / "analysis" / f"{name}.py").read_text()
        assert "perturbations=" not in source and "return_trace" not in source, name
    assert "perturbations" not in (PACKAGE / "models.py").read_text()


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
