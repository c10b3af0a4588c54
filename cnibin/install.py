"""Install the ``kube-ovn`` plugin as one file into a CNI bin directory.

``python -m cnibin.install --cni-bin-dir /opt/cni/bin`` copies
``cnibin/plugin.py`` there as ``kube-ovn`` with a ``#!<python> -IS`` shebang
(isolated mode, no site-packages: the plugin is standard library only and
starts in a few milliseconds that way). The file is written next to the
target and renamed over it, so a kubelet exec never sees a half-written
plugin. No ``make`` is needed; the agent's DaemonSet runs this at start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cnibin import plugin

DEFAULT_PYTHON = "/usr/bin/python3"


def plugin_source(python: str = DEFAULT_PYTHON) -> str:
    text = Path(plugin.__file__).read_text()
    body = text.split("\n", 1)[1] if text.startswith("#!") else text
    return f"#!{python} -IS\n{body}"


def install_plugin(
    target_dir: Path, *, python: str = DEFAULT_PYTHON, name: str = "kube-ovn"
) -> Path:
    """Write the plugin atomically; returns the installed path."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=target_dir)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(plugin_source(python))
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnibin.install", description=__doc__)
    parser.add_argument("--cni-bin-dir", default=os.environ.get("CNI_BIN_DIR", "/opt/cni/bin"))
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter for the shebang")
    parser.add_argument("--name", default="kube-ovn")
    args = parser.parse_args(argv)
    if not Path(args.python).is_file():
        parser.error(f"--python {args.python} does not exist")
    path = install_plugin(Path(args.cni_bin_dir), python=args.python, name=args.name)
    print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
