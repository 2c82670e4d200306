"""One episode of a policy in an environment: the loop every graph's worker node runs."""

from __future__ import annotations

import logging

from armap_agents._seeding import stable_seed
from armap_agents.environments.base import Environment
from armap_agents.policies import Policy, PolicyContext
from armap_agents.types import Step, Trajectory

__all__ = ["run_episode"]

logger = logging.getLogger(__name__)


def run_episode(
    env: Environment,
    policy: Policy,
    task_id: str,
    *,
    seed: int,
    max_steps: int = 10,
    greedy: bool = False,
    episode_id: str = "",
) -> Trajectory:
    """Play one episode and return its trajectory, evaluated by the environment.

    Never raises for a failing policy or environment: the episode ends there and
    ``info["error"]`` says what happened, so a run accounts for every episode.
    ``info["policy_calls"]`` counts the policy's decisions.
    """
    observation = env.reset(task_id)
    trajectory = Trajectory(
        task_id=task_id,
        intent=observation.instruction,
        initial_observation=observation.text,
        episode_id=episode_id,
    )
    steps: list[Step] = []
    info: dict = {"policy_calls": 0, "invalid_actions": 0, "seed": seed}
    done = False
    try:
        for t in range(max_steps):
            context = PolicyContext(
                task_id=task_id,
                instruction=observation.instruction,
                initial_observation=observation.text,
                steps=steps,
                valid_actions=env.valid_actions(),
            )
            choice = policy.act(context, seed=stable_seed(seed, t), greedy=greedy)
            info["policy_calls"] += 1
            result = env.step(choice.action)
            steps.append(
                Step(action=choice.action, observation=result.observation, valid=result.valid)
            )
            info["invalid_actions"] += not result.valid
            if result.done:
                done = True
                break
        evaluation = env.evaluate()
    except Exception as exc:  # noqa: BLE001 - an episode failure must not end the run
        logger.warning("episode %s of task %s failed: %r", episode_id, task_id, exc)
        info["error"] = f"{type(exc).__name__}: {exc}"
        evaluation = None
    return trajectory.model_copy(
        update={"steps": steps, "done": done, "evaluation": evaluation, "info": info}
    )
