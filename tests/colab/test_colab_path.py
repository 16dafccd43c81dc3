"""The Colab path, as a new user meets it: a fresh environment that has PyTorch and the usual
scientific stack (as Colab does) but neither this book's package nor myst-nb. Chapter 1's first
cell, believing it runs in Colab, installs the package (here from this checkout, through
MINI_TRANSFORMER_SOURCE) and the corpus; then the whole chapter must run and its claims hold."""

import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "chapters" / "01_formal_algorithms.ipynb"
# what Colab ships already (pinned to this repository's versions, so the test is reproducible)
PREINSTALLED = ("torch", "numpy", "matplotlib", "tqdm", "ipywidgets", "ipython")


def pinned(names):
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = line.strip()
    return [pins.get(name, name) for name in names]


def chapter_as_script(path: pathlib.Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    return fake_colab + "\n\n".join(code) + "\n"


def test_chapter_1_runs_after_its_colab_setup_cell(tmp_path):
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", *pinned(PREINSTALLED)], check=True)
    missing = subprocess.run([python, "-c", "import mini_transformer"], capture_output=True)
    assert missing.returncode != 0, "the fresh environment must not have the package yet"

    script = tmp_path / "chapter1.py"
    script.write_text(chapter_as_script(CHAPTER), encoding="utf-8")
    env = dict(os.environ, MINI_TRANSFORMER_SOURCE=str(ROOT), MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([python, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"all \d+ claims hold with at least 3 standard errors", done.stdout), done.stdout[-2000:]
    torch_version = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True).stdout
    assert torch_version.startswith("2.13.0"), f"the set-up cell must not replace torch: {torch_version}"
    # the result files chapters 4 to 6 load travel with the installed package (no checkout in Colab)
    loads = subprocess.run([python, "-c", "from mini_transformer.experiments import depth_grid, myopia_gap, "
                            "precaching_pair as pair; "
                            "print(sorted(depth_grid.load()['silent']), sorted(myopia_gap.load()['sizes'])); "
                            "print('pair', pair.load_arm(pair.RESULTS / 'precaching_pair_small.json', 'myopic', 2) "
                            "is not None)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert loads.returncode == 0, loads.stderr[-2000:]
    assert "'1', '2', '3', '4'" in loads.stdout
    assert "pair True" in loads.stdout  # chapter 5's trained models travel too
