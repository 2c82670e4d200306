"""The paper-style table (Sampling, Greedy, ARMAP-B, ARMAP-R, ARMAP-M, oracle) for one
environment on its fixed quickstart subset, offline with the random policy or the local model,
or with an API model. Run::

    python benchmarks/paper_table.py --env scienceworld            # random policy, offline
    python benchmarks/paper_table.py --env alfworld --data-dir ../shared/data/alfworld
    python benchmarks/paper_table.py --env webshop                 # generated catalog
    python benchmarks/paper_table.py --env game24 --llm local:smollm2 --size tiny

The subsets (``quickstart_plan`` in ``armap_agents/pipeline.py``): ScienceWorld's find-living-thing,
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
from pathlib import Path

from _report import figure_path, header, save_results

from armap_agents.pipeline import run_pipeline


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
    result = run_pipeline(
        run_dir,
        env=args.env,
        env_options={"data_dir": args.data_dir} if args.data_dir else None,
        size=args.size,
        llm=args.llm,
    )
    minutes = result.seconds / 60
    layout = result.layout
    name = f"paper_table_{args.env}" + ("-llm" if args.llm else "")
    png = shutil.copyfile(layout.plot, figure_path(name))
    policy = f"LLMPolicy over `{args.llm}`" if args.llm else "RandomPolicy"
    markdown = "\n".join(
        [
            f"# Planners on {args.env} ({policy}, `--size {args.size}`)",
            "",
            header(("llama-cpp-python",) if args.llm else ()),
            "",
            f"`armap quickstart` (`run_pipeline`) run in {run_dir} ({minutes:.1f} min in this "
            "run; stages already done in the run directory are skipped, so time a fresh one).",
            "",
            layout.report.read_text(encoding="utf-8").strip(),
            "",
            f"![planners]({png.name})",
        ]
    )
    save_results(name, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(run())
