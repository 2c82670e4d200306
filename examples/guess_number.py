"""Guess the number: a complete armap-agents environment in under 50 lines (the docs' example).

The secret is a number from 1 to 30 (fixed per task id); each ``guess <n>`` is answered "too
low", "too high" or "correct"; five guesses per game. A random guesser wins about one game in
six, so exploration finds both outcomes and a reward model has something to learn.

    armap quickstart --env examples/guess_number.py:GuessNumber --size tiny
"""

import random

from armap_agents import Evaluation, Observation, PromptGuide, StepResult


class GuessNumber:
    name = "guess-number"
    prompt_guide = PromptGuide(
        action="Actions are `guess <n>`. Use the feedback: after 'too low' guess higher.",
        synthesis="An intent asks to find the secret number; a negative never guesses it.",
    )

    def __init__(self, high: int = 30, max_guesses: int = 5) -> None:
        self.high, self.max_guesses = high, max_guesses
        self.secret, self.guesses = 0, []

    def task_ids(self, split: str = "train") -> list[str]:
        ranges = {"train": range(200), "test": range(1000, 1020)}
        if split not in ranges:
            raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
        return [str(i) for i in ranges[split]]

    def reset(self, task_id: str) -> Observation:
        self.secret, self.guesses = random.Random(int(task_id)).randint(1, self.high), []
        instruction = f"Find the secret number from 1 to {self.high} in {self.max_guesses} guesses."
        return Observation(instruction=instruction, text="No guesses yet.")

    def valid_actions(self) -> list[str]:
        if self.secret in self.guesses or len(self.guesses) >= self.max_guesses:
            return []
        return [f"guess {n}" for n in range(1, self.high + 1) if n not in self.guesses]

    def step(self, action: str) -> StepResult:
        if action not in self.valid_actions():
            why = f"Invalid action {action!r}: write `guess <n>`, 1 <= n <= {self.high}, once each."
            return StepResult(observation=why, valid=False)
        n = int(action.split()[1])
        self.guesses.append(n)
        text = "correct!" if n == self.secret else "too low." if n < self.secret else "too high."
        return StepResult(observation=f"{n} is {text}", done=not self.valid_actions())

    def evaluate(self) -> Evaluation:
        won = self.secret in self.guesses
        return Evaluation(success=won, score=float(won))

    def close(self) -> None:
        pass
