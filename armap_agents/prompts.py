"""Environment-specific text for the LLM prompts, and structured-output formats for actions.

The generic prompts (:func:`~armap_agents.policies.default_action_prompt`,
:func:`~armap_agents.synthesizers.default_synthesis_prompt`) know nothing about an environment.
An environment teaches them its conventions by carrying a :class:`PromptGuide` as its
``prompt_guide`` attribute::

    class MyEnv:
        name = "my-env"
        prompt_guide = PromptGuide(
            action="Actions are `go <room>` or `take <item>`. Example: Action: go kitchen",
            synthesis="An intent names the item the agent ended up holding.",
        )

``policy_context`` copies ``prompt_guide.action`` into every :class:`PolicyContext` (so any
policy's prompt can use it), and the CLI gives ``prompt_guide.synthesis`` to the
:class:`~armap_agents.synthesizers.LLMSynthesizer`. For full control, pass your own
``prompt=`` builder to ``LLMPolicy`` or ``LLMSynthesizer`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from armap_agents.config import StrictConfig

__all__ = ["PromptGuide", "StructuredFormat", "action_response_format", "prompt_guide"]


class PromptGuide(StrictConfig):
    """What an environment adds to the generic prompts (plain text; may hold an example)."""

    action: str = ""
    """Added to the policy's system prompt: the action syntax, the rules, a worked example."""
    synthesis: str = ""
    """Added to the synthesizer's system prompt: how intents and negatives look here."""


def prompt_guide(env: object) -> PromptGuide:
    """``env.prompt_guide`` when the environment has one, else an empty guide."""
    guide = getattr(env, "prompt_guide", None)
    return guide if isinstance(guide, PromptGuide) else PromptGuide()


StructuredFormat = Literal["json_schema", "json_object"]
"""How a server is asked for structured output: ``"json_schema"`` is OpenAI's structured
outputs (strict schemas); ``"json_object"`` with a ``schema`` is llama.cpp's (a grammar)."""


def action_response_format(
    valid_actions: Sequence[str] | None, style: StructuredFormat
) -> dict[str, Any]:
    """A ``response_format`` constraining the reply to ``{"action": ...}``; with the valid
    actions known, to one of them (an enum), so a constrained model cannot answer off-list."""
    action: dict[str, Any] = {"type": "string"}
    if valid_actions:
        action["enum"] = list(dict.fromkeys(valid_actions))
    schema = {
        "type": "object",
        "properties": {"action": action},
        "required": ["action"],
        "additionalProperties": False,
    }
    if style == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "next_action", "strict": True, "schema": schema},
        }
    return {"type": "json_object", "schema": schema}
