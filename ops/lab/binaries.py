"""Finding the real binaries the lab runs: KUBEBUILDER_ASSETS, then extra dirs, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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
