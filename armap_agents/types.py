"""Plain data that flows between the stages: steps, trajectories, triplets.

Everything here is a pydantic model with a JSON round-trip, so it can live in JSONL files,
in LangGraph state and in any checkpointer. :func:`render_trajectory` is the one canonical
text serialization of a trajectory, used by the reward model and by the memory.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Evaluation",
    "Observation",
    "Step",
    "StepResult",
    "Trajectory",
    "Triplet",
    "render_trajectory",
    "render_intent",
    "render_example",
]


class Observation(BaseModel):
    """What an environment shows after ``reset``: the task instruction and the first view."""

    model_config = ConfigDict(frozen=True)

    instruction: str
    text: str


class StepResult(BaseModel):
    """What an environment returns for one action.

    ``valid`` is False when the action was illegal or unparsable; ``observation`` then says
    why and the state is unchanged.
    """

    model_config = ConfigDict(frozen=True)

    observation: str
    done: bool = False
    valid: bool = True
    info: dict[str, Any] = Field(default_factory=dict)


class Evaluation(BaseModel):
    """The environment's own judgement of an episode. For metrics only, never for planning."""

    model_config = ConfigDict(frozen=True)

    success: bool
    score: float


class Step(BaseModel):
    """One action and the observation it produced."""

    model_config = ConfigDict(frozen=True)

    action: str
    observation: str
    valid: bool = True


class Trajectory(BaseModel):
    """One episode: the task, the intent it is judged against, and the steps taken.

    ``evaluation`` holds the environment's verdict (metrics only); it never enters the text
    the reward model or the memory sees. ``error`` is set when the episode failed (the
    environment or the policy raised): such a trajectory is kept for the record but is never
    a planner's choice. Files written before these fields existed kept ``error`` and
    ``policy_calls`` in ``info``; they are read into the fields.
    """

    task_id: str
    intent: str
    initial_observation: str
    steps: list[Step] = Field(default_factory=list)
    episode_id: str = ""
    done: bool = False
    evaluation: Evaluation | None = None
    policy_calls: int = Field(0, ge=0)
    """How many decisions the policy made (replayed actions are not counted)."""
    error: str | None = None
    """Why the episode failed (``"ExceptionType: message"``), or None when it did not."""
    info: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fields_from_info(cls, data: Any) -> Any:
        """Older files: ``info["error"]`` and ``info["policy_calls"]`` become the fields."""
        if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
            return data
        moved = [k for k in ("error", "policy_calls") if k in data["info"]]
        if not moved:
            return data
        info = {k: v for k, v in data["info"].items() if k not in moved}
        lifted = {k: data["info"][k] for k in moved if data.get(k) is None}
        return {**data, **lifted, "info": info}

    @property
    def failed(self) -> bool:
        """Whether the episode failed (see ``error``)."""
        return self.error is not None

    @property
    def actions(self) -> list[str]:
        return [s.action for s in self.steps]

    @property
    def final_observation(self) -> str:
        return self.steps[-1].observation if self.steps else self.initial_observation

    def prefix(self, n_steps: int) -> Trajectory:
        """The first ``n_steps`` steps as a new (unfinished, unevaluated) trajectory."""
        return self.model_copy(
            update={
                "steps": list(self.steps[:n_steps]),
                "done": self.done and n_steps >= len(self.steps),
                "evaluation": self.evaluation if n_steps >= len(self.steps) else None,
            }
        )

    def render(self) -> str:
        """The canonical text of the steps (see :func:`render_trajectory`)."""
        return render_trajectory(self)


class Triplet(BaseModel):
    """A reward-model training example: ``positive`` fulfils ``intent``, ``negative`` does not."""

    intent: str
    positive: Trajectory
    negative: Trajectory
    task_id: str = ""
    source: str = ""

    def key(self) -> tuple[str, str, str]:
        """Identity for deduplication: the texts the reward model actually sees."""
        return (self.intent, self.positive.render(), self.negative.render())


def render_trajectory(trajectory: Trajectory) -> str:
    """Canonical text of a trajectory's observations and actions.

    The intent is kept apart (see :func:`render_example`) so a reward model can truncate the
    oldest steps of a long trajectory without losing the task.
    """
    lines = [f"Observation: {trajectory.initial_observation}"]
    for step in trajectory.steps:
        lines.append(f"Action: {step.action}")
        lines.append(f"Observation: {step.observation}")
    return "\n".join(lines)


def render_intent(intent: str) -> str:
    """Canonical text of an intent as the head of a single-string example (ends in a newline).

    ``render_intent(intent) + render_trajectory(t) == render_example(intent, t)``, so exports
    with a separate prompt column (TRL's preference format) concatenate to the same text.
    """
    return f"Task: {intent}\n"


def render_example(intent: str, trajectory: Trajectory) -> str:
    """Canonical single-string text of ``(intent, trajectory)``, e.g. for embedding."""
    return render_intent(intent) + render_trajectory(trajectory)
