"""The reward model's window when nobody set it: from the lengths of the training data.

An environment may declare its window (``EnvironmentDefaults.max_length``); one that does not
gets a window that fits its own trajectories: the 95th percentile of the token lengths of the
training pairs (intent + trajectory, as the model's view renders them before any budget),
rounded up to a multiple of 32, at least :data:`MIN_WINDOW` and at most what the backbone
takes. Short trajectories then train in a short window (a 128-token window costs a quarter of
a 512-token one), and long ones keep everything the backbone can read; the few longest are
fitted by the view (every action kept, observations clipped, the end state kept).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from armap_agents.reward_view import TrajectoryView
from armap_agents.types import Triplet

__all__ = ["MIN_WINDOW", "WINDOW_PERCENTILE", "data_window"]

MIN_WINDOW = 64
"""The smallest window chosen from data, in tokens."""
WINDOW_PERCENTILE = 0.95
"""The share of training texts the window chosen from data holds whole."""
_SAMPLE = 1000
"""Triplets whose lengths are measured at most (sampled with a fixed seed)."""


def data_window(
    triplets: Sequence[Triplet], backbone: str, view: TrajectoryView | None = None
) -> int:
    """The window in tokens that holds :data:`WINDOW_PERCENTILE` of ``triplets``' texts whole
    (see the module docstring), for ``backbone``'s tokenizer and at most its limit."""
    from transformers import AutoConfig, AutoTokenizer

    from armap_agents.reward.model import _position_limit, backbone_source

    source, extra = backbone_source(backbone)
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    limit = _position_limit(AutoConfig.from_pretrained(source, **extra), tokenizer) or 512
    view = view or TrajectoryView()
    sample = (
        random.Random(0).sample(list(triplets), _SAMPLE)
        if len(triplets) > _SAMPLE
        else list(triplets)
    )
    intents = [t.intent for t in sample for _ in (0, 1)]
    texts = [view.render(trajectory) for t in sample for trajectory in (t.positive, t.negative)]
    if not texts:
        return min(limit, 512)
    encoded = tokenizer(intents, texts, truncation=False, return_token_type_ids=False)
    lengths = sorted(len(ids) for ids in encoded["input_ids"])
    wanted = lengths[min(len(lengths) - 1, math.ceil(WINDOW_PERCENTILE * len(lengths)) - 1)]
    return max(MIN_WINDOW, min(limit, 32 * math.ceil(wanted / 32)))
