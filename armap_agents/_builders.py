"""Policies, chat models, synthesizers, reward models and objectives from the short specs
that the CLI and the LangGraph deployment share (``random``, ``expert:0.3``,
``local:smollm2``, a model directory or ``http://`` URL, ``fewer_steps:0.5`` ...)."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Collection, Sequence
from typing import Any

from armap_agents.errors import ConfigError


def chat_model(spec: str, usage: Any = None):
    """A chat model by name whose requests ``usage`` (a UsageTracker) counts and limits."""
    from langchain_core.callbacks import BaseCallbackManager

    from armap_agents.llm import make_chat_model

    model = make_chat_model(spec)
    if usage is None:
        return model
    if isinstance(model.callbacks, BaseCallbackManager):
        model.callbacks.add_handler(usage)
    else:
        model.callbacks = [*(model.callbacks or []), usage]
    return model


def expert_epsilon(spec: str) -> float | None:
    """The epsilon of an ``expert:EPSILON`` policy spec (``expert`` alone is epsilon 0), or
    None when ``spec`` names another policy."""
    name, colon, value = spec.partition(":")
    if name != "expert":
        return None
    try:
        epsilon = float(value) if colon else 0.0
    except ValueError:
        epsilon = -1.0
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError(
            f"cannot read policy {spec!r}: write expert:EPSILON with EPSILON in [0, 1] "
            "(the probability of a random step), e.g. expert:0.3"
        )
    return epsilon


def policy(spec: str, usage: Any = None):
    """``random``, ``expert:EPSILON`` (the benchmark stand-in
    :class:`~armap_agents.policies.ExpertPolicy`) or an :class:`LLMPolicy` over the chat model
    ``spec`` names, with the structured output its provider is known to enforce."""
    from armap_agents.llm import auto_structured
    from armap_agents.policies import ExpertPolicy, LLMPolicy, RandomPolicy

    if spec == "random":
        return RandomPolicy()
    epsilon = expert_epsilon(spec)
    if epsilon is not None:
        return ExpertPolicy(epsilon)
    model = chat_model(spec, usage)
    return LLMPolicy(model, structured=auto_structured(model))


def synthesizer(
    spec: str,
    env: str | type,
    usage: Any = None,
    env_options: dict | None = None,
    relabeler: str | None = None,
    relabel_options: dict | None = None,
):
    """``relabel`` (the environment's relabeler, or the one the import path ``relabeler``
    names, built with ``relabel_options`` as checked by
    :func:`~armap_agents.synthesizers.relabeler_options`) or an LLM synthesizer by chat-model
    name."""
    from armap_agents.environments.registry import default_registry
    from armap_agents.synthesizers import LLMSynthesizer, RelabelSynthesizer, relabeler_options

    registry = default_registry()
    if spec == "relabel":
        if relabeler is not None:
            from armap_agents._import_path import load_import_path

            constructor = load_import_path(relabeler, "relabeler")
        else:
            constructor = registry.relabeler_constructor(env)
        chosen = relabeler_options(constructor, relabel_options or {})
        kwargs = {**accepted_options(constructor, env_options), **chosen}
        try:
            return RelabelSynthesizer(constructor(**kwargs))
        except ValueError as exc:  # a value the relabeler refuses (ConfigError is one)
            if not chosen or isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"--relabel-option {chosen}: {exc}") from None
    if relabeler is not None:
        raise ConfigError("--relabeler applies to --synthesizer relabel only")
    if relabel_options:
        raise ConfigError("--relabel-option applies to --synthesizer relabel only")
    from armap_agents.llm import auto_structured
    from armap_agents.synthesizers import SynthesisOutput

    model = chat_model(spec, usage)
    # llama.cpp enforces a JSON schema with a grammar: tiny local models then reply usable JSON
    response_format = (
        {"type": "json_object", "schema": SynthesisOutput.model_json_schema()}
        if auto_structured(model) == "json_object"
        else None
    )
    guide = registry.prompt_guide(env, **(env_options or {})).synthesis
    return LLMSynthesizer(model, response_format=response_format, guide=guide)


def accepted_options(constructor, options: dict | None) -> dict[str, Any]:
    """The environment options a relabeler's constructor also takes (e.g. ALFWorld's
    ``data_dir``)."""
    if not options:
        return {}
    parameters = inspect.signature(constructor).parameters
    return {k: v for k, v in options.items() if k in parameters}


def reward_model(spec: str, *, token_urls: Collection[str] | None = None):
    """A saved reward-model directory, or the URL of ``armap serve-rm`` (its token, if any,
    from ``ARMAP_RM_TOKEN``).

    ``token_urls``: the only URLs the token may be sent to (the deployment passes its
    operator's configured ones; a URL outside them raises ``ConfigError`` and no request is
    made); None (the command line) sends it to ``spec``, a URL the operator typed."""
    if str(spec).startswith(("http://", "https://")):
        from armap_agents.reward.service import TOKEN_ENV, RemoteRewardModel

        url = str(spec).rstrip("/")
        token = os.environ.get(TOKEN_ENV) or None
        if token and token_urls is not None and url not in {u.rstrip("/") for u in token_urls}:
            raise ConfigError(
                f"refusing to send {TOKEN_ENV} to {url}: it is not a reward-model URL the "
                "operator configured"
            )
        return RemoteRewardModel(url, token=token)
    from armap_agents.reward.model import RewardModel

    return RewardModel.load(spec)


def objectives(specs: Sequence[str]):
    """``fewer_steps:0.5``, ``price:-1`` (a numeric attribute; weight < 0: lower is better) or
    ``price_paid:-0.005`` (WebShop: the price of the purchase, $1,000 when nothing was bought)."""
    from armap_agents.reward.objectives import (
        Objective,
        WeightedObjective,
        fewer_steps,
        numeric_attribute,
    )

    out = []
    for spec in specs:
        name, _, weight = spec.partition(":")
        try:
            w = float(weight or 1.0)
        except ValueError:
            raise ConfigError(
                f"cannot read objective {spec!r}: write NAME or NAME:WEIGHT"
            ) from None
        if not math.isfinite(w):
            raise ConfigError(
                f"objective {spec!r} has weight {weight!r}: a weight must be a finite number"
            )
        fn: Objective
        if name == "fewer_steps":
            fn = fewer_steps
        elif name == "price_paid":
            fn = numeric_attribute("price", default=1000.0, only_if="purchased")
        else:
            fn = numeric_attribute(name)
        out.append(WeightedObjective(fn, w, name))
    return out
