"""scripts/signature_figure.py: the README's static copy of chapter 3's signature figure is drawn
from the explorer data the committed notebook holds, and shows what the chapter asserts (the
vanilla gradient of the last loss reaches position 0, the myopic one stays in the loss's column)."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("signature_figure", ROOT / "scripts" / "signature_figure.py")
signature_figure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(signature_figure)


@pytest.fixture(scope="module")
def data():
    return signature_figure.signature_spec()


def test_the_views_are_the_explorers_stored_frames(data):
    controls = {c["label"]: c["labels"] for c in data["controls"]}
    last_t = controls["loss position t (backward)"][-1]
    t = int(last_t.split()[0])
    backward = {kind: signature_figure.view(data, direction="backward pass", step=controls["step"][-1],
                                            loss_position_t_backward=last_t, gradient_backward=kind)
                for kind in ("vanilla", "myopic")}
    assert set(backward["myopic"]["data"][4]["x"]) == {t}  # the myopic gradient stays in its column
    assert min(backward["vanilla"]["data"][4]["x"]) == 0  # the vanilla one reaches the first position
    assert all(g > 0 for g in backward["vanilla"]["data"][4]["marker"]["color"])
    forward = signature_figure.view(data, direction="forward computation", step=controls["step"][-1])
    assert forward["data"][4]["x"] == [] and len(forward["data"][3]["x"]) == len(forward["data"][0]["x"])
    assert signature_figure.view(data) == signature_figure.view(data, direction="backward pass")  # initial values


def test_bad_choices_name_the_control(data):
    with pytest.raises(ValueError, match="direction must be one of"):
        signature_figure.view(data, direction="sideways")
    with pytest.raises(ValueError, match="no control named"):
        signature_figure.view(data, colour="red")
    with pytest.raises(ValueError, match="direction"):
        signature_figure.signature_spec(ROOT / "chapters" / "01_formal_algorithms.ipynb")


def test_it_renders_a_png(data, tmp_path):
    out = signature_figure.render(data, tmp_path / "figure.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    assert (ROOT / "book" / "images" / "signature_figure.png").exists()  # the committed copy README.md shows
