"""Every ```python block of README.md and docs/**/*.md runs.

The blocks of one page run in order in one namespace (a block may use what an earlier one
defined), in a fresh working directory that holds an untrained stand-in for the quickstart's
reward model (and, for the page that reruns the tiny pipeline in runs/demo, the session's tiny
quickstart run, so that the block resumes it). An HTML comment on the line before a fence
marks a block that cannot run here (see docs/development.md, "Every snippet runs"). Pages
whose blocks train a model are slow.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
DOC_PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
NOT_RUN = {
    "needs-api-key": "calls a hosted LLM API",
    "needs-server": "talks to a server started by a command",
    "needs-gpu": "needs a GPU or a cluster",
}
SLOW_PAGES = {
    "docs/getting-started.md": "trains a reward model",
    "docs/concepts.md": "resumes the session's tiny quickstart run",
    "docs/own_environment.md": "trains a reward model",
}
QUICKSTART_MODEL = "runs/quickstart-game24/reward_model"
TINY_RUN = 'run_pipeline("runs/demo", env="game24", size="tiny")'
FENCE = re.compile(r"^(\s*)```python\s*$")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    line: int
    code: str
    marker: str | None


def python_snippets(text: str) -> list[Snippet]:
    """The ```python blocks of a markdown text, dedented, with the marker on the line before."""
    lines = text.splitlines()
    snippets, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = opening.group(1)
        end = index + 1
        while lines[end].strip() != "```" or not lines[end].startswith(indent):
            end += 1
        marker = MARKER.match(lines[index - 1]) if index else None
        code = textwrap.dedent("\n".join(lines[index + 1 : end]))
        snippets.append(Snippet(index + 2, code, marker.group(1) if marker else None))
        index = end + 1
    return snippets


def why_not_run(marker: str | None) -> str | None:
    """None when the block runs here, else the reason it is skipped."""
    if marker is None:
        return None
    if marker in NOT_RUN:
        return NOT_RUN[marker]
    if marker.startswith("requires="):
        missing = [m for m in marker[9:].split(",") if importlib.util.find_spec(m) is None]
        return f"needs {', '.join(missing)}" if missing else None
    raise AssertionError(f"unknown snippet marker {marker!r}")


def page_params() -> list:
    params = []
    for page in DOC_PAGES:
        name = page.relative_to(REPOSITORY).as_posix()
        if not python_snippets(page.read_text()):
            continue
        marks = [pytest.mark.slow] if name in SLOW_PAGES else []
        params.append(pytest.param(page, id=name, marks=marks))
    return params


def test_the_markers_and_fences_are_read() -> None:
    marked = "a\n<!-- snippet: needs-api-key -->\n```python\nx = 1\n```\n"
    text = marked + "\n  ```python\n  y = 2\n  ```\n"
    first, second = python_snippets(text)
    assert (first.code, first.marker, first.line) == ("x = 1", "needs-api-key", 4)
    assert (second.code, second.marker) == ("y = 2", None)
    assert why_not_run("requires=json") is None and why_not_run("requires=no_such_mod")


@pytest.fixture(scope="session")
def quickstart_stand_in(tmp_path_factory, small_reward_model_config) -> Path:
    """An untrained reward model where `armap quickstart` saves its trained one."""
    from armap_agents import RewardModel

    model = tmp_path_factory.mktemp("stand-in") / "reward_model"
    RewardModel.create(small_reward_model_config).save(model)
    return model


@pytest.mark.parametrize("page", page_params())
def test_every_python_block_of_the_page_runs(page, tmp_path, monkeypatch, request) -> None:
    text = page.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test-unused")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if QUICKSTART_MODEL in text:
        shutil.copytree(request.getfixturevalue("quickstart_stand_in"), QUICKSTART_MODEL)
    if TINY_RUN in text:  # the session's tiny quickstart run: the block shows it resuming
        shutil.copytree(request.getfixturevalue("game24_quickstart")[0], "runs/demo")
    namespace: dict = {"__name__": "__doc_snippet__"}
    name = page.relative_to(REPOSITORY).as_posix()
    skipped = []
    for snippet in python_snippets(text):
        if reason := why_not_run(snippet.marker):
            skipped.append(f"line {snippet.line}: {reason}")
            continue
        code = compile(snippet.code, f"{name}, block at line {snippet.line}", "exec")
        exec(code, namespace)  # noqa: S102
    if len(skipped) == len(python_snippets(text)):
        pytest.skip(f"no block of {name} runs here ({'; '.join(skipped)})")
