"""Install the ``kube-ovn`` plugin as one file into a CNI bin directory.

``python -m cnibin.install --cni-bin-dir /opt/cni/bin`` writes ``kube-ovn``
there: a ``#!<python> -IS`` script (isolated mode, no site-packages: the
plugin is standard library only) that carries ``cnibin/plugin.py`` verbatim
as a string. Python never caches the compiled code of a script it runs
directly, and compiling the plugin's ~600 lines cost more than the rest of
an ADD, so the script runs a compiled copy cached beside it
(``.kube-ovn.<cache_tag>.pyc``) when that copy holds exactly this source for
this interpreter, and otherwise compiles the source and refreshes the cache.
The installer runs the plugin once (VERSION) so the first ADD is already
warm. Files are written next to the target and renamed over it, so a
kubelet exec never sees a half-written plugin. No ``make`` needed.

The plugin runs on the node's own interpreter, which may be older than the
project's: the file supports Python 3.8 and later (see its docstring), and
the installer asks the interpreter its version first and refuses an older
one with a message that says what to do, instead of leaving a plugin that
dies before it prints any CNI JSON.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cnibin import plugin

DEFAULT_PYTHON = "/usr/bin/python3"
MIN_PYTHON = (3, 8)
"""The oldest interpreter cnibin/plugin.py runs on (tests/unit/test_plugin_pythons.py)."""
_ASK_VERSION = "import sys; sys.stdout.write('%d.%d' % sys.version_info[:2])"


class UnsupportedPython(ValueError):
    """The interpreter named for the shebang cannot run the plugin."""


def python_version(python: str) -> tuple[int, int]:
    """``python``'s major and minor version, asked in a way Python 2 understands too."""
    try:
        done = subprocess.run(
            [python, "-E", "-S", "-c", _ASK_VERSION],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise UnsupportedPython(f"cannot run {python}: {exc}") from None
    major, _, minor = done.stdout.partition(".")
    if done.returncode or not (major.isdigit() and minor.isdigit()):
        raise UnsupportedPython(f"{python} does not answer like Python: {done.stderr.strip()}")
    return int(major), int(minor)


def require_supported(python: str) -> None:
    version = python_version(python)
    if version < MIN_PYTHON:
        want = ".".join(map(str, MIN_PYTHON))
        raise UnsupportedPython(
            f"the kube-ovn plugin needs Python {want} or later on the node; {python} is "
            f"{version[0]}.{version[1]}: install python{want} or newer (RHEL 8: "
            f"dnf install python38) and pass it as --python"
        )


LAUNCHER = """\
# nicpool's kube-ovn CNI plugin, written by `python -m cnibin.install`.
# SOURCE below is cnibin/plugin.py verbatim; see cnibin/install.py for why
# it runs from a compiled cache kept beside this file.
import marshal
import sys


def _code():
    head, _, name = sys.argv[0].rpartition("/")
    cache = f"{head or '.'}/.{name}.{sys.implementation.cache_tag}.pyc"
    try:
        with open(cache, "rb") as f:
            source, code = marshal.loads(f.read())
        if source == SOURCE:
            return code
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(SOURCE, sys.argv[0], "exec")
    try:
        with open(f"{cache}.{id(code)}", "wb") as f:
            f.write(marshal.dumps((SOURCE, code)))
        __import__("posix").rename(f.name, cache)
    except OSError:
        pass
    return code


exec(_code(), {"__name__": "__main__", "__file__": sys.argv[0]})
"""


def plugin_source(python: str = DEFAULT_PYTHON) -> str:
    """The installed file: shebang, launcher, and the plugin's source as SOURCE."""
    text = Path(plugin.__file__).read_text()
    body = text.split("\n", 1)[1] if text.startswith("#!") else text
    if "'''" in body or body.endswith("\\"):
        raise ValueError("cnibin/plugin.py cannot be embedded as a raw string literal")
    return f"#!{python} -IS\nSOURCE = r'''{body}'''\n{LAUNCHER}"


def install_plugin(
    target_dir: Path, *, python: str = DEFAULT_PYTHON, name: str = "kube-ovn"
) -> Path:
    """Write the plugin atomically; returns the installed path.

    Raises :class:`UnsupportedPython`, having written nothing, when
    ``python`` is older than MIN_PYTHON.
    """
    require_supported(python)
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
    warm_up(target)
    return target


def warm_up(target: Path) -> None:
    """Run the plugin once so it writes its compiled cache with its own interpreter."""
    subprocess.run(
        [str(target)],
        input=b'{"cniVersion": "1.1.0"}',
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        check=True,
        timeout=60,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnibin.install", description=__doc__)
    parser.add_argument("--cni-bin-dir", default=os.environ.get("CNI_BIN_DIR", "/opt/cni/bin"))
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter for the shebang")
    parser.add_argument("--name", default="kube-ovn")
    args = parser.parse_args(argv)
    if not Path(args.python).is_file():
        parser.error(f"--python {args.python} does not exist")
    try:
        path = install_plugin(Path(args.cni_bin_dir), python=args.python, name=args.name)
    except UnsupportedPython as exc:
        parser.error(str(exc))
    print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
