"""The plugin file runs on Python 3.8 and later; the installer refuses older ones.

A node runs the plugin with its own ``python3`` (Ubuntu 20.04: 3.8, Debian
11: 3.9, RHEL 8: 3.6 unless python38 is installed). Two kinds of proof: the
installed file, run by real 3.8 and 3.9 interpreters where this machine has
them (tests/support/pythons.py), answers in CNI JSON; and, whatever the
machine has, the source parses with 3.8's grammar and evaluates no
annotation at run time (where ``str | bytes`` or ``dict[str, Any]`` would
fail on 3.8 and 3.9). The cni tier runs ADD, CHECK and DEL under 3.8 too.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from cnibin import install, plugin
from tests.support.pythons import OLD_SUPPORTED, TOO_OLD, python_or_missing

pytestmark = pytest.mark.unit

SOURCE = Path(plugin.__file__).read_text()


def test_the_source_parses_with_python_38_grammar() -> None:
    ast.parse(SOURCE, feature_version=(3, 8))


def test_no_annotation_is_evaluated_at_run_time() -> None:
    """``from __future__ import annotations`` first: annotations stay strings."""
    body = ast.parse(SOURCE).body
    first = body[1] if isinstance(body[0], ast.Expr) else body[0]  # after the docstring
    assert isinstance(first, ast.ImportFrom)
    assert (first.module, [a.name for a in first.names]) == ("__future__", ["annotations"])


def test_the_installer_supports_what_the_file_supports() -> None:
    assert install.MIN_PYTHON == (3, 8)


def run(path: Path, command: str, config: object) -> dict[str, object]:
    """The plugin's stdout as JSON ({} when empty); it must never crash."""
    done = subprocess.run(
        [str(path)],
        input=config if isinstance(config, bytes) else json.dumps(config).encode(),
        env={"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_IFNAME": "net1"}
        | {"CNI_NETNS": "/var/run/netns/p", "CNI_ARGS": "K8S_POD_NAMESPACE=d;K8S_POD_NAME=p"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert b"Traceback" not in done.stderr
    return dict(json.loads(done.stdout)) if done.stdout.strip() else {}


@pytest.mark.parametrize("version", OLD_SUPPORTED)
def test_the_installed_plugin_answers_on_an_older_python(tmp_path: Path, version: str) -> None:
    python = python_or_missing(version)
    path = install.install_plugin(tmp_path, python=python)
    tag = f"cpython-{version.replace('.', '')}"
    assert (tmp_path / f".kube-ovn.{tag}.pyc").exists()
    assert run(path, "VERSION", {})["supportedVersions"] == list(plugin.SUPPORTED_VERSIONS)
    ipam = {"type": "kube-ovn", "server_socket": "/nonexistent.sock", "provider": "m.default"}
    config = {"cniVersion": "1.0.0", "type": "macvlan", "ipam": ipam}
    hostile = {**config, "ipam": {**ipam, "routes": [{"gw": "10.0.0.1 dev lo"}]}}
    assert run(path, "ADD", hostile)["code"] == plugin.E_INVALID_CONFIG
    assert run(path, "DEL", config) == {}  # no agent: DEL goes on, prints nothing
    assert run(path, "ADD", b"[" * 100_000)["code"] == plugin.E_DECODE


@pytest.mark.parametrize("version", TOO_OLD)
def test_install_refuses_an_older_python_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    python = python_or_missing(version)
    with pytest.raises(SystemExit) as exited:
        install.main(["--cni-bin-dir", str(tmp_path / "bin"), "--python", python])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"needs Python 3.8 or later on the node; {python} is {version}" in error
    assert not (tmp_path / "bin").exists()


def test_install_refuses_what_is_not_a_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'not python' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(install.UnsupportedPython, match="does not answer like Python"):
        install.install_plugin(tmp_path / "bin", python=str(fake))
    assert not (tmp_path / "bin").exists()
