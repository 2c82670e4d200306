"""Credentials out of error texts before they are written anywhere.

A gateway that echoes the request's API key in its error body would otherwise put the key into
a failures file or an evaluation's outcomes. :func:`scrub_secrets` replaces, in a text:

* the value of every environment variable whose name says it holds a credential
  (``*API_KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``: ``OPENAI_API_KEY``,
  ``ARMAP_RM_TOKEN`` ...), where it is at least :data:`MIN_SECRET` characters long;
* what follows ``Bearer`` and OpenAI-style keys (``sk-`` and 16 or more key characters).
"""

from __future__ import annotations

import os
import re

__all__ = ["MIN_SECRET", "REDACTED", "scrub_secrets"]

REDACTED = "***"
MIN_SECRET = 8
"""Shorter values (``"1"``, ``"true"``) are not taken for credentials."""
_SECRET_NAME = re.compile(r"API_?KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1>{REDACTED}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), f"sk-{REDACTED}"),
)


def scrub_secrets(text: str) -> str:
    """``text`` with the credentials it may hold replaced by ``***`` (see the module)."""
    for name, value in os.environ.items():
        if len(value) >= MIN_SECRET and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
