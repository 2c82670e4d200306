"""Fuzz every parser of model replies and actions: uncaught exceptions and time per input.

Each parser gets ``--inputs`` strings (10,000 by default) from one seeded generator mixing
random text (any code point, lone surrogates included), concatenations of reply fragments
(``Action:``, ``Score``, ``{"action": ``, brackets, NaN, 1e999 ...), hostile structures (JSON
nested 1,000-100,000 deep, integers of 4,310-50,000 digits, runs of up to 200,000 characters
of spaces, newlines, braces, digits or a repeated word after a keyword) and near-miss JSON (a
valid reply with a character dropped, doubled or the rest cut), half of them wrapped in the
parser's own syntax (``search[...]``, ``add(...)``, ``Action: ...``, ``a + b = ...``).

An *uncaught exception* is any exception a parser's docstring does not name:
:func:`~armap_agents.synthesizers.parse_synthesis` may raise ``ValueError``; nothing else may
raise anything. ``LLMPolicy.act`` gets the input as the reply of a scripted chat model (one
re-ask); an environment's time includes the ``reset`` before each step. Time is per call
(``time.perf_counter``), after one warm-up call, with the garbage
collector held off during the call (it runs between calls, so its pauses are not charged to
the input that happened to trigger them); an input over 50 ms is timed twice more and keeps its
best time, so a busy machine's hiccup is not charged to it either. An input still running
after ``--alarm`` seconds is interrupted and counted (a regex engine checks signals).
Target: 0 uncaught exceptions, no input over 50 ms. Run::

    python benchmarks/parser_fuzz.py [--inputs 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import random
import signal
import time
from collections.abc import Callable

from _report import header, save_results

from armap_agents.environments.game24 import Game24Env
from armap_agents.environments.tools import ToolEnvironment
from armap_agents.environments.webshop import WebShopEnv
from armap_agents.llm import RetryPolicy, json_object_reply
from armap_agents.policies import LLMPolicy, PolicyContext, parse_action
from armap_agents.reward.judge import parse_rating
from armap_agents.synthesizers import parse_synthesis
from armap_agents.testing import ScriptedChatModel, toy_tools

TARGET_MS = 50.0
VALID = ["4 + 8 = 12", "4 * 8 = 32", "4 - 8 = -4", "8 / 4 = 2", "click[buy now]"]
FRAGMENTS = [
    *'{}[]":,()-./*=`',
    '{"action": ',
    '{"score": ',
    '{"rating": ',
    '{"intent": ',
    '"negative": [',
    "```json\n",
    "```",
    "Action:",
    "action ：",
    "Score",
    "score is",
    "rating of",
    "**",
    "/10",
    " out of 10",
    "10",
    "7",
    "0",
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 40,
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u3000",
    "\ud800",
    "\udfff",
    "\x00",
    "search[",
    "click[",
    "finish[",
    "add(",
    "4 + 8 = 12",
    "÷",
    "−",
]
KEYWORDS = ["Score", "rating", "Action:", "action", "1 + 2", "search[", "click[", "7", "{", "add("]
VALID_REPLIES = [
    json.dumps({"action": "4 + 8 = 12"}),
    json.dumps({"score": 7}),
    '{"score": NaN}',
    '{"rating": -Infinity}',
    json.dumps(
        {
            "intent": "obtain 24 from 4 4 6 8",
            "negative": [{"action": "4 + 4 = 8", "observation": "Numbers left: 6 8 8"}],
        }
    ),
]


class Interrupted(Exception):
    """An input ran past the alarm."""


def _random_text(rng: random.Random, size: int) -> str:
    return "".join(
        chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x110000)])) for _ in range(size)
    )


def hostile_input(rng: random.Random) -> tuple[str, str]:
    """``(kind, text)``: one input of a randomly chosen kind."""
    kind = rng.choice(["random", "fragments", "deep", "huge-int", "run", "near-miss", "non-finite"])
    if kind == "random":
        text = _random_text(rng, rng.choice([rng.randrange(0, 50), rng.randrange(0, 3_000)]))
    elif kind == "fragments":
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(1, 60)))
    elif kind == "deep":
        n = rng.choice([rng.randrange(1_000, 5_000), rng.randrange(5_000, 100_000)])
        opener, closer = rng.choice([("[", "]"), ('{"a": ', "}"), ("(", ")")])
        text = rng.choice(['{"action": ', '{"score": ', '{"intent": ', ""]) + opener * n
        text += closer * (n if rng.random() < 0.7 else rng.randrange(n)) + rng.choice(["}", ""])
    elif kind == "huge-int":
        digits = "".join(rng.choice("0123456789") for _ in range(10)) * rng.randrange(431, 5_000)
        text = rng.choice(['{"action": ', '{"score": ', "Score: ", "", "1 + "]) + digits
        text += rng.choice(["}", "", "/10", " = 3"])
    elif kind == "run":
        char = rng.choice([" ", "\n", "\t", "{", "1", "1.", "-", "[", "score "])
        text = rng.choice(KEYWORDS) + char * (rng.randrange(100, 200_000) // len(char))
        text += rng.choice(["x", "", "]", ")", "/", "}", "/10"])
    elif kind == "near-miss":
        valid = rng.choice(VALID_REPLIES)
        i = rng.randrange(len(valid) + 1)
        text = rng.choice([valid[:i] + valid[i + 1 :], valid[:i] + valid[i:] * 2, valid[:i]])
    else:
        number = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "1" + "0" * 400, "-0"])
        text = rng.choice(['{"score": %s}', "Score: %s", '{"action": %s}', "%s/10", "%s"])
        text = text.replace("%s", number)
    return kind, text


def shaped(rng: random.Random, text: str, shapes: list[str]) -> str:
    """Half the time, ``text`` inside one of a parser's own action forms."""
    if rng.random() < 0.5:
        return text
    return rng.choice(shapes).replace("%s", text)


# -- the parsers under test ------------------------------------------------------------------
def _policy_context() -> PolicyContext:
    return PolicyContext(
        task_id="1",
        instruction="Use the numbers 4 4 6 8 to obtain 24.",
        initial_observation="Numbers left: 4 4 6 8",
        valid_actions=VALID,
    )


Target = tuple[Callable[[str], object], tuple[type[BaseException], ...], list[str]]


def targets() -> dict[str, Target]:
    """name -> (call on one input, documented exceptions, action shapes)."""
    game = Game24Env(puzzles=[(4, 4, 6, 8)])
    shop = WebShopEnv()
    tools = ToolEnvironment(
        toy_tools(),
        [{"id": "1", "instruction": "Say hello."}],
        lambda task, episode: episode.finished,
    )
    reply = {"text": ""}
    policy = LLMPolicy(
        ScriptedChatModel(responder=lambda messages: reply["text"]),
        retry=RetryPolicy(max_attempts=1),
        max_reasks=1,
    )
    context = _policy_context()

    def game_step(text: str) -> object:
        game.reset("1")
        return game.step(text)

    def shop_step(text: str) -> object:
        shop.reset("0")
        return shop.step(text)

    def tool_step(text: str) -> object:
        tools.reset("1")
        return tools.step(text)

    def act(text: str) -> object:
        reply["text"] = text
        return policy.act(context, seed=0)

    replies = ["Action: %s", "%s", '{"action": "%s"}', "Thinking...\nAction: %s\n"]
    return {
        "parse_action": (lambda t: parse_action(t, VALID), (), replies),
        "json_object_reply": (json_object_reply, (), ["```json\n%s\n```", "{%s}"]),
        "parse_synthesis": (parse_synthesis, (ValueError,), ["Sure!\n```json\n%s\n```"]),
        "parse_rating": (parse_rating, (), ["Score: %s", "%s/10", '{"score": %s}']),
        "Game24Env.step": (game_step, (), ["%s + 4 = 8", "4 + %s", "4 * 6 = %s", "%s."]),
        "WebShopEnv.step": (shop_step, (), ["search[%s]", "click[%s]", " search [ %s ] "]),
        "ToolEnvironment.step": (tool_step, (), ["echo[%s]", "add(%s)", "add[%s]", "finish[%s]"]),
        "LLMPolicy.act": (act, (), replies),
    }


def fuzz(name: str, target: Target, inputs: int, seed: int, alarm_s: float) -> dict:
    call, documented, shapes = target
    rng = random.Random(f"{seed}:{name}")
    with contextlib.suppress(*documented):
        call("Action: warm-up")
    times: list[float] = []
    uncaught: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "", "")

    def expire(signum: int, frame: object) -> None:
        raise Interrupted

    def timed(text: str) -> float:
        """Seconds for one call; what it raises is counted, under its name, in ``uncaught``."""
        signal.setitimer(signal.ITIMER_REAL, alarm_s)
        gc.disable()
        start = time.perf_counter()
        try:
            call(text)
        except documented:
            pass
        except Interrupted:
            uncaught[f"still running after {alarm_s:g} s"] += 1
        except Exception as exc:  # noqa: BLE001 - counting them is the point
            uncaught[type(exc).__name__] += 1
        finally:
            elapsed = time.perf_counter() - start
            gc.enable()
            signal.setitimer(signal.ITIMER_REAL, 0)
        return elapsed

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        for _ in range(inputs):
            kind, text = hostile_input(rng)
            text = shaped(rng, text, shapes)
            before = sum(uncaught.values())
            elapsed = timed(text)
            if elapsed * 1000 > TARGET_MS and sum(uncaught.values()) == before:
                elapsed = min(elapsed, timed(text), timed(text))
            times.append(elapsed)
            if elapsed > slowest[0]:
                slowest = (elapsed, kind, f"{len(text):,} chars")
    finally:
        signal.signal(signal.SIGALRM, previous)
    times.sort()
    return {
        "inputs": inputs,
        "uncaught": sum(uncaught.values()),
        "kinds": ", ".join(f"{k} {v}" for k, v in uncaught.most_common()) or "-",
        "max_ms": times[-1] * 1000,
        "p99_ms": times[int(0.99 * (len(times) - 1))] * 1000,
        "over": sum(t * 1000 > TARGET_MS for t in times),
        "slowest": f"{slowest[1]}, {slowest[2]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per parser")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alarm", type=float, default=10.0, help="seconds before interrupting")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for name, target in targets().items():
        r = fuzz(name, target, args.inputs, args.seed, args.alarm)
        rows.append(
            f"| `{name}` | {r['inputs']:,} | {r['uncaught']:,} | {r['kinds']} | "
            f"{r['max_ms']:.2f} | {r['p99_ms']:.3f} | {r['over']} | {r['slowest']} |"
        )
        print(rows[-1], flush=True)
    total = time.perf_counter() - started
    markdown = "\n".join(
        [
            "# Parser fuzz: uncaught exceptions and time per input",
            "",
            header(),
            "",
            f"{args.inputs:,} inputs per parser (seed {args.seed}), {total:.0f} s in all. "
            f"Target: 0 uncaught exceptions, no input over {TARGET_MS:g} ms.",
            "",
            "| parser | inputs | uncaught exceptions | which | max ms | p99 ms "
            f"| inputs over {TARGET_MS:g} ms | slowest input |",
            "|---|---:|---:|---|---:|---:|---:|---|",
            *rows,
        ]
    )
    save_results("parser_fuzz", markdown)


if __name__ == "__main__":
    main()
