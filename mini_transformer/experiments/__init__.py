"""Seeded experiment scripts that write the result files the chapters load.

Each module runs as ``python -m mini_transformer.experiments.<name> --scale small|full|tiny``:
``small`` regenerates the committed file on a CPU, ``full`` is the GPU configuration, ``tiny``
is the seconds-long configuration CI runs so the script cannot rot. The files live in
``results/`` inside the package, so an installed package (Colab) has them too.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def read_result_file(path: str | Path, keys: tuple[str, ...] = ("config",)) -> dict:
    """The content of result file ``path``: a JSON object holding ``keys``. A truncated file, or one
    that is not a result file, raises a ValueError naming it and what was expected."""
    try:
        content = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"result file {str(path)!r} is not valid JSON ({exc}): it is truncated or not a "
                         "result file; delete it (or choose another --out) to start afresh") from None
    if not isinstance(content, dict) or not set(keys) <= set(content):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{str(path)!r} is not a result file of this script: expected a JSON object with "
                         f"the keys {list(keys)}, found {found}")
    return content


def read_result_files(paths, keys: tuple[str, ...]) -> list[dict]:
    """The contents of the result files ``paths`` (at least one) to merge, each holding ``keys``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ValueError("paths must name at least one result file to merge, got none")
    return [read_result_file(path, keys) for path in paths]


def load_result(name: str, path: str | Path | None = None) -> dict:
    """Read ``path``, or the committed CPU result ``results/<name>_small.json``."""
    return read_result_file(path or RESULTS / f"{name}_small.json", keys=())


def script_arguments(doc: str, scales, argv=None, extra=None):
    """The command line every experiment script shares: ``--scale``, ``--out``, ``--threads``
    (``extra(parser)`` may add more). Sets the threads; returns ``(args, device)``."""
    from ..validation import check_choice, check_int

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", help=" | ".join(scales))
    parser.add_argument("--out", type=Path, default=None, help="result file (default: results/<name>_<scale>.json)")
    parser.add_argument("--threads", type=int, default=None)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    check_choice(args.scale, "scale", tuple(scales))
    if args.threads is not None:
        torch.set_num_threads(check_int(args.threads, "--threads", minimum=1))
    return args, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def read_previous(out: str | Path | None, config: dict) -> dict:
    """The content of an earlier run's result file ``out`` made with the same ``config`` (a dict, as
    ``dataclasses.asdict`` gives it); ``{}`` when ``out`` is None or absent. Raises ValueError when
    ``out`` holds another configuration, or is not a result file (:func:`read_result_file`)."""
    if out is None or not Path(out).exists():
        return {}
    previous = read_result_file(out)
    if previous["config"] != json.loads(json.dumps(config)):
        raise ValueError(f"{out} holds another configuration; remove it or choose another --out")
    return previous


def resume(out: str | Path | None, config: dict, tables: tuple[str, ...]) -> dict[str, dict]:
    """The result tables (``{key: value}`` per name in ``tables``) of an earlier run of the same
    ``config`` in ``out`` (:func:`read_previous`), to resume from; empty tables when there is none."""
    previous = read_previous(out, config)
    return {name: previous.get(name, {}) for name in tables}


def merge_tables(results: list[dict], tables: tuple[str, ...]) -> dict[str, dict]:
    """Union of the tables named in ``tables`` over several result files' contents (later wins)."""
    if not results:
        raise ValueError("results must hold at least one result file's content, got none")
    merged = {name: {} for name in tables}
    for i, result in enumerate(results):
        for name in tables:
            if name not in result:
                raise ValueError(f"results[{i}] has no table {name!r}; expected the tables {list(tables)}")
            merged[name].update(result[name])
    return merged


def check_selection(values, name: str, allowed, scale: str) -> tuple | None:
    """``values`` chosen on the command line (``--seeds``, ``--sizes``), as a tuple (None when not given):
    each must be one of the scale's ``allowed``, else there would be nothing to run and an empty file."""
    if not values:
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"{name} {unknown} not in scale {scale!r}; expected some of {list(allowed)}")
    return tuple(values)


def sizes_seeds_main(name: str, doc: str, scales, run, argv=None) -> Path:
    """The command line of a script whose ``run(config, out, sizes=, seeds=, device=, checkpoints=,
    checkpoint_every=)`` trains one (model size, seed) at a time, resumably: ``--scale``, ``--out``,
    ``--threads``, ``--sizes``, ``--seeds`` (only these of the scale), ``--checkpoints DIR`` and
    ``--checkpoint-every``; writes ``results/<name>_<scale>.json`` (or ``--out``) and returns its path."""
    def extra(parser):
        parser.add_argument("--sizes", nargs="*", default=None, help="only these sizes (default: all)")
        parser.add_argument("--seeds", nargs="*", type=int, default=None, help="only these seeds (default: all)")
        parser.add_argument("--checkpoints", type=Path, default=None,
                            help="directory for mid-run checkpoints: a killed run goes on from the last one")
        parser.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")

    args, device = script_arguments(doc, scales, argv, extra)
    out = args.out or RESULTS / f"{name}_{args.scale}.json"
    config = scales[args.scale]
    run(config, out, sizes=check_selection(args.sizes, "--sizes", [size.name for size in config.sizes], args.scale),
        seeds=check_selection(args.seeds, "--seeds", config.seeds, args.scale), device=device,
        checkpoints=args.checkpoints, checkpoint_every=args.checkpoint_every)
    print(f"wrote {out}")
    return out


def seeds_main(name: str, doc: str, scales, run, argv=None) -> Path:
    """The command line of a script whose ``run(config, out, device, scale=, seeds=)`` trains one
    seed at a time: ``--scale``, ``--out``, ``--threads`` and ``--seeds`` (only these seeds of the
    scale); writes ``results/<name>_<scale>.json`` (or ``--out``) and returns its path."""
    def extra(parser):
        parser.add_argument("--seeds", type=int, nargs="+", default=None, help="only these seeds of the scale")

    args, device = script_arguments(doc, scales, argv, extra)
    out = args.out or RESULTS / f"{name}_{args.scale}.json"
    seeds = check_selection(args.seeds, "--seeds", scales[args.scale].seeds, args.scale)
    return write_result(run(scales[args.scale], out, device, scale=args.scale, seeds=seeds), name, args.scale, out)


def write_result(result: dict, name: str, scale: str, out: Path | None = None, indent: int | None = None) -> Path:
    """Write ``result`` (with its scale, device and thread count) as JSON; returns the path."""
    result.update(scale=scale, threads=torch.get_num_threads())
    out = out or RESULTS / f"{name}_{scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=indent, separators=None if indent else (",", ":"))
    write_atomic(out, lambda f: f.write(text.encode()))
    print(f"wrote {out}")
    return out


def write_atomic(path: Path, write) -> None:
    """``write(f)`` into a temporary file beside ``path``, then rename it to ``path``: a process killed
    mid-write leaves the old file whole."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as f:
        write(f)
    os.replace(temporary, path)
