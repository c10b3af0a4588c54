"""Other Python interpreters on this machine, for the plugin's "3.8 and later".

The plugin runs on a node's own ``python3``, often older than the project's
3.11. Tests run it under the oldest versions it supports when this machine
has them: ``NICPOOL_PYTHON38`` (``39``, ...) if set, else ``python3.8`` on
PATH, else a pyenv build (``~/.pyenv/versions/3.8.*``). A test that needs
one that is missing goes through :func:`tests.support.components.missing`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cnibin.install import UnsupportedPython, python_version
from tests.support.components import missing

OLD_SUPPORTED = ("3.8", "3.9")
"""The versions older than the project's that the plugin file promises to run on."""
TOO_OLD = ("3.6", "3.7")


def find_python(version: str) -> str | None:
    """An interpreter that reports ``version``, or None."""
    env = os.environ.get(f"NICPOOL_PYTHON{version.replace('.', '')}")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    builds = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)
    for candidate in [env, shutil.which(f"python{version}"), *map(str, builds)]:
        if candidate and _reports(candidate, version):
            return candidate
    return None


def _reports(python: str, version: str) -> bool:
    try:
        return ".".join(map(str, python_version(python))) == version
    except UnsupportedPython:
        return False


def python_or_missing(version: str) -> str:
    python = find_python(version)
    if python is None:
        missing(
            f"Python {version}",
            f"set NICPOOL_PYTHON{version.replace('.', '')} or install python{version} "
            f"(pyenv install {version})",
        )
        raise AssertionError("unreachable")
    return python
