"""The reward model's window when nobody set it: from the lengths of the training data.

An environment may declare its window (``EnvironmentDefaults.max_length``); one that does not
gets a window that fits its own trajectories: the 95th percentile of the token lengths of the
training pairs (intent + trajectory, as the model's view renders them before any budget),
rounded up to a multiple of 32, at least :data:`MIN_WINDOW` and at most :data:`MAX_DATA_WINDOW`
(and what the backbone takes). Short trajectories train in a window as short as they are.

Why at most 128 tokens: on the two user-written worlds measured, a critic reading every action
and a clipped end state in 128 tokens picked better than one reading everything in 512
(``benchmarks/critic_defaults.py``, courier: Best-of-8 16% vs 8% of the test tasks, paired
+4 / -0, at a twelfth of the training time; the issue's rooms-and-objects world: 57% vs 22% of
the Sampling -> oracle gap). A first run has a few hundred triplets, and a longer text gives
the model more to fit by chance. An environment whose middle observations decide success
declares a longer window (WebShop, ScienceWorld and ALFWorld declare 512).

The view's character budget: when the texts fit the window, the 95th percentile of their
lengths in characters, so a text that fits in tokens is never clipped by an assumed
characters-per-token ratio; when they do not, the view's usual budget for the window
(:func:`~armap_agents.reward_view.window_budget`: every action, the end state, little of the
other observations), which picked better than a budget that fills the window with observation
text (courier: 16% vs 8%).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import NamedTuple

from armap_agents.reward_view import TrajectoryView, window_budget
from armap_agents.types import Triplet

__all__ = ["MAX_DATA_WINDOW", "MIN_WINDOW", "WINDOW_PERCENTILE", "DataWindow", "data_window"]

MIN_WINDOW = 64
"""The smallest window chosen from data, in tokens."""
MAX_DATA_WINDOW = 128
"""The largest window chosen from data, in tokens (see the module docstring)."""
WINDOW_PERCENTILE = 0.95
"""The share of training texts the window chosen from data holds whole."""
_SAMPLE = 1000
"""Triplets whose lengths are measured at most (sampled with a fixed seed)."""


class DataWindow(NamedTuple):
    """A window chosen from data: tokens, and the trajectory text's budget in characters."""

    max_length: int
    max_chars: int
    whole: float
    """The share of the measured texts that fit the window whole (the others: by the view)."""


def _percentile(values: Sequence[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def data_window(
    triplets: Sequence[Triplet], backbone: str, view: TrajectoryView | None = None
) -> DataWindow:
    """The window in tokens that holds :data:`WINDOW_PERCENTILE` of ``triplets``' texts whole,
    for ``backbone``'s tokenizer and at most its limit, and the character budget of the
    trajectory texts that goes with it (see the module docstring)."""
    from transformers import AutoConfig, AutoTokenizer

    from armap_agents.reward.model import _position_limit, backbone_source

    source, extra = backbone_source(backbone)
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    limit = _position_limit(AutoConfig.from_pretrained(source, **extra), tokenizer) or 512
    view = (view or TrajectoryView()).model_copy(update={"max_chars": None})
    sample = (
        random.Random(0).sample(list(triplets), _SAMPLE)
        if len(triplets) > _SAMPLE
        else list(triplets)
    )
    intents = [t.intent for t in sample for _ in (0, 1)]
    texts = [view.render(trajectory) for t in sample for trajectory in (t.positive, t.negative)]
    if not texts:
        return DataWindow(min(limit, MAX_DATA_WINDOW), 64, 1.0)
    encoded = tokenizer(intents, texts, truncation=False, return_token_type_ids=False)
    tokens = [len(ids) for ids in encoded["input_ids"]]
    wanted = _percentile(tokens, WINDOW_PERCENTILE)
    window = max(MIN_WINDOW, min(limit, MAX_DATA_WINDOW, 32 * math.ceil(wanted / 32)))
    fitting = [len(text) for text, n in zip(texts, tokens, strict=True) if n <= window]
    whole = len(fitting) / len(texts)
    if wanted <= window:  # the texts fit: the budget holds them whole
        return DataWindow(window, max(64, _percentile(fitting, WINDOW_PERCENTILE)), whole)
    # they do not: the view's usual budget (``window_budget``), which leaves the observations
    # little beside the actions and the end state; filling the window with more observation
    # text (476 characters instead of 307 at 128 tokens) halved courier's picks (8% vs 16%)
    return DataWindow(window, window_budget(window), whole)
