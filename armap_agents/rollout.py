"""One episode of a policy in an environment: the loop every graph's worker node runs.

:func:`run_episode` optionally replays a fixed action prefix first (no policy calls), which is
how planners without state copies reach a search-tree node: reset, then replay the node's
actions. :func:`replay` does only that part. :func:`usable_candidates` is the planners' one
rule for failed episodes: never chosen, never scored, an error when none is left.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from armap_agents._scrub import scrub_secrets
from armap_agents._seeding import stable_seed
from armap_agents.environments.base import Environment, expert_action, require_expert_hook
from armap_agents.environments.defaults import horizon
from armap_agents.errors import AllCandidatesFailed, BudgetExceeded
from armap_agents.policies import Policy, PolicyContext, uses_expert
from armap_agents.prompts import prompt_guide
from armap_agents.types import Observation, Step, Trajectory

__all__ = ["policy_context", "replay", "run_episode", "usable_candidates"]

logger = logging.getLogger(__name__)


def replay(
    env: Environment, task_id: str, actions: Sequence[str]
) -> tuple[Observation, list[Step], bool]:
    """Reset ``env`` to ``task_id`` and replay ``actions``: ``(first observation, steps, done)``."""
    observation = env.reset(task_id)
    steps: list[Step] = []
    done = False
    for action in actions:
        result = env.step(action)
        steps.append(Step(action=action, observation=result.observation, valid=result.valid))
        done = result.done
    return observation, steps, done


def policy_context(
    env: Environment,
    task_id: str,
    observation: Observation,
    steps: Sequence[Step],
    notes: Sequence[str] = (),
    *,
    expert: bool = False,
) -> PolicyContext:
    """What the policy sees in ``env``'s current state; ``expert=True`` also asks the
    environment's expert hook (for a policy that :func:`~armap_agents.policies.uses_expert`)."""
    return PolicyContext(
        task_id=task_id,
        instruction=observation.instruction,
        initial_observation=observation.text,
        steps=list(steps),
        valid_actions=env.valid_actions(),
        notes=list(notes),
        guide=prompt_guide(env).action,
        expert_action=expert_action(env) if expert else None,
    )


def run_episode(
    env: Environment,
    policy: Policy,
    task_id: str,
    *,
    seed: int,
    max_steps: int | None = None,
    greedy: bool = False,
    episode_id: str = "",
    prefix: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> Trajectory:
    """Play one episode and return its trajectory, evaluated by the environment.

    ``prefix`` actions are replayed first without asking the policy; ``max_steps`` counts them
    (None: the environment's horizon, see :func:`~armap_agents.environments.defaults.horizon`).
    ``notes`` (e.g. reflections on earlier attempts) are shown to the policy at every step.
    A failing policy or environment ends the episode there and its ``error`` says what
    happened, so a run accounts for every episode; a spent usage budget
    (:class:`~armap_agents.errors.BudgetExceeded`) is raised instead: it stops the whole run.
    ``policy_calls`` counts the policy's decisions.
    """
    info: dict = {"invalid_actions": 0, "seed": seed}
    observation = Observation(instruction="", text="")
    steps: list[Step] = []
    done = False
    evaluation = None
    policy_calls = 0
    error = None
    expert = uses_expert(policy)
    if expert:
        require_expert_hook(env)  # a configuration error, not this episode's failure
    try:
        limit = horizon(env, max_steps)
        observation, steps, done = replay(env, task_id, prefix)
        while not done and len(steps) < limit:
            context = policy_context(env, task_id, observation, steps, notes, expert=expert)
            choice = policy.act(context, seed=stable_seed(seed, len(steps)), greedy=greedy)
            policy_calls += 1
            result = env.step(choice.action)
            steps.append(
                Step(action=choice.action, observation=result.observation, valid=result.valid)
            )
            info["invalid_actions"] += not result.valid
            if result.valid and result.info:
                info["env"] = result.info  # what the environment reported last (e.g. a price)
            done = result.done
        evaluation = env.evaluate()
    except BudgetExceeded:
        raise  # not this episode's failure: the run has to stop
    except Exception as exc:  # noqa: BLE001 - an episode failure must not end the run
        error = scrub_secrets(f"{type(exc).__name__}: {exc}")  # it is written to files
        logger.warning("episode %s of task %s failed: %s", episode_id, task_id, error)
    return Trajectory(
        task_id=task_id,
        intent=observation.instruction,
        initial_observation=observation.text,
        steps=steps,
        episode_id=episode_id,
        done=done,
        evaluation=evaluation,
        policy_calls=policy_calls,
        error=error,
        info=info,
    )


def usable_candidates(candidates: Sequence[Trajectory], task_id: str) -> list[int]:
    """Indices of the candidates that did not fail, in order: the only ones a planner scores
    or chooses. All of them reached ``reset``, so each carries the task's intent.

    Raises :class:`~armap_agents.errors.AllCandidatesFailed` (with every error and the policy
    calls spent) when there is none.
    """
    usable = [i for i, c in enumerate(candidates) if c.error is None]
    if not usable:
        errors = [c.error or "" for c in candidates]
        raise AllCandidatesFailed(
            f"all {len(candidates)} candidate episodes of task {task_id} failed "
            f"(first error: {errors[0] if errors else 'none run'})",
            errors,
            policy_calls=sum(c.policy_calls for c in candidates),
        )
    return usable
