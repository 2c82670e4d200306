"""Courier: a small text world where a task asks to carry an object to a room.

Five rooms on a fixed map, three objects scattered over them (fixed per task id); a task
says "Bring the <object> to the <room>." (a room next to the object's). Actions: ``go
<room>``, ``take <object>``, ``drop <object>``, ``look``. Each observation says what happened,
where you are, the exits, what lies here and what you carry (a 14-step episode renders to
~470 MiniLM tokens). Success: the object lies in the room when the episode ends (score 1;
carrying it at the end: 0.5). A random walker delivers in about one episode in twenty. Only
the horizon is declared: the window, view and relabeler are the generic ones.

    armap quickstart --env examples/courier.py:Courier --size tiny
"""

import random

from armap_agents import EnvironmentDefaults, Evaluation, Observation, StepResult

MAP = {
    "hall": ["kitchen", "study", "garden", "cellar"],
    "kitchen": ["hall", "garden"],
    "study": ["hall", "cellar"],
    "garden": ["hall", "kitchen"],
    "cellar": ["hall", "study"],
}
OBJECTS = ["lamp", "key", "book", "apple", "coin", "map", "cup", "scarf"]


class Courier:
    name = "courier"
    defaults = EnvironmentDefaults(max_steps=14)

    def task_ids(self, split: str = "train") -> list[str]:
        ranges = {"train": range(300), "test": range(5000, 5050)}
        if split not in ranges:
            raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
        return [str(i) for i in ranges[split]]

    def reset(self, task_id: str) -> Observation:
        rng = random.Random(int(task_id))
        self.where = {o: rng.choice(list(MAP)) for o in rng.sample(OBJECTS, 3)}
        self.target = rng.choice(list(self.where))
        self.goal = rng.choice(MAP[self.where[self.target]])  # a room next door
        self.room, self.carried = "hall", []
        instruction = f"Bring the {self.target} to the {self.goal}."
        return Observation(instruction=instruction, text=self.describe("You wake up."))

    def describe(self, event: str) -> str:
        here = [o for o, r in self.where.items() if r == self.room] or ["nothing"]
        return (
            f"{event} Room: {self.room}. Exits: {', '.join(MAP[self.room])}. Here: "
            f"{', '.join(here)}. Carrying: {', '.join(self.carried) or 'nothing'}."
        )

    def valid_actions(self) -> list[str]:
        here = [o for o, r in self.where.items() if r == self.room]
        return (
            ["look"]
            + [f"go {r}" for r in MAP[self.room]]
            + [f"take {o}" for o in here]
            + [f"drop {o}" for o in self.carried]
        )

    def step(self, action: str) -> StepResult:
        if action not in self.valid_actions():
            why = f"You cannot '{action}' here. {self.describe('Nothing happens.')}"
            return StepResult(observation=why, valid=False)
        verb, _, thing = action.partition(" ")
        if verb == "go":
            self.room, event = thing, f"You walk to the {thing}."
        elif verb == "take":
            self.where[thing], event = None, f"You pick up the {thing}."
            self.carried.append(thing)
        elif verb == "drop":
            self.carried.remove(thing)
            self.where[thing], event = self.room, f"You put down the {thing}."
        else:
            event = "You look around."
        return StepResult(observation=self.describe(event))

    def evaluate(self) -> Evaluation:
        if self.where[self.target] == self.goal:
            return Evaluation(success=True, score=1.0)
        return Evaluation(success=False, score=0.5 if self.target in self.carried else 0.0)

    def close(self) -> None:
        pass
