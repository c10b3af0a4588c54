"""Installing the plugin as one file, and the agent's socket and flags.

These are what an operator meets first: the file kubelet execs, the socket
the plugin dials, and the flags/env of the DaemonSet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cnibin.agent.main import metrics_address, parse_args
from cnibin.agent.server import AgentServer
from cnibin.agent.service import AgentService
from cnibin.install import install_plugin, main

pytestmark = pytest.mark.unit


def test_installed_plugin_is_one_isolated_executable_file(tmp_path: Path) -> None:
    path = install_plugin(tmp_path / "bin", python=sys.executable)
    assert path.read_text().splitlines()[0] == f"#!{sys.executable} -IS"
    assert os.access(path, os.X_OK)
    done = subprocess.run(
        [str(path)],
        input=b'{"cniVersion": "1.0.0"}',
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0
    assert "1.1.0" in json.loads(done.stdout)["supportedVersions"]


def test_install_replaces_an_existing_plugin_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "kube-ovn").write_text("previous plugin")
    assert main(["--cni-bin-dir", str(tmp_path), "--python", sys.executable]) == 0
    tag = sys.implementation.cache_tag
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".kube-ovn.{tag}.pyc", "kube-ovn"]
    assert "previous plugin" not in (tmp_path / "kube-ovn").read_text()


def version_of(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [str(path)], input=b"{}", env={"CNI_COMMAND": "VERSION"}, capture_output=True, check=True
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("cache", [b"garbage", None])
def test_a_corrupt_or_missing_compiled_cache_is_rebuilt(
    tmp_path: Path, cache: bytes | None
) -> None:
    path = install_plugin(tmp_path, python=sys.executable)
    cached = tmp_path / f".kube-ovn.{sys.implementation.cache_tag}.pyc"
    assert cached.exists()
    if cache is None:
        cached.unlink()
    else:
        cached.write_bytes(cache)
    assert version_of(path)["cniVersion"] == "1.1.0"
    assert cached.read_bytes() != cache
    assert cached.exists()


def test_a_cache_of_another_plugin_version_is_not_used(tmp_path: Path) -> None:
    path = install_plugin(tmp_path, python=sys.executable)
    cached = tmp_path / f".kube-ovn.{sys.implementation.cache_tag}.pyc"
    old = cached.read_bytes()
    path.write_text(path.read_text().replace('"1.1.0")', '"1.1.0", "9.9.9")', 1))
    assert "9.9.9" in version_of(path)["supportedVersions"]  # type: ignore[operator]
    assert cached.read_bytes() != old


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (":10666", ("0.0.0.0", 10666)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("[::1]:9", ("::1", 9)),
        ("", None),
    ],
)
def test_metrics_address(value: str, expected: tuple[str, int] | None) -> None:
    assert metrics_address(value) == expected


def test_flags_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NICPOOL_SOCKET", "/tmp/x.sock")
    monkeypatch.setenv("NODE_NAME", "node-7")
    monkeypatch.setenv("NICPOOL_METRICS_ADDR", "127.0.0.1:1")
    args = parse_args([])
    assert (args.socket, args.node_name, args.metrics_addr) == (
        "/tmp/x.sock",
        "node-7",
        "127.0.0.1:1",
    )
    assert args.lease_wait == 20.0
    with pytest.raises(SystemExit):
        parse_args(["--lease-wait", "-1"])


class NoLeases:
    def get_any(self, refs: object) -> None:
        return None

    def wait_any(self, refs: object, timeout: float) -> None:
        return None


def test_socket_replaces_a_stale_one_but_not_a_live_one_or_a_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "agent.sock"
    stale = socket.socket(socket.AF_UNIX)
    path.parent.mkdir()
    stale.bind(str(path))
    stale.close()
    server = AgentServer(path, AgentService(source=NoLeases()))
    try:
        assert (path.stat().st_mode & 0o777) == 0o600
        with pytest.raises(FileExistsError, match="another process"):
            AgentServer(path, AgentService(source=NoLeases()))
    finally:
        server.server_close()
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(FileExistsError, match="not a socket"):
        AgentServer(path, AgentService(source=NoLeases()))
