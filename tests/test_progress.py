"""Progress bars suit where they are shown: quiet where a redraw is one more line."""

from __future__ import annotations

import io

import pytest

from armap_agents._progress import QUIET_INTERVAL, progress_bar, progress_enabled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_redraws_often_and_a_log_rarely(monkeypatch) -> None:
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.delenv("ARMAP_PROGRESS", raising=False)
    terminal = progress_bar(total=3, file=_Terminal())
    log = progress_bar(total=3, file=io.StringIO())
    assert terminal.mininterval < 1 and log.mininterval == QUIET_INTERVAL
    terminal.close()
    log.close()


def test_a_log_gets_the_first_and_last_states_only(monkeypatch) -> None:
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    monkeypatch.delenv("ARMAP_PROGRESS", raising=False)
    out = io.StringIO()
    bar = progress_bar(total=500, file=out, desc="work")
    for _ in range(500):
        bar.update(1)
    bar.close()
    states = [s for s in out.getvalue().replace("\r", "\n").splitlines() if "work" in s]
    assert len(states) == 2, states  # 0% and 100%


@pytest.mark.parametrize("value", ["0", "false", "OFF"])
def test_armap_progress_0_turns_every_bar_off(monkeypatch, value) -> None:
    monkeypatch.setenv("ARMAP_PROGRESS", value)
    assert not progress_enabled()
    out = io.StringIO()
    bar = progress_bar(total=3, file=out)
    bar.update(3)
    bar.close()
    assert bar.disable and out.getvalue() == ""


def test_progress_false_turns_one_bar_off(monkeypatch) -> None:
    monkeypatch.delenv("ARMAP_PROGRESS", raising=False)
    assert progress_enabled() and not progress_enabled(False)
    assert progress_bar(total=1, file=io.StringIO(), progress=False).disable
