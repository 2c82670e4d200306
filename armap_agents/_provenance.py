"""Run provenance: every artifact of a run records what made it, and a resume must agree.

The manifest of an artifact is a small JSON file: ``<file>.meta.json`` beside a file (the
trajectory file ``t.jsonl`` has ``t.jsonl.meta.json``), ``meta.json`` inside a directory (a
quickstart run directory, a synthesis output, a reward model, an evaluation)::

    {
      "kind": "trajectories",
      "defines": {"env": "game24", "env_options": {}, "policy": "random",
                  "max_steps": 10, "seed": 0},
      "settings": {"split": "train", "episodes_per_task": 4, "max_tasks": 40, ...},
      "armap_version": "0.1.0",
      "created": "2026-11-26T10:00:00+00:00",
      "updated": "2026-11-26T10:05:00+00:00"
    }

``defines`` are the choices that make the data: the environment and those of its options that
change it, the policy, the seed, the episode length, and what an artifact was made from (a
synthesis records its trajectories' ``defines``, a reward model its synthesis', an evaluation
its reward model's). Resuming with a different value of a field the manifest records is
refused with a :class:`~armap_agents.errors.CheckpointError` that names both values.
``settings`` are the last run's other choices, which may change between resumes (which tasks
and how many, episodes per task, concurrency, budgets); they are recorded for the reader only.
A field the manifest does not record yet (an artifact written before manifests existed, or by
a caller that did not say) is adopted from the current run, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from armap_agents.errors import CheckpointError

logger = logging.getLogger(__name__)

MANIFEST = "meta.json"
FILE_KINDS = frozenset({"trajectories"})
"""Kinds of artifact that are a single file (the others are directories)."""
RUNTIME_ENV_OPTIONS = frozenset(
    {"jvm_heap", "java_options", "java_path", "cache_dir", "fast_reset", "max_idle", "pool"}
)
"""Environment options that say how to run an environment (memory, programs, caches, pools),
not what it is: they may change between resumes."""


def manifest_path(artifact: str | Path, kind: str) -> Path:
    """Where the manifest of ``artifact`` (a ``kind`` of artifact) is."""
    artifact = Path(artifact)
    if kind in FILE_KINDS:
        return artifact.with_name(artifact.name + "." + MANIFEST)
    return artifact / MANIFEST


def env_defines(env: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The environment as a manifest's ``defines`` record it: its name (or import path) and
    its options, less the :data:`RUNTIME_ENV_OPTIONS`."""
    kept = {k: v for k, v in (options or {}).items() if k not in RUNTIME_ENV_OPTIONS}
    return {"env": env, "env_options": kept}


def read_manifest(artifact: str | Path, kind: str) -> dict[str, Any] | None:
    """The manifest of ``artifact``, or None when it has none."""
    path = manifest_path(artifact, kind)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("defines"), dict):
        raise CheckpointError(f"{path} is not a manifest (no 'defines' object)")
    return manifest


def recorded_defines(artifact: str | Path, kind: str) -> dict[str, Any] | None:
    """What made ``artifact`` (its manifest's ``defines``), or None when it has no manifest."""
    manifest = read_manifest(artifact, kind)
    return manifest["defines"] if manifest is not None else None


def check_manifest(artifact: str | Path, kind: str, defines: Mapping[str, Any]) -> dict[str, Any]:
    """Raise :class:`~armap_agents.errors.CheckpointError` when ``artifact`` was made by
    something else than ``defines`` say (see the module's docstring); writes nothing.

    Returns the manifest to write: the recorded one (if any) with ``defines`` merged in."""
    asked = _plain(dict(defines))
    manifest = read_manifest(artifact, kind)
    if manifest is None:
        return {"kind": kind, "defines": asked}
    if manifest.get("kind") != kind:
        raise CheckpointError(
            f"{artifact} holds {manifest.get('kind')!r} data, not {kind!r} "
            f"(see {manifest_path(artifact, kind)}): choose another path"
        )
    recorded = manifest["defines"]
    differences = _differences(recorded, asked)
    if differences:
        listed = "; ".join(
            f"{key}: {_show(was)} recorded, {_show(now)} asked" for key, was, now in differences
        )
        raise CheckpointError(
            f"{artifact} was made by another run ({listed}); resuming would mix the two. "
            f"Choose another output path (or run directory), or delete {artifact} to start over "
            f"(what made it: {manifest_path(artifact, kind)})"
        )
    return {**manifest, "defines": _merge(recorded, asked)}


def record_manifest(
    artifact: str | Path,
    kind: str,
    defines: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """Check ``artifact`` against ``defines`` (:func:`check_manifest`) and write its manifest,
    with this run's ``settings``. ``replace``: the artifact is made anew (not resumed), so its
    manifest is rewritten without a check. Returns the manifest written.

    An artifact that has content but no manifest, or a manifest that lacks some of
    ``defines``, is adopted as made by ``defines``, with a warning."""
    from armap_agents import __version__

    asked = _plain(dict(defines))
    if replace:
        manifest: dict[str, Any] = {"kind": kind, "defines": asked}
    else:
        recorded = recorded_defines(artifact, kind)
        manifest = check_manifest(artifact, kind, asked)
        if recorded is None and _has_content(Path(artifact)):
            logger.warning(
                "%s has no manifest (an older version's?): recording it as made by %s",
                artifact,
                _describe(asked),
            )
        elif recorded is not None and manifest["defines"] != recorded:
            logger.warning(
                "%s: recording what its manifest did not say yet: %s",
                artifact,
                _describe(_added(recorded, asked)),
            )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {
        "kind": kind,
        "defines": manifest["defines"],
        "settings": _plain(dict(settings or {})),
        "armap_version": __version__,
        "created": manifest.get("created", now),
        "updated": now,
    }
    path = manifest_path(artifact, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return manifest


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, paths strings), to compare."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _has_content(artifact: Path) -> bool:
    if artifact.is_dir():
        return any(p.name != MANIFEST for p in artifact.iterdir())
    return artifact.is_file() and artifact.stat().st_size > 0


def _differences(recorded: Any, asked: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(field, recorded, asked)`` for each field both record, with different values; nested
    objects are compared field by field (a field only one side has is no difference)."""
    found = []
    for key in recorded.keys() & asked.keys():
        was, now = recorded[key], asked[key]
        if isinstance(was, dict) and isinstance(now, dict) and key != "env_options":
            found += _differences(was, now, f"{prefix}{key}.")
        elif was != now:
            found.append((f"{prefix}{key}", was, now))
    return sorted(found, key=lambda d: d[0])


def _merge(recorded: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    merged = dict(recorded)
    for key, now in asked.items():
        was = merged.get(key)
        merged[key] = _merge(was, now) if isinstance(was, dict) and isinstance(now, dict) else now
    return merged


def _added(recorded: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    added = {}
    for key, now in asked.items():
        if key not in recorded:
            added[key] = now
        elif isinstance(recorded[key], dict) and isinstance(now, dict):
            nested = _added(recorded[key], now)
            if nested:
                added[key] = nested
    return added


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _describe(defines: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_show(value)}" for key, value in defines.items())
