"""Finding the real parts a test tier needs, and what to do when one is missing.

DESIGN.md: a test that needs a missing component fails in CI (``CI=true``)
and skips with a clear reason elsewhere. Every fixture that finds a component
missing goes through :func:`missing`, so that rule lives in one place
(finding binaries is the lab's job: :mod:`ops.lab.binaries`).
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str, hint: str) -> None:
    """Fail (CI) or skip (elsewhere) because ``what`` is not on this machine."""
    message = f"{what} is not available: {hint}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
