"""ExpertPolicy and the ExpertHook protocol on a tiny fake environment (unit tests; each
built-in environment's expert is tested with that environment)."""

from __future__ import annotations

import pytest

from armap_agents import _builders as build
from armap_agents.environments.base import ExpertHook, expert_action
from armap_agents.errors import ConfigError
from armap_agents.graphs.mcts import MCTSConfig, build_mcts_graph
from armap_agents.policies import ExpertPolicy, RandomPolicy, uses_expert
from armap_agents.rollout import run_episode
from armap_agents.testing import ConstantReward
from armap_agents.types import Evaluation, Observation, StepResult


class FakeHallway:
    """A fake environment for unit tests: walk right from 0 to 4 (no expert)."""

    name = "corridor"

    def __init__(self) -> None:
        self.position = 0
        self.asked = 0

    def task_ids(self, split: str = "test") -> list[str]:
        return ["t0", "t1"]

    def reset(self, task_id: str) -> Observation:
        self.position = 0
        return Observation(instruction="reach 4", text="at 0")

    def valid_actions(self) -> list[str]:
        return ["left", "right", "wait"]

    def step(self, action: str) -> StepResult:
        if action not in self.valid_actions():
            return StepResult(observation="no", valid=False)
        self.position = max(0, self.position + {"left": -1, "right": 1, "wait": 0}[action])
        return StepResult(observation=f"at {self.position}", done=self.position == 4)

    def evaluate(self) -> Evaluation:
        return Evaluation(success=self.position == 4, score=self.position / 4)

    def close(self) -> None:
        pass


class FakeCorridor(FakeHallway):
    """The fake hallway with an expert: ``right`` from wherever the agent is (it counts how
    often it was asked)."""

    def expert_action(self) -> str | None:
        self.asked += 1
        return None if self.position == 4 else "right"


def test_epsilon_zero_is_the_expert_and_recovers_after_a_forced_detour() -> None:
    env = FakeCorridor()
    assert isinstance(env, ExpertHook) and expert_action(env) == "right"
    trajectory = run_episode(env, ExpertPolicy(0.0), "t0", seed=1, max_steps=10)
    assert trajectory.actions == ["right"] * 4 and trajectory.evaluation.success
    detour = run_episode(env, ExpertPolicy(0.0), "t0", seed=1, max_steps=10, prefix=["left"])
    assert detour.actions == ["left", "right", "right", "right", "right"]
    assert detour.policy_calls == 4  # the replayed detour is not a decision


def test_epsilon_mixes_random_steps_deterministically_per_seed() -> None:
    env = FakeCorridor()
    runs = [run_episode(env, ExpertPolicy(0.5), "t0", seed=s, max_steps=12) for s in range(20)]
    again = [run_episode(env, ExpertPolicy(0.5), "t0", seed=s, max_steps=12) for s in range(20)]
    assert [t.actions for t in runs] == [t.actions for t in again]
    actions = [a for t in runs for a in t.actions]
    share = actions.count("right") / len(actions)
    # expert 1/2 of the time, and a random pick of "right" 1/3 of the other half: ~2/3
    assert 0.5 < share < 0.85, share
    assert {"left", "wait"} <= set(actions)
    # epsilon 1 is the random policy's action distribution; greedy is the expert's action
    assert run_episode(env, ExpertPolicy(1.0), "t0", seed=3, greedy=True).actions[0] == "right"


def test_random_steps_when_the_expert_has_no_action() -> None:
    class NoIdea(FakeCorridor):
        def expert_action(self) -> str | None:
            return None

    trajectory = run_episode(NoIdea(), ExpertPolicy(0.0), "t0", seed=0, max_steps=5)
    assert len(trajectory.steps) == 5 and trajectory.error is None


def test_the_hook_is_asked_only_for_a_policy_that_uses_it() -> None:
    env = FakeCorridor()
    run_episode(env, RandomPolicy(), "t0", seed=0, max_steps=5)
    assert env.asked == 0 and not uses_expert(RandomPolicy()) and uses_expert(ExpertPolicy(0.2))


def test_mcts_expansions_ask_the_expert() -> None:
    env = FakeCorridor()
    graph = build_mcts_graph(
        ExpertPolicy(0.0),
        lambda: env,
        ConstantReward(0.5),
        MCTSConfig(iterations=3, max_steps=6, expansion_k=2, evaluation="partial"),
    )
    state = graph.invoke({"task_id": "t0"})
    assert env.asked > 0 and state["best"].actions[0] == "right"


def test_an_environment_without_the_hook_is_a_config_error_before_any_step() -> None:
    env = FakeHallway()
    with pytest.raises(ConfigError, match="expert_action"):
        run_episode(env, ExpertPolicy(0.0), "t0", seed=0)
    assert env.position == 0


@pytest.mark.parametrize(
    ("spec", "epsilon"), [("expert:0.3", 0.3), ("expert", 0.0), ("expert:1", 1.0)]
)
def test_expert_specs(spec: str, epsilon: float) -> None:
    policy = build.policy(spec)
    assert isinstance(policy, ExpertPolicy) and policy.epsilon == epsilon


@pytest.mark.parametrize("spec", ["expert:1.5", "expert:-0.1", "expert:often"])
def test_bad_expert_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="expert:EPSILON"):
        build.policy(spec)


def test_armap_explore_takes_an_expert_policy(tmp_path) -> None:
    from armap_agents._jsonl import read_jsonl
    from armap_agents.cli import main
    from armap_agents.types import Trajectory

    out = tmp_path / "t.jsonl"
    args = ["explore", "--env", "game24", "--max-tasks", "3", "--episodes-per-task", "1"]
    assert main([*args, "--policy", "expert:0", "--out", str(out)]) == 0
    trajectories = read_jsonl(out, Trajectory)
    assert len(trajectories) == 3 and all(t.evaluation.success for t in trajectories)
    assert main([*args, "--policy", "expert:2", "--out", str(tmp_path / "u.jsonl")]) == 2
