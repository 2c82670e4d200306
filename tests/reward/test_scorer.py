"""The reward-scorer protocol: the shipped scorers and fakes implement it, and ``TextScorer``
is the one adaptor from ``score(intent, trajectories)`` to ``score_texts(intents, texts)``."""

from __future__ import annotations

from collections.abc import Sequence

from armap_agents.environments.game24 import Game24Env
from armap_agents.graphs.best_of_n import BestOfNConfig, build_best_of_n_graph
from armap_agents.policies import RandomPolicy
from armap_agents.reward import LLMJudge, RemoteRewardModel, RewardScorer, TextScorer
from armap_agents.testing import ConstantReward, FunctionReward, ScriptedChatModel
from armap_agents.types import Step, Trajectory, render_trajectory


def _trajectory(*actions: str) -> Trajectory:
    steps = [Step(action=a, observation=f"after {a}") for a in actions]
    return Trajectory(task_id="1", intent="reach 24", initial_observation="4 4 6 8", steps=steps)


class Recording(TextScorer):
    """A text scorer that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[list[str], list[str], dict]] = []

    def score_texts(
        self, intents: Sequence[str], texts: Sequence[str], *, batch_size: int = 64
    ) -> list[float]:
        self.asked.append((list(intents), list(texts), {"batch_size": batch_size}))
        return [float(len(text)) for text in texts]


def test_text_scorer_renders_each_trajectory_against_the_one_intent() -> None:
    scorer = Recording()
    short, long = _trajectory("a"), _trajectory("a", "b")
    assert scorer.score("reach 24", [short, long]) == [
        float(len(render_trajectory(short))),
        float(len(render_trajectory(long))),
    ]
    assert scorer.score("reach 24", [short], batch_size=2) == [len(render_trajectory(short))]
    assert scorer.score("reach 24", []) == []
    assert scorer.asked[0] == (
        ["reach 24", "reach 24"],
        [render_trajectory(short), render_trajectory(long)],
        {"batch_size": 64},
    )
    assert scorer.asked[1][2] == {"batch_size": 2}  # keyword options reach score_texts


def test_shipped_scorers_and_fakes_are_reward_scorers() -> None:
    judge = LLMJudge(ScriptedChatModel(replies=["7"]))
    remote = RemoteRewardModel("http://127.0.0.1:9")  # nothing is sent until it scores
    for scorer in (judge, remote, ConstantReward(), FunctionReward(lambda i, t: 0.0), Recording()):
        assert isinstance(scorer, RewardScorer), scorer
    assert not isinstance(object(), RewardScorer)
    # the judge reads the canonical text through the shared adaptor
    assert judge.score("reach 24", [_trajectory("a")]) == [0.7]


def test_fakes_score_every_trajectory_and_count_calls() -> None:
    steps = FunctionReward(lambda intent, t: len(t.steps) + len(intent))
    trajectories = [_trajectory(), _trajectory("a", "b")]
    assert steps.score("xy", trajectories) == [2.0, 4.0] and steps.calls == 1
    constant = ConstantReward(-1.5)
    assert constant.score("xy", trajectories) == [-1.5, -1.5]
    assert constant.score("xy", []) == [] and constant.calls == 2


def test_best_of_n_scores_in_batches_of_score_batch_size() -> None:
    scorer = ConstantReward()
    graph = build_best_of_n_graph(
        RandomPolicy(), Game24Env, scorer, BestOfNConfig(n=5, max_steps=1, score_batch_size=2)
    )
    state = graph.invoke({"task_id": "923"})
    assert scorer.calls == 3 and state["reward_model_calls"] == 5
