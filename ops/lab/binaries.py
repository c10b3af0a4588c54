"""Finding the real binaries the lab runs: KUBEBUILDER_ASSETS, then extra dirs, then PATH.

``find_assets`` locates (or builds, via ``ops/tools/build-test-binaries.sh``)
the envtest-style directory with etcd, kube-apiserver and
kube-controller-manager.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "ops" / "tools" / "build-test-binaries.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")


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


def find_assets(*, build: bool = False) -> Path | None:
    """The directory holding etcd, kube-apiserver and kube-controller-manager.

    ``KUBEBUILDER_ASSETS`` first, then the build script's cache. With
    ``build=True`` a missing cache is built (10-15 minutes the first time).
    """
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env and _has_binaries(Path(env)):
        return Path(env)
    args = ["bash", str(BUILD_SCRIPT)] + ([] if build else ["--cached-only"])
    env_no_assets = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"}
    result = subprocess.run(args, capture_output=True, text=True, env=env_no_assets, check=False)
    found = Path(result.stdout.strip()) if result.returncode == 0 else None
    return found if found is not None and _has_binaries(found) else None


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)
