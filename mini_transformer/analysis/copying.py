"""The repetition test (chapter 6): how much a model's loss on a stretch of text falls when the same
stretch has just appeared in its context.

Each test window is a segment A of real text placed twice, A + A; its control is B + A, the same
segment after a different one, B. Both have a seam between their halves and put A's characters at the
same positions, so the difference of the losses on the second half is what the repetition alone is
worth. A model that finds where the current character occurred before and reads the character after it
predicts the repeat exactly: in transformers that is the induction circuit (Olsson et al., 2022), whose
first half is a previous-token head that writes at every position s which character came before s.
(At the character level that feature also helps predict x_{s+1}, so it is partly a breadcrumb: the
test says whether the mechanism exists, not by itself which gradient built it.)
"""

from __future__ import annotations

import torch

from ..models import device_of
from ..training import window_losses


def repetition_gain(model, segments: torch.Tensor, others: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per segment A (a row of ``segments (n, h)``) with its control B (the same row of ``others``):
    the mean loss (nats) on A's characters 2 … h when A follows itself (``repeated``) and when it
    follows B (``control``), and ``gain`` = control − repeated. (A's first character in the second half
    follows the seam, so it is left out of both.)"""
    if segments.dim() != 2 or segments.shape != others.shape or segments.shape[1] < 2:
        raise ValueError(f"segments and others must be (n, h) token ids of one shape with h ≥ 2, got "
                         f"{tuple(segments.shape)} and {tuple(others.shape)}")
    if (segments == others).all(1).any():
        raise ValueError("others must differ from segments in every row (a control equal to its segment repeats it)")
    h, device = segments.shape[1], device_of(model)
    repeated = window_losses(model, torch.cat([segments, segments], 1).to(device))[:, h:].mean(1)
    control = window_losses(model, torch.cat([others, segments], 1).to(device))[:, h:].mean(1)
    return {"repeated": repeated, "control": control, "gain": control - repeated}
