"""The paper-style table (Sampling, Greedy, ARMAP-B, ARMAP-R, ARMAP-M, oracle) for one
environment on its fixed quickstart subset, offline with the random policy or the local model,
or with an API model. Run::

    python benchmarks/paper_table.py --env scienceworld            # random policy, offline
    python benchmarks/paper_table.py --env alfworld --data-dir ../shared/data/alfworld
    python benchmarks/paper_table.py --env webshop                 # generated catalog
    python benchmarks/paper_table.py --env game24 --llm local:smollm2 --size tiny

The subsets (see ``armap_agents/_quickstart.py``): ScienceWorld's find-living-thing,
find-non-living-thing, find-plant and find-animal tasks (the first train variations of each,
spread evenly; the first 2 test variations of each); ALFWorld's six task types (10 train
games each, 2 valid_unseen games each); WebShop's generated catalog (train goals, 50 test
goals); Game of 24's standard splits. The run directory keeps
every artifact and resumes when rerun. Prints the command, the machine and the table.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
from pathlib import Path

from armap_agents.cli import main as armap


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env", choices=["game24", "scienceworld", "alfworld", "webshop"], required=True
    )
    parser.add_argument("--llm", help="a chat model, e.g. local:smollm2 or openai:gpt-4o-mini")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--data-dir", help="ALFWorld data (default: $ALFWORLD_DATA)")
    parser.add_argument("--run-dir", type=Path, help="default: benchmarks/runs/<env>[-llm]")
    args = parser.parse_args()
    run_dir = args.run_dir or Path("benchmarks/runs") / (args.env + ("-llm" if args.llm else ""))
    argv = ["quickstart", "--env", args.env, "--size", args.size, "--run-dir", str(run_dir)]
    if args.llm:
        argv += ["--llm", args.llm]
    if args.data_dir:
        argv += ["--env-option", f"data_dir={args.data_dir}"]
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    return armap(argv)


if __name__ == "__main__":
    sys.exit(run())
