"""The step-level planners: beam search (W beams, K samples, one critic call per step) and live
action reranking (one executed episode, each action chosen by the critic before it is taken)."""

from __future__ import annotations

import math

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from armap_agents.environments.counting import EpisodeCounter
from armap_agents.environments.defaults import EnvironmentDefaults
from armap_agents.environments.game24 import Game24Env
from armap_agents.errors import AllCandidatesFailed, ConfigError
from armap_agents.evaluation import evaluate_planners
from armap_agents.graphs.beam_search import BeamSearchConfig, build_beam_search_graph
from armap_agents.graphs.live_rerank import (
    LiveRerankConfig,
    build_live_rerank_graph,
    pending,
)
from armap_agents.planners import build_planner
from armap_agents.policies import ActionChoice, PolicyContext, RandomPolicy
from armap_agents.reward_view import TrajectoryView, parse_rendered
from armap_agents.testing import ConstantReward, FunctionReward
from armap_agents.types import (
    Evaluation,
    Observation,
    Step,
    StepResult,
    Trajectory,
    render_trajectory,
)


class EveryAction:
    """A policy whose K samples are the environment's first K valid actions, in order."""

    def __init__(self) -> None:
        self.calls = 0

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        self.calls += 1
        return ActionChoice(action=context.valid_actions[0])

    def act_many(self, context: PolicyContext, n: int, *, seed: int) -> list[ActionChoice]:
        self.calls += n
        actions = context.valid_actions or []
        return [ActionChoice(action=actions[i % len(actions)]) for i in range(n)]


class CountingRandom(RandomPolicy):
    """The random policy, counting its decisions."""

    def __init__(self) -> None:
        self.calls = 0

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        self.calls += 1
        return super().act(context, seed=seed, greedy=greedy)


class Corridor:
    """``go`` moves one cell on, ``stop`` ends the episode; 5 steps at most."""

    name = "corridor"
    defaults = EnvironmentDefaults(max_steps=5)

    def __init__(self) -> None:
        self.position = 0
        self.done = False

    def task_ids(self, split: str = "test") -> list[str]:
        return ["t"]

    def reset(self, task_id: str) -> Observation:
        self.position, self.done = 0, False
        return Observation(instruction="walk", text="cell 0")

    def valid_actions(self) -> list[str]:
        return ["go", "stop"]

    def step(self, action: str) -> StepResult:
        if action == "stop":
            self.done = True
            return StepResult(observation=f"stopped at {self.position}", done=True)
        self.position += 1
        return StepResult(observation=f"cell {self.position}")

    def evaluate(self) -> Evaluation:
        return Evaluation(success=self.done, score=float(self.done))

    def close(self) -> None:
        pass


def _corridor_value(stop_value: float):
    """Going on is worth the cells walked; stopping is worth ``stop_value`` minus them."""

    def value(intent: str, trajectory: Trajectory) -> float:
        if trajectory.steps[-1].action == "stop":
            return stop_value - len(trajectory.steps)
        return float(len(trajectory.steps))

    return value


def _game24_value(intent: str, trajectory: Trajectory) -> float:
    """Closer to 24 is better (a fake critic)."""
    numbers = trajectory.final_observation.rsplit(":", 1)[1].split()
    return -abs(eval(numbers[0]) - 24) if len(numbers) == 1 else -len(numbers)  # noqa: S307


def _run(graph, task_id: str = "905", **inputs):
    """The final state and the custom stream events of one run."""
    events, state = [], {}
    for mode, chunk in graph.stream(
        {"task_id": task_id, **inputs}, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            events.append(chunk)
        else:
            state = chunk
    return state, events


# -- beam search ---------------------------------------------------------------------------
def test_beam_search_keeps_w_beams_and_scores_each_step_in_one_call() -> None:
    reward = FunctionReward(_game24_value)
    config = BeamSearchConfig(width=2, expansion_k=3, max_policy_calls=None, seed=1)
    state, events = _run(build_beam_search_graph(RandomPolicy(), Game24Env, reward, config))
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]  # a game takes 3 moves
    assert all(e["beams"] == 2 for e in steps)
    assert len(state["beams"]) == 2 and all(b["finished"] for b in state["beams"])
    assert reward.calls == 3  # one batched call per step
    assert state["reward_model_calls"] == sum(e["scored"] for e in steps)
    # W * K samples a step: the root takes all 6, then K = 3 per beam
    assert state["policy_calls"] == 18 == state["best"].policy_calls
    best = state["best"]
    assert best.done and len(best.steps) == 3 and best.evaluation is not None
    assert best.info["value"] == max(b["value"] for b in state["finished"])


def test_beam_values_add_the_log_prior_of_the_path_the_policy_proposed() -> None:
    # the root's W * K = 8 samples: the favourite action 7 times, another once; then K = 4 a
    # beam: the favourite 3 times. A critic that cannot tell them apart leaves the favourite's
    # path first, its log prior log(7/8) + 2 x log(3/4)
    config = BeamSearchConfig(width=2, expansion_k=4, max_policy_calls=None)
    state, _ = _run(build_beam_search_graph(Favourite(), Game24Env, ConstantReward(), config))
    best = state["best"]
    favourite = pytest.approx(math.log(7 / 8) + 2 * math.log(0.75))
    assert best.info["value"] == favourite and best.info["log_prior"] == favourite
    assert [b["log_prior"] for b in state["beams"]] == [
        favourite,
        pytest.approx(math.log(7 / 8) + math.log(0.75) + math.log(0.25)),
    ]
    alone = BeamSearchConfig(width=2, expansion_k=4, max_policy_calls=None, prior_weight=0)
    state, _ = _run(build_beam_search_graph(Favourite(), Game24Env, ConstantReward(), alone))
    assert state["best"].info["value"] == 0.0


def test_a_finished_trajectory_competes_with_unfinished_ones_and_ends_the_search() -> None:
    # stopping now is worth 9 - 1 = 8 > going on (1): it takes a beam and is never expanded
    config = BeamSearchConfig(width=2, expansion_k=2)
    graph = build_beam_search_graph(
        EveryAction(), Corridor, FunctionReward(_corridor_value(9)), config
    )
    state, events = _run(graph, "t")
    assert [(e["step"], e["beams"], e["finished"]) for e in events] == [(1, 2, 1), (2, 2, 2)]
    # the second step expanded the one unfinished beam only (with the step's W * K samples);
    # both beams are finished then
    assert state["policy_calls"] == 4 + 4
    assert [s.action for s in state["best"].steps] == ["stop"]
    assert len(state["finished"]) == 2

    # a finished trajectory worth less than the unfinished ones leaves the beams but stays a
    # final candidate; with W = 1 the search goes on to the horizon with the unfinished one
    config = BeamSearchConfig(width=1, expansion_k=2)
    graph = build_beam_search_graph(
        EveryAction(), Corridor, FunctionReward(_corridor_value(-100)), config
    )
    state, events = _run(graph, "t")
    assert [e["beams"] for e in events] == [1] * 5 and len(state["finished"]) == 5
    assert [s.action for s in state["best"].steps] == ["go"] * 5  # at the horizon: complete


def test_beam_search_never_exceeds_its_policy_call_budget() -> None:
    policy = CountingRandom()
    config = BeamSearchConfig(width=3, expansion_k=3, max_policy_calls=10)
    state, events = _run(build_beam_search_graph(policy, Game24Env, ConstantReward(), config))
    # the root's 3 samples, then 7 of the 9 the three beams would take: the budget is spent
    assert state["policy_calls"] == policy.calls == 10
    assert len(events) == 2 and len(state["best"].steps) == 2  # cut short: the best prefix


def test_beam_search_is_deterministic_given_the_seed() -> None:
    def run(seed: int) -> list[list[str]]:
        config = BeamSearchConfig(width=3, expansion_k=3, seed=seed)
        graph = build_beam_search_graph(
            RandomPolicy(), Game24Env, FunctionReward(_game24_value), config
        )
        state, _ = _run(graph)
        return [[s.action for s in b["trajectory"].steps] for b in state["finished"]]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_beam_search_resumes_from_a_checkpoint() -> None:
    config = BeamSearchConfig(width=2, expansion_k=2)
    graph = build_beam_search_graph(
        RandomPolicy(),
        Game24Env,
        FunctionReward(_game24_value),
        config,
        checkpointer=InMemorySaver(),
    )
    run = {"configurable": {"thread_id": "beam"}}
    first = graph.invoke({"task_id": "905"}, run, interrupt_after=["prune"])
    assert first["step"] == 1 and "best" not in first
    resumed = graph.invoke(None, run)
    fresh = build_beam_search_graph(
        RandomPolicy(), Game24Env, FunctionReward(_game24_value), config
    )
    assert resumed["best"] == fresh.invoke({"task_id": "905"})["best"]


def test_beam_search_raises_all_candidates_failed_when_every_beam_fails() -> None:
    class Broken(Game24Env):
        def step(self, action: str) -> StepResult:
            raise ConnectionError("simulator died")

    graph = build_beam_search_graph(RandomPolicy(), Broken, ConstantReward(), BeamSearchConfig())
    with pytest.raises(AllCandidatesFailed, match="simulator died") as caught:
        graph.invoke({"task_id": "905"})
    assert caught.value.policy_calls == 12  # the root's W * K = 4 * 3 samples


# -- live reranking -------------------------------------------------------------------------
class OneShot:
    """An environment whose actions cannot be undone: it refuses a second reset and any action
    but the one marked ``*`` (the critic's favourite): a planner that played a candidate it
    did not take, or replayed the episode, fails here."""

    name = "one-shot"
    defaults = EnvironmentDefaults(max_steps=3)

    def __init__(self) -> None:
        self.resets = 0
        self.steps: list[str] = []

    def task_ids(self, split: str = "test") -> list[str]:
        return ["t"]

    def reset(self, task_id: str) -> Observation:
        self.resets += 1
        if self.resets > 1:
            raise AssertionError("reset twice: the episode was played again")
        return Observation(instruction="pick the stars", text="start")

    def valid_actions(self) -> list[str]:
        n = len(self.steps)
        return [f"{n}a", f"{n}b*", f"{n}c"]

    def step(self, action: str) -> StepResult:
        if not action.endswith("*"):
            raise AssertionError(f"stepped with {action!r}, which the critic did not choose")
        self.steps.append(action)
        return StepResult(observation=f"took {action}", done=len(self.steps) == 3)

    def evaluate(self) -> Evaluation:
        return Evaluation(success=len(self.steps) == 3, score=1.0)

    def close(self) -> None:
        pass


def test_live_rerank_takes_the_critics_choice_once_per_step_and_never_replays() -> None:
    envs: list[OneShot] = []
    seen: list[Trajectory] = []

    def factory() -> OneShot:
        envs.append(OneShot())
        return envs[-1]

    def prefers_stars(intent: str, trajectory: Trajectory) -> float:
        seen.append(trajectory)
        return 1.0 if trajectory.steps[-1].action.endswith("*") else 0.0

    reward = FunctionReward(prefers_stars)
    graph = build_live_rerank_graph(EveryAction(), factory, reward, LiveRerankConfig(expansion_k=3))
    state, events = _run(graph, "t")
    assert len(envs) == 1 and envs[0].resets == 1
    assert envs[0].steps == ["0b*", "1b*", "2b*"] == [s.action for s in state["best"].steps]
    assert [e["action"] for e in events] == envs[0].steps
    assert reward.calls == 3 and state["reward_model_calls"] == 9
    assert state["policy_calls"] == 9 == state["best"].policy_calls
    assert [d["chosen"] for d in state["decisions"]] == [1, 1, 1]
    assert state["best"].done and state["best"].evaluation.success
    # what the critic read: the history so far, then the candidate with no observation yet
    last = seen[-1]
    assert [s.action for s in last.steps[:-1]] == ["0b*", "1b*"]
    assert last.steps[-1].observation == "" and last.intent == "pick the stars"


class Favourite:
    """A policy whose K samples are the first valid action K - 1 times and the second once."""

    def __init__(self) -> None:
        self.proposed: tuple[str, str] = ("", "")

    def act(self, context: PolicyContext, *, seed: int, greedy: bool = False) -> ActionChoice:
        return ActionChoice(action=context.valid_actions[0])

    def act_many(self, context: PolicyContext, n: int, *, seed: int) -> list[ActionChoice]:
        first, second = context.valid_actions[:2]
        self.proposed = (first, second)
        return [ActionChoice(action=first)] * (n - 1) + [ActionChoice(action=second)]


@pytest.mark.parametrize(
    ("margin", "prior_weight", "takes"),
    [
        (1.0, 1.0, "favourite"),  # 1.0 < log(3/4) - log(1/4): the policy's preference holds
        (1.2, 1.0, "other"),  # the critic overrules it
        (1.0, 0.0, "other"),  # the critic alone
    ],
)
def test_live_rerank_weighs_the_policys_preference_by_the_log_share_of_samples(
    margin: float, prior_weight: float, takes: str
) -> None:
    policy = Favourite()

    def prefers_the_other(intent: str, trajectory: Trajectory) -> float:
        return margin if trajectory.steps[-1].action == policy.proposed[1] else 0.0

    config = LiveRerankConfig(expansion_k=4, prior_weight=prior_weight)
    graph = build_live_rerank_graph(policy, Game24Env, FunctionReward(prefers_the_other), config)
    decision = _run(graph)[0]["decisions"][0]
    assert decision["shares"] == [0.75, 0.25]
    assert decision["chosen"] == (0 if takes == "favourite" else 1)
    assert decision["values"][0] == pytest.approx(math.log(0.75) * prior_weight)


def test_live_rerank_on_game24_with_the_random_policy() -> None:
    def likes_products(intent: str, trajectory: Trajectory) -> float:
        return float("*" in trajectory.steps[-1].action)

    config = LiveRerankConfig(expansion_k=4, seed=3)
    state, _ = _run(
        build_live_rerank_graph(RandomPolicy(), Game24Env, FunctionReward(likes_products), config)
    )
    best = state["best"]
    assert best.done and len(best.steps) == 3 and best.policy_calls == 12
    for decision, step in zip(state["decisions"], best.steps, strict=True):
        assert decision["actions"][decision["chosen"]] == step.action
        if decision["values"] is not None:
            assert decision["values"][decision["chosen"]] == max(decision["values"])
            if any("*" in a for a in decision["actions"]):
                assert "*" in step.action


def test_live_rerank_refuses_a_checkpointer_and_a_failed_episode_is_all_candidates_failed() -> None:
    with pytest.raises(ConfigError, match="cannot resume"):
        build_live_rerank_graph(
            RandomPolicy(), Game24Env, ConstantReward(), checkpointer=InMemorySaver()
        )

    class Broken(Game24Env):
        def step(self, action: str) -> StepResult:
            raise ConnectionError("simulator died")

    graph = build_live_rerank_graph(RandomPolicy(), Broken, ConstantReward())
    with pytest.raises(AllCandidatesFailed, match="simulator died") as caught:
        graph.invoke({"task_id": "905"})
    assert caught.value.policy_calls == 3


def test_a_pending_step_renders_as_an_action_awaiting_its_observation() -> None:
    history = Trajectory(
        task_id="t",
        intent="i",
        initial_observation="page one " * 40,
        steps=[Step(action="click[item]", observation="item page " * 40)],
    )
    text = render_trajectory(pending(history, "click[buy]"))
    assert text == render_trajectory(history) + "\nAction: click[buy]\nObservation: "
    assert parse_rendered(text).steps[-1] == Step(action="click[buy]", observation="")
    # under a budget the empty final observation takes nothing; the others share the room
    view = TrajectoryView(max_chars=300, final_share=0.25)
    clipped = view.render(pending(history, "click[buy]"))
    assert clipped.endswith("Action: click[buy]\nObservation: ") and len(clipped) <= 300
    assert "click[item]" in clipped
    # the page the action is taken from keeps the end state's room (final_weight x the others)
    first, current = clipped.split("\nAction: ")[0], clipped.split("\nObservation: ")[1]
    assert len(current) > 2 * len(first) and current.startswith("item page")


# -- the registry and the evaluation --------------------------------------------------------
def test_the_step_planners_are_built_by_name_and_matched_to_best_of_n() -> None:
    for name in ("beam_search", "live_rerank"):
        graph = build_planner(name, RandomPolicy(), Game24Env, ConstantReward(), {"seed": 1})
        assert len(graph.invoke({"task_id": "905"})["best"].steps) == 3
    report = evaluate_planners(
        RandomPolicy(),
        Game24Env,
        ConstantReward(),
        {"best_of_n": {"n": 4, "max_steps": 4}, "beam_search": None, "live_rerank": None},
        task_ids=["1"],
        progress=False,
    )
    bon = report.row("ARMAP-B (N=4)").policy_calls
    assert bon == 12  # 4 episodes of 3 moves
    # beam search: W = K = 2, W * K = 4 samples a step, Best-of-N's calls (4 + 4 + 4); live:
    # N samples per step
    assert report.row("ARMAP-Beam").policy_calls == 12
    assert report.row("ARMAP-Live").policy_calls == 12
    # the episodes each method executed: live reranking plays one, beam search replays prefixes
    episodes = {row.method: row.episodes for row in report.rows}
    assert episodes["ARMAP-Live"] == 1 and episodes["Greedy"] == episodes["Sampling"] == 1
    assert episodes["ARMAP-B (N=4)"] == episodes["oracle Best-of-4"] == 4
    assert episodes["ARMAP-Beam"] > 1
    assert "| episodes executed |" in report.to_markdown()


def test_the_episode_counter_counts_resets_that_act_and_every_step() -> None:
    counter = EpisodeCounter(Game24Env)
    first, second = counter(), counter()
    first.reset("905")  # an instruction read, no action: not an episode
    first.reset("905")
    for action in ("nonsense", first.valid_actions()[0]):
        first.step(action)  # an invalid action is an executed step too
    second.reset("1")
    second.step(second.valid_actions()[0])
    assert (counter.episodes, counter.steps) == (2, 3)
    assert first.name == "game24" and first.evaluate().success is False


def test_armap_plan_runs_the_step_planners(tmp_path, capsys, monkeypatch) -> None:
    from armap_agents.cli import main
    from armap_agents.reward.model import RewardModel

    # every reward model the command line loads scores every trajectory 0.5
    monkeypatch.setattr(RewardModel, "load", classmethod(lambda cls, path: ConstantReward(0.5)))
    plan = ["plan", "--model", str(tmp_path / "rm"), "--env", "game24", "--task", "1"]
    beam = ["--planner", "beam_search", "--width", "2", "--expansion-k", "2"]
    assert main([*plan, *beam, "--max-policy-calls", "7"]) == 0
    # the root's 2 samples, 2 for each of two beams, then the 1 left for the best beam
    assert "beam_search: 7 policy calls" in capsys.readouterr().out
    assert main([*plan, "--planner", "live_rerank", "--expansion-k", "2"]) == 0
    assert "live_rerank: 6 policy calls" in capsys.readouterr().out
    checkpoint = ["--checkpoint", str(tmp_path / "c.sqlite")]
    assert main([*plan, "--planner", "live_rerank", *checkpoint]) == 2
    assert "--checkpoint applies to" in capsys.readouterr().err
