"""Environment plumbing shared by every environment: pooling, task selection, the registry."""

from __future__ import annotations

import pytest

from armap_agents.environments import EnvPool, Game24Env, default_registry, select_tasks
from armap_agents.errors import ConfigError
from armap_agents.graphs.explore import ExploreConfig, explore


class _CountingGame24(Game24Env):
    closed = 0

    def close(self) -> None:
        type(self).closed += 1


def test_a_pool_reuses_closed_environments_and_closes_the_idle_ones() -> None:
    _CountingGame24.closed = 0
    pool = EnvPool(_CountingGame24, max_idle=1)
    a, b = pool(), pool()
    assert pool.created == 2 and a.reset("1").text == "Numbers left: 1 1 4 6"
    a.close()
    a.close()  # closing twice returns it once
    b.close()  # over max_idle: really closed
    assert _CountingGame24.closed == 1
    c = pool()
    assert pool.created == 2 and c.reset("2").text  # the idle one, reused
    with pytest.raises(AttributeError, match="closed"):
        a.reset("1")
    c.close()
    pool.close()
    assert _CountingGame24.closed == 2


def test_exploration_through_a_pool_builds_few_environments(tmp_path) -> None:
    pool = EnvPool(Game24Env, max_idle=2)
    config = ExploreConfig(task_ids=["1", "2", "3"], episodes_per_task=2, max_concurrency=2)
    result = explore(_first_action_policy(), pool, tmp_path / "t.jsonl", config, progress=False)
    assert result.finished == 6 and pool.created <= 3  # 2 workers (+1 for the plan step)


def _first_action_policy():
    from armap_agents.policies import RandomPolicy

    return RandomPolicy()


def test_select_tasks_matches_names_inside_ids() -> None:
    ids = [
        "boil/0",
        "boil/1",
        "melt/0",
        "train/pick_and_place_simple-Book-None-Desk-310/trial_1",
        "train/pick_clean_then_place_in_recep-Cup-None-Shelf-1/trial_2",
        "905",
    ]
    assert select_tasks(ids, ["boil"]) == ["boil/0", "boil/1"]
    assert select_tasks(ids, ["pick_and_place_simple"]) == [ids[3]]
    assert select_tasks(ids, ["905", "melt"]) == ["melt/0", "905"]
    assert select_tasks(ids, ["pick"]) == []  # a name is whole words, not any prefix
    assert select_tasks(ids, None) == ids


def test_exploring_a_task_that_does_not_exist_is_a_clear_error(tmp_path) -> None:
    config = ExploreConfig(tasks=["no-such-task"])
    with pytest.raises(ConfigError, match="no task of split 'train' matches"):
        explore(_first_action_policy(), Game24Env, tmp_path / "t.jsonl", config, progress=False)


def test_the_registry_knows_every_built_in_environment_and_its_prompts() -> None:
    registry = default_registry()
    assert registry.names() == ["alfworld", "game24", "scienceworld", "webshop"]
    for name in registry.names():
        assert registry.prompt_guide(name).action  # every built-in teaches the policy
    with pytest.raises(KeyError, match="unknown environment"):
        registry.factory("nope")
