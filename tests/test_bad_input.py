"""Bad input gets a clear error: a ValueError or TypeError that names the argument (or hook point, or
file) and what was expected, instead of a raw torch/pickle error, a KeyError or a silent wrong result."""

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

import mini_transformer as mt
from conftest import small_config
from mini_transformer.analysis.myopia import myopia_beta, set_myopia
from mini_transformer.experiments import (merge_tables, read_previous, resume, script_arguments)
from mini_transformer.tasks.shakespeare import CharCorpus, CharTokenizer, fixed_windows, random_windows


@pytest.fixture
def model():
    return mt.DTransformer(small_config()).eval()


def tokens(n=2, length=6):
    return torch.randint(0, 11, (n, length))


# ---------------------------------------------------------------------------------------------
# 1. hooks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("replacement, error, message", [
    (lambda X: X[:, :2], ValueError, r"hook 'L1.attn' returned a tensor of shape \(2, 2, 24\); expected .* \(2, 6, 24\)"),
    (lambda X: X.double(), TypeError, r"hook 'L1.attn' returned a tensor of dtype torch.float64 .* torch.float32"),
    (lambda X: X.tolist(), TypeError, r"hook 'L1.attn' must return None or a replacement torch.Tensor, got list"),
])
def test_a_hook_must_return_none_or_a_tensor_like_the_one_it_replaces(model, replacement, error, message):
    with mt.hooked(model, {"L1.attn": replacement}), pytest.raises(error, match=message):
        model(tokens())


def test_hooked_wants_functions_and_points_to_perturbed_for_tensors(model):
    with pytest.raises(TypeError, match=r"hook 'L1.attn' must be a function .* got Tensor; .*perturbed\(model"):
        with mt.hooked(model, {"L1.attn": torch.zeros(2, 6, 24)}):
            pass
    with pytest.raises(TypeError, match=r"deltas\['L1.attn'\] must be a torch.Tensor .* got function; .*hooked"):
        with mt.perturbed(model, {"L1.attn": lambda X: X}):
            pass


@pytest.mark.parametrize("shape", [(2, 5, 24), (2, 6, 23), (3, 2, 6, 24)])
def test_a_perturbation_of_the_wrong_shape_names_the_state_and_its_shape(model, shape):
    with mt.perturbed(model, {"L2.mlp": torch.zeros(shape)}):
        with pytest.raises(ValueError, match=r"deltas\['L2.mlp'\] has shape .* expected the state's shape "
                                             r"\(batch, ℓ, d_e\) = \(2, 6, 24\)"):
            model(tokens())


def test_a_perturbation_that_broadcasts_to_the_state_is_added(model):
    direction = torch.randn(24)
    x = tokens()
    with mt.perturbed(model, {"X0": direction}):
        _, perturbed = mt.trace(model, x)
    _, clean = mt.trace(model, x)
    torch.testing.assert_close(perturbed[0], clean[0] + direction)


def test_trace_needs_a_model_with_hook_points():
    with pytest.raises(TypeError, match="model must have hook points .* got Linear"):
        mt.trace(torch.nn.Linear(3, 3), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="model must have hook points .* got ETransformer"):
        mt.trace(mt.ETransformer(small_config()), tokens())


def test_trace_names_the_hook_points_a_model_lacks(model):
    class Partial(torch.nn.Module):  # hook points, but not one per state
        config = model.config

        def hook_points(self):
            return {"X0": model.hook_embed}

    with pytest.raises(TypeError, match=r"Partial lacks \['L1.attn'"):
        mt.trace(Partial(), tokens())


def test_state_names_takes_a_layer_count_not_a_model(model):
    with pytest.raises(TypeError, match=r"n_layers must be the number of layers .* got a DTransformer; "
                                        r"pass model.config.n_layers"):
        mt.state_names(model)
    with pytest.raises(ValueError, match="n_layers must be >= 0"):
        mt.state_names(-1)
    assert mt.state_names(1) == ["X0", "L1.attn", "L1.mlp"]


# ---------------------------------------------------------------------------------------------
# 2. pattern hooks are read-only, and a trace reports the pattern attention used
# ---------------------------------------------------------------------------------------------
def test_a_pattern_hook_that_returns_a_replacement_is_refused(model):
    with mt.hooked(model, {"L2.pattern": lambda A: torch.zeros_like(A)}):
        with pytest.raises(ValueError, match=r"hook 'L2.pattern' is read-only: .* a replacement would be ignored; "
                                             r"return None .* 'L2.attn'"):
            model(tokens())


def test_a_pattern_hook_may_read_and_the_trace_reports_the_pattern_attention_used(model):
    x = tokens()
    seen = []
    with mt.hooked(model, {"L1.pattern": lambda A: seen.append(A)}):
        logits, trace = mt.trace(model, x)
    torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
    assert seen[0] is trace.patterns[0]
    layer = model.layers[0]
    mask = mt.attention_mask("causal", x.shape[1])
    output, used = layer.attn(layer.ln_attn(trace[0]), mask=mask, need_weights=True)
    torch.testing.assert_close(trace.patterns[0], used, rtol=0, atol=0)  # the A that made the output
    torch.testing.assert_close(trace[1, "attn"], trace[0] + output, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# 3. result files and scripts
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    ('{"config": {"steps": 1', "is not valid JSON .* truncated or not a result file"),
    ('{"runs": []}', r"is not a result file of this script: expected a JSON object with the keys \['config'\], "
                     r"found \['runs'\]"),
    ("[1, 2]", "is not a result file of this script: .* found list"),
])
def test_a_truncated_or_foreign_result_file_is_named(tmp_path, content, message):
    out = tmp_path / "result.json"
    out.write_text(content)
    with pytest.raises(ValueError, match=f"'{re.escape(str(out))}' {message}"):
        read_previous(out, {"steps": 1})
    with pytest.raises(ValueError, match=f"'{re.escape(str(out))}' {message}"):
        resume(out, {"steps": 1}, ("accuracy",))


def test_khop_grid_names_a_truncated_result_file(tmp_path):
    from mini_transformer.experiments import khop_grid

    out = tmp_path / "khop.json"
    out.write_text('{"config": ')
    with pytest.raises(ValueError, match=f"'{re.escape(str(out))}' is not valid JSON"):
        khop_grid.run(khop_grid.SCALES["tiny"], out)


@pytest.mark.parametrize("script", ["filler_tokens", "continuous_thoughts"])
def test_merge_names_a_bad_file_and_wants_at_least_one(tmp_path, script):
    import importlib

    merge = importlib.import_module(f"mini_transformer.experiments.{script}").merge
    with pytest.raises(ValueError, match="paths must name at least one result file to merge, got none"):
        merge([], tmp_path / "merged.json")
    truncated, foreign = tmp_path / "truncated.json", tmp_path / "foreign.json"
    truncated.write_text('{"config": {"steps"')
    foreign.write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match=f"'{re.escape(str(truncated))}' is not valid JSON"):
        merge([truncated], tmp_path / "merged.json")
    with pytest.raises(ValueError, match=f"'{re.escape(str(foreign))}' is not a result file of this script: expected .*'seconds'"):
        merge([foreign], tmp_path / "merged.json")


def test_merge_tables_wants_results_holding_the_tables():
    with pytest.raises(ValueError, match="results must hold at least one result file's content, got none"):
        merge_tables([], ("accuracy",))
    with pytest.raises(ValueError, match=r"results\[1\] has no table 'accuracy'"):
        merge_tables([{"accuracy": {}}, {"seconds": {}}], ("accuracy",))


@pytest.mark.parametrize("script", ["filler_tokens", "precaching_pair", "precaching_sweep", "myopia_gap",
                                    "myopia_annealed"])
def test_seeds_outside_the_scale_are_refused_before_anything_runs(tmp_path, script):
    import importlib

    module = importlib.import_module(f"mini_transformer.experiments.{script}")
    out = tmp_path / "out.json"
    seeds = module.SCALES["tiny"].seeds
    with pytest.raises(ValueError, match=rf"--seeds \[7\] not in scale 'tiny'; expected some of \{list(seeds)}"):
        module.main(["--scale", "tiny", "--out", str(out), "--seeds", "0", "7"])
    assert not out.exists()


@pytest.mark.parametrize("script", ["myopia_gap", "myopia_annealed"])
def test_sizes_outside_the_scale_are_refused(tmp_path, script):
    import importlib

    module = importlib.import_module(f"mini_transformer.experiments.{script}")
    with pytest.raises(ValueError, match=r"--sizes \['XL'\] not in scale 'tiny'; expected some of \['XS', 'S'\]"):
        module.main(["--scale", "tiny", "--out", str(tmp_path / "out.json"), "--sizes", "XL"])


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_threads_must_be_positive(threads):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match=f"--threads must be >= 1, got {threads}"):
        script_arguments("doc", {"tiny": None}, ["--scale", "tiny", "--threads", threads])
    assert torch.get_num_threads() == before


def truncated_copy(path, size_fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * size_fraction)])


def test_a_truncated_checkpoint_names_the_file_and_says_to_delete_it(tmp_path):
    from mini_transformer.experiments.myopia_gap import SCALES, Phases

    phases = Phases(tmp_path, SCALES["tiny"])
    model = mt.DTransformer(small_config())
    running = tmp_path / "scratch-myopic.pt"
    torch.save({"step": 5, "model": model.state_dict(), "seconds": 1.0}, running)
    truncated_copy(running)
    with pytest.raises(ValueError, match=rf"checkpoint file '{re.escape(str(running))}' cannot be read: it is truncated "
                                         rf"or corrupted .*; delete '{re.escape(str(running))}' and run again"):
        phases.train("scratch-myopic", lambda **k: [])

    phases.finish("scratch-vanilla", {"curve": [[0, 1.0]]}, model)
    weights, record = tmp_path / "scratch-vanilla.weights.pt", tmp_path / "scratch-vanilla.json"
    assert phases.done("scratch-vanilla", mt.DTransformer(small_config())) == {"curve": [[0, 1.0]]}
    truncated_copy(weights)
    with pytest.raises(ValueError, match=rf"'{re.escape(str(weights))}' cannot be read.*delete '{re.escape(str(weights))}' "
                                         rf"and '{re.escape(str(record))}'"):
        phases.done("scratch-vanilla", mt.DTransformer(small_config()))
    truncated_copy(record)
    with pytest.raises(ValueError, match=rf"checkpoint file '{re.escape(str(record))}' cannot be read: .*JSONDecodeError"):
        phases.done("scratch-vanilla")


# ---------------------------------------------------------------------------------------------
# 4. training and data
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, error, message", [
    (dict(lr=0.0), ValueError, r"lr \(the learning rate η\) must be a real number > 0, got 0.0"),
    (dict(lr=-1e-3), ValueError, r"lr \(the learning rate η\) must be a real number > 0, got -0.001"),
    (dict(lr="0.1"), TypeError, r"lr \(the learning rate η\) must be a real number > 0, got str"),
    (dict(grad_clip=-1.0), ValueError, r"grad_clip \(the largest gradient norm\) must be a real number > 0, got -1.0"),
    (dict(grad_clip=0), ValueError, r"grad_clip \(the largest gradient norm\) must be a real number > 0, got 0.0"),
    (dict(warmup=-5), ValueError, "warmup must be >= 0, got -5"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be a real number >= 0, got -0.1"),
])
def test_training_settings_are_checked(model, options, error, message):
    with pytest.raises(error, match=message):
        mt.d_training(model, [tokens()], steps=1, progress=False, **options)


def test_make_optimizer_wants_a_positive_learning_rate(model):
    with pytest.raises(ValueError, match=r"lr \(the learning rate η\) must be a real number > 0"):
        mt.make_optimizer(model, "sgd", lr=0)


def test_an_empty_batch_is_refused_instead_of_giving_a_nan_loss(model):
    with pytest.raises(ValueError, match=r"batch 0 from batches is empty \(shapes \[\(0, 8\)\]\): the batch size "
                                         "must be >= 1"):
        mt.d_training(model, [torch.zeros(0, 8, dtype=torch.long)], steps=1, progress=False)


def test_random_windows_checks_its_arguments_at_the_call():
    ids = torch.arange(20)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        random_windows(ids, 0, 4, torch.Generator())
    with pytest.raises(ValueError, match="length 30 exceeds the text's 20 tokens"):
        random_windows(ids, 2, 30, torch.Generator())
    with pytest.raises(ValueError, match="n_windows must be >= 1, got 0"):
        fixed_windows(ids, 0, 4)


def test_an_empty_or_too_short_text_is_refused():
    with pytest.raises(ValueError, match="text must be a non-empty str .* got an empty str"):
        CharTokenizer("")
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        CharCorpus.from_text("")
    with pytest.raises(ValueError, match="text has 1 characters: too few to split .* val_fraction=0.1"):
        CharCorpus.from_text("a")


@pytest.mark.parametrize("bad", [3, -1])
def test_decode_refuses_ids_outside_the_vocabulary(bad):
    tokenizer = CharTokenizer("abc")
    assert tokenizer.decode(torch.tensor([2, 0])) == "ca"
    with pytest.raises(ValueError, match=rf"ids holds id {bad}, outside the vocabulary \[0, vocab_size=3\)"):
        tokenizer.decode([0, bad])


# ---------------------------------------------------------------------------------------------
# 5. dtypes of real-valued inputs
# ---------------------------------------------------------------------------------------------
def test_real_inputs_of_another_dtype_than_the_model_name_both():
    model = mt.DTransformer(small_config(input_dim=3, output_dim=1))
    with pytest.raises(TypeError, match="x has dtype torch.float64, but the model's parameters have dtype "
                                        "torch.float32"):
        model(torch.zeros(2, 5, 3, dtype=torch.float64))
    assert model.double()(torch.zeros(2, 5, 3, dtype=torch.float64)).dtype == torch.float64


def test_modules_name_the_dtype_of_their_input_and_their_parameters(model):
    X = torch.zeros(2, 5, 24, dtype=torch.float64)
    mask = mt.attention_mask("causal", 5)
    for module, call in [(model.final_ln, lambda m: m(X)), (model.unembedding, lambda m: m(X)),
                         (model.layers[0].mlp, lambda m: m(X)), (model.layers[0].attn, lambda m: m(X, mask=mask))]:
        name = type(module).__name__
        with pytest.raises(TypeError, match=f"X has dtype torch.float64, but the {name}'s parameters have dtype "
                                            "torch.float32"):
            call(module)


def test_algorithms_name_the_arguments_whose_dtypes_differ():
    X, W, b = torch.zeros(1, 4, 6, dtype=torch.float64), torch.zeros(6, 6), torch.zeros(1, 6)
    with pytest.raises(TypeError, match="W_q has dtype torch.float32, but X has dtype torch.float64"):
        mt.attention(X, X, W, b, W, b, W, b, mt.attention_mask("causal", 4))
    with pytest.raises(TypeError, match="gamma has dtype torch.float32, but e has dtype torch.float64"):
        mt.layer_norm(X, torch.ones(6), torch.zeros(6))
    with pytest.raises(TypeError, match="W_u has dtype torch.float32, but e has dtype torch.float64"):
        mt.unembedding(X, torch.zeros(5, 6))
    with pytest.raises(TypeError, match="W_q has dtype torch.float32, but e has dtype torch.float64"):
        mt.single_query_attention(X[0, 0], X[0], W, b[0], W, b[0], W, b[0])
    with pytest.raises(TypeError, match="W_q has dtype torch.float32, but X has dtype torch.float64"):
        mt.myopia.myopic_attention(X, X, W, b, W, b, W, b, mt.attention_mask("causal", 4))


def test_a_perturbation_of_another_dtype_names_both(model):
    with mt.perturbed(model, {"X0": torch.zeros(2, 6, 24, dtype=torch.float64)}):
        with pytest.raises(TypeError, match=r"deltas\['X0'\] has dtype torch.float64, but the state has dtype "
                                            "torch.float32"):
            model(tokens())


# ---------------------------------------------------------------------------------------------
# 6. derived sizes follow what they derive from
# ---------------------------------------------------------------------------------------------
def test_derived_sizes_follow_replace():
    cfg = mt.TransformerConfig(vocab_size=11, max_len=16, d_model=24, n_layers=2, n_heads=3)
    assert (cfg.d_mlp, cfg.d_final, cfg.n_dec_layers) == (96, 24, 2)
    wider = dataclasses.replace(cfg, d_model=48, n_layers=3)
    assert (wider.d_mlp, wider.d_final, wider.n_dec_layers) == (192, 48, 3)
    for cls in (mt.DTransformer, mt.ETransformer, mt.EDTransformer):  # no stale size blamed on d_final
        cls(wider)
    assert mt.DTransformer(wider).layers[0].mlp.W_mlp1.shape == (192, 48)
    explicit = dataclasses.replace(small_config(), d_model=48)  # small_config sets d_mlp=40 itself
    assert explicit.d_mlp == 40 and explicit.d_final == 48
    assert dataclasses.replace(explicit, d_mlp=None).d_mlp == 192
    assert cfg.to_dict()["d_mlp"] is None and explicit.to_dict()["d_mlp"] == 40


def test_a_saved_model_with_derived_sizes_loads_and_its_config_still_follows(tmp_path):
    cfg = mt.TransformerConfig(vocab_size=11, max_len=16, d_model=24, n_layers=2, n_heads=3)
    model = mt.DTransformer(cfg).eval()
    mt.save_model(model, tmp_path / "model.pt")
    loaded = mt.load_model(tmp_path / "model.pt")
    assert loaded.config == cfg and loaded.config.d_mlp == 96
    x = tokens()
    assert torch.equal(loaded(x), model(x))
    assert dataclasses.replace(loaded.config, d_model=48).d_mlp == 192


def test_a_file_with_explicit_derived_sizes_still_loads(tmp_path):
    cfg = mt.TransformerConfig(vocab_size=11, max_len=16, d_model=24, n_layers=2, n_heads=3)
    payload = {"format": 1, "class": "DTransformer", "config": {**cfg.to_dict(), "d_mlp": 96, "d_final": 24,
                                                                "n_dec_layers": 2},  # as files were written before
               "state_dict": mt.DTransformer(cfg).state_dict()}
    torch.save(payload, tmp_path / "old.pt")
    assert mt.load_model(tmp_path / "old.pt").config == cfg


# ---------------------------------------------------------------------------------------------
# 7. load_model's map_location
# ---------------------------------------------------------------------------------------------
def test_a_bad_map_location_is_named_not_the_file(tmp_path, model):
    path = tmp_path / "model.pt"
    mt.save_model(model, path)
    with pytest.raises(ValueError, match=r"map_location='gpu' is not a device available here \(use e.g. 'cpu'\)"):
        mt.load_model(path, map_location="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="map_location='cuda' is not a device available here"):
            mt.load_model(path, map_location="cuda")
    with pytest.raises(TypeError, match="map_location must be a device such as 'cpu' .* got float"):
        mt.load_model(path, map_location=1.5)
    assert mt.load_model(path, map_location=torch.device("cpu")).config == model.config


# ---------------------------------------------------------------------------------------------
# 8. β of any real number type
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [np.float32(0.25), np.float64(0.25), torch.tensor(0.25),
                                  torch.tensor(0.25, dtype=torch.float64), 0.25])
def test_beta_may_be_any_real_number_type(model, beta):
    set_myopia(model, beta)
    assert myopia_beta(model) == 0.25 and isinstance(myopia_beta(model), float)


def test_beta_zero_and_one_as_numpy_and_tensor(model):
    set_myopia(model, np.int64(0))
    assert myopia_beta(model) == 0.0
    set_myopia(model, torch.tensor(1.0))
    assert model.layers[0].attn.kernel is None


@pytest.mark.parametrize("beta, error", [(True, TypeError), (np.bool_(False), TypeError), ("0.5", TypeError),
                                         (torch.tensor([0.5]), TypeError), (np.float32(1.5), ValueError),
                                         (-0.1, ValueError), (float("nan"), ValueError)])
def test_beta_refuses_bools_strings_and_values_outside_0_1(model, beta, error):
    with pytest.raises(error, match=r"beta must be a real number in \[0, 1\]"):
        set_myopia(model, beta)
