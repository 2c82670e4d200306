"""The documentation site builds offline in strict mode: a broken link or anchor, a page left
out of the navigation or a docstring that mkdocstrings cannot match fails the build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_site_builds_in_strict_mode_without_warnings(tmp_path) -> None:
    pytest.importorskip("mkdocs", reason="the [docs] extra is not installed")
    pytest.importorskip("material", reason="the [docs] extra is not installed")
    pytest.importorskip("mkdocstrings", reason="the [docs] extra is not installed")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPOSITORY,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log
    assert "WARNING" not in log, log
    assert (site / "index.html").is_file()
    assert (site / "reference" / "graphs" / "index.html").is_file()
    # nothing on the pages is fetched from another host (fonts, scripts, styles)
    page = (site / "getting-started" / "index.html").read_text()
    assert "fonts.googleapis.com" not in page and "fonts.gstatic.com" not in page
