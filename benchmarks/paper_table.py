"""The paper-style table (Sampling, Greedy, ARMAP-B, ARMAP-R, ARMAP-M, oracle) for one
environment on its fixed quickstart subset, offline with the random policy or the local model,
or with an API model. Run::

    python benchmarks/paper_table.py --env scienceworld            # random policy, offline
    python benchmarks/paper_table.py --env alfworld --data-dir ../shared/data/alfworld
    python benchmarks/paper_table.py --env webshop                 # generated catalog
    python benchmarks/paper_table.py --env game24 --llm local:smollm2 --size tiny

The subsets (see ``armap_agents/_quickstart.py``): ScienceWorld's find-living-thing,
find-non-living-thing, find-plant and find-animal tasks (the first train variations of each,
spread evenly; the first 2 test variations of each); ALFWorld's six task types (6 train
games each, 2 valid_unseen games each); WebShop's generated catalog (train goals, 50 test
goals); Game of 24's standard splits. The run directory keeps
every artifact and resumes when rerun. Prints the command, the machine, the versions and the
table, and saves them with the results plot as ``benchmarks/results/paper_table_<env>.md`` /
``.png`` (``paper_table_<env>-llm`` with ``--llm``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from _report import figure_path, header, save_results

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
    started = time.perf_counter()
    status = armap(argv)
    minutes = (time.perf_counter() - started) / 60
    report = run_dir / "evaluation" / "report.md"
    if status or not report.is_file():
        return status or 1
    name = f"paper_table_{args.env}" + ("-llm" if args.llm else "")
    png = shutil.copyfile(run_dir / "evaluation" / "results.png", figure_path(name))
    policy = f"LLMPolicy over `{args.llm}`" if args.llm else "RandomPolicy"
    markdown = "\n".join(
        [
            f"# Planners on {args.env} ({policy}, `--size {args.size}`)",
            "",
            header(("llama-cpp-python",) if args.llm else ()),
            "",
            f"`armap quickstart` run in {run_dir} ({minutes:.1f} min in this run; stages "
            "already done in the run directory are skipped, so time a fresh one).",
            "",
            report.read_text(encoding="utf-8").strip(),
            "",
            f"![planners]({png.name})",
        ]
    )
    save_results(name, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(run())
