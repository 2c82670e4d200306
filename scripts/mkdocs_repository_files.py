"""MkDocs hook: repository files outside docs/ that the pages link to, served with the site.

The pages under docs/ link to repository files the way GitHub resolves them, relative to the
page (``../benchmarks/README.md``, ``../examples/guess_number.py``). MkDocs only knows the files
under docs/, so it would report those links as broken. This hook adds the folders below to the
site at their repository paths and rewrites each link that leaves docs/ for one of them into
the same file's path inside the site. Any other link is left as written, so that
``mkdocs build --strict`` still fails on a link to a file that does not exist.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

SERVED_FOLDERS = ("benchmarks/results", "examples", "notebooks")
SERVED_FILES = ("benchmarks/README.md",)
MARKDOWN_LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def _repository_root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def _served_paths(root: Path) -> list[str]:
    paths = [p for p in SERVED_FILES if (root / p).is_file()]
    for folder in SERVED_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                paths.append(path.relative_to(root).as_posix())
    return paths


def on_files(files, config):
    root = _repository_root(config)
    for path in _served_paths(root):
        files.append(File(path, str(root), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    root = _repository_root(config)
    docs_dir = Path(config["docs_dir"]).resolve()
    docs = docs_dir.relative_to(root).as_posix()
    served = {f.src_uri for f in files}
    page_dir = posixpath.dirname(page.file.src_uri)
    page_in_docs = Path(page.file.abs_src_path).resolve().is_relative_to(docs_dir)
    page_repository_dir = posixpath.join(docs, page_dir) if page_in_docs else page_dir

    def site_link(match: re.Match) -> str:
        target = match.group(2)
        if ":" in target or target.startswith("/"):  # a URL, mailto: or an absolute path
            return match.group(0)
        repository_path = posixpath.normpath(posixpath.join(page_repository_dir, target))
        site_path = (
            posixpath.relpath(repository_path, docs)
            if repository_path.startswith(docs + "/")
            else repository_path
        )
        if site_path not in served:
            return match.group(0)
        relative = posixpath.relpath(site_path, page_dir or ".")
        return f"{match.group(1)}{relative}{match.group(3) or ''}{match.group(4)}"

    return MARKDOWN_LINK.sub(site_link, markdown)
