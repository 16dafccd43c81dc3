"""The filler-token control of chapter 4: trained like the silent model, on the filler format."""

import torch

from mini_transformer.analysis.paths import StateGraph
from mini_transformer.experiments import depth_grid
from mini_transformer.tasks import permutations as P


def test_train_filler_trains_on_the_filler_format():
    config = depth_grid.SCALES["tiny"]
    model = depth_grid.train_filler(1, config, seed=0, progress=False)
    assert model.config.vocab_size == P.FILLER_VOCAB and model.config.max_len == 2 * config.length
    g, s = depth_grid.held_out(config)
    accuracy = P.filler_accuracy(model, g, s)
    assert accuracy.shape == (config.length,) and ((0 <= accuracy) & (accuracy <= 1)).all()
    # fillers are plain inputs: the graph of the filler sequence has the silent longest path 2L
    assert StateGraph(1, 2 * config.length).longest_path() == 2
    assert StateGraph(1, 2 * config.length, written=True).longest_path() > 2 * 2 * config.length
