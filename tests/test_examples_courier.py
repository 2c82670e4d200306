"""The courier example: a user-written text world that declares only its horizon, so every
command uses the generic window, view and relabeler (benchmarks/critic_defaults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from armap_agents import Environment, Evaluation, RandomPolicy, run_episode
from armap_agents._import_path import load_import_path
from armap_agents.environments.defaults import environment_defaults

COURIER = f"{Path(__file__).resolve().parents[1] / 'examples' / 'courier.py'}:Courier"


def test_courier_follows_the_protocol_and_declares_only_its_horizon() -> None:
    cls = load_import_path(COURIER)
    env = cls()
    assert isinstance(env, Environment)
    assert len(env.task_ids("train")) == 300 and len(env.task_ids("test")) == 50
    assert not set(env.task_ids("train")) & set(env.task_ids("test"))
    with pytest.raises(ValueError, match="unknown split"):
        env.task_ids("dev")
    declared = environment_defaults(cls)
    assert declared.model_fields_set == {"max_steps"}  # no window: the data's
    assert not hasattr(cls, "reward_view") and not hasattr(cls, "relabeler")
    first = env.reset("3")
    assert first.instruction.startswith("Bring the ") and "Room: hall" in first.text
    bad = env.step("fly away")
    assert not bad.valid and "cannot" in bad.observation
    # deterministic per task id: the same actions reach the same observations
    again = cls()
    assert again.reset("3") == first


def _deliver(env) -> None:
    """Walk to the object (BFS over the map), take it, walk to the room, drop it."""
    from collections import deque

    def path(start: str, goal: str) -> list[str]:
        came = {start: None}
        queue = deque([start])
        while queue:
            room = queue.popleft()
            for nxt in env.MAP_FOR_TEST[room]:
                if nxt not in came:
                    came[nxt], _ = room, queue.append(nxt)
        steps, room = [], goal
        while room != start:
            steps.append(room)
            room = came[room]
        return steps[::-1]

    for room in path(env.room, env.where[env.target]):
        assert env.step(f"go {room}").valid
    assert env.step(f"take {env.target}").valid
    assert env.evaluate() == Evaluation(success=False, score=0.5)  # carried, not delivered
    for room in path(env.room, env.goal):
        assert env.step(f"go {room}").valid
    assert env.step(f"drop {env.target}").valid


def test_a_scripted_courier_delivers_and_a_random_one_sometimes_does() -> None:
    module_map = load_import_path(COURIER.replace(":Courier", ":MAP"))
    env = load_import_path(COURIER)()
    env.MAP_FOR_TEST = module_map
    for task in ("0", "5", "5001"):
        env.reset(task)
        assert env.evaluate().success is False
        _deliver(env)
        assert env.evaluate() == Evaluation(success=True, score=1.0)
    outcomes = [
        run_episode(env, RandomPolicy(), str(t), seed=s).evaluation.success
        for t in range(40)
        for s in range(2)
    ]
    assert 0 < sum(outcomes) < len(outcomes) // 2
