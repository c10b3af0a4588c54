"""Finding the real parts a test tier needs, and what to do when one is missing.

DESIGN.md: a test that needs a missing component fails in CI (``CI=true``)
and skips with a clear reason elsewhere. Every fixture that looks for a binary
goes through :func:`missing` so that rule lives in one place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str, hint: str) -> None:
    """Fail (CI) or skip (elsewhere) because ``what`` is not on this machine."""
    message = f"{what} is not available: {hint}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def assets_dir() -> Path | None:
    """The envtest-style binary directory (``KUBEBUILDER_ASSETS``), if set."""
    value = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(value) if value else None


def find_binary(name: str, *, extra_dirs: tuple[Path, ...] = ()) -> Path | None:
    """``name`` from KUBEBUILDER_ASSETS first, then ``extra_dirs``, then PATH."""
    dirs = [d for d in (assets_dir(), *extra_dirs) if d is not None]
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None
