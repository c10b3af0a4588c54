"""The agent process over its unix socket, answering from the real etcd.

Raw HTTP requests (the way the plugin and Kube-OVN's own plugin send them):
the socket's permissions, malformed input, a lease written while ADD waits,
an etcd restart, and the metrics an operator would scrape.
"""

from __future__ import annotations

import json
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from ops.lab.cni import AgentProcess, CniOutcome, exec_plugin
from ops.lab.controllers import wait_for
from ops.lab.etcd import EtcdServer
from tests.cni.conftest import Leases

pytestmark = pytest.mark.cni

ADD = {
    "pod_name": "samplepod",
    "pod_namespace": "default",
    "container_id": "c1",
    "net_ns": "/var/run/netns/p",
    "if_name": "net1",
    "provider": "macvlan.default",
    "routes": [],
}


def exchange(path: Path, raw: bytes) -> tuple[int, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body) if body.strip() else None


def post(path: Path, url: str, body: Any) -> tuple[int, Any]:
    payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
    head = f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n"
    head += "Connection: close\r\n\r\n"
    return exchange(path, head.encode() + payload)


def test_socket_is_private_and_its_directory_is_created(agent: AgentProcess) -> None:
    mode = agent.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (
            b"POST /api/v1/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
            "Content-Length",
        ),
        (b"this is not http\r\n\r\n", 400, "request"),
        (b"POST /api/v1/add HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", 400, "Content-Length"),
    ],
)
def test_malformed_http_is_refused_and_the_agent_lives_on(
    agent: AgentProcess, raw: bytes, status: int, words: str | None
) -> None:
    got, body = exchange(agent.socket, raw)
    assert got == status
    if words:
        assert words in body["error"]
    assert agent.process is not None and agent.process.poll() is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        ({**ADD, "pod_name": ""}, "pod_name is required"),
        ({**ADD, "routes": {"dst": "x"}}, "routes: must be a list"),
        ({**ADD, "pod_namespace": ["default"]}, "pod_namespace must be a string"),
    ],
)
def test_malformed_requests_get_400_with_the_reason(
    agent: AgentProcess, leases: Leases, body: Any, words: str
) -> None:
    status, reply = post(agent.socket, "/api/v1/add", body)
    assert status == 400
    assert words in reply["error"]
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert post(agent.socket, "/api/v1/add", ADD)[0] == 200


def test_add_waits_for_a_lease_written_meanwhile(
    etcd_server: EtcdServer, etcd_prefix: str, leases: Leases
) -> None:
    leases.seed_subnet()
    # A wait far longer than the write's delay: a slow etcd fsync must not end it.
    with AgentProcess(etcd_server.endpoint, etcd_prefix, lease_wait=30.0) as agent:
        written = threading.Timer(1.0, lambda: leases.allocate("samplepod", "macvlan.default"))
        written.start()
        try:
            status, reply = post(agent.socket, "/api/v1/add", ADD)
        finally:
            written.join()
    assert status == 200, reply
    assert reply["ips"][0]["cidr"] == "172.17.0.0/16"
    assert reply["nicname"] == "net1"
    assert set(reply) == {"ips", "mac_address", "routes", "mtu", "nicname", "dns"}


def test_del_answers_204_and_unknown_paths_404(agent: AgentProcess) -> None:
    assert post(agent.socket, "/api/v1/del", ADD) == (204, None)
    status, reply = post(agent.socket, "/api/v1/frob", ADD)
    assert status == 404
    assert "frob" in reply["error"]


def plugin_status(kube_ovn: Path, socket_path: Path) -> CniOutcome:
    config = {
        "cniVersion": "1.1.0",
        "name": "macvlan",
        "type": "macvlan",
        "ipam": {"type": "kube-ovn", "server_socket": str(socket_path), "provider": "m.default"},
    }
    return exec_plugin(kube_ovn, "STATUS", config, cni_path=[kube_ovn.parent])


def test_agent_survives_an_etcd_restart(
    agent: AgentProcess, leases: Leases, etcd_server: EtcdServer, kube_ovn: Path
) -> None:
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert post(agent.socket, "/api/v1/add", ADD)[0] == 200
    etcd_server.stop()
    try:
        status, reply = post(agent.socket, "/api/v1/add", ADD)
        assert status == 503, reply
        assert "etcd" in reply["error"]
        assert exchange(agent.socket, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 503
        status_down = plugin_status(kube_ovn, agent.socket)
        assert status_down.doc["code"] == 50
    finally:
        etcd_server.start()
    wait_for(
        "the agent to answer again after etcd came back",
        lambda: post(agent.socket, "/api/v1/add", ADD)[0] == 200,
        timeout=30,
    )
    assert exchange(agent.socket, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    assert plugin_status(kube_ovn, agent.socket).ok


def test_metrics_count_requests_waits_and_errors(agent: AgentProcess, leases: Leases) -> None:
    post(agent.socket, "/api/v1/add", b"{")
    post(agent.socket, "/api/v1/add", {**ADD, "wait_seconds": 0})
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    post(agent.socket, "/api/v1/add", ADD)
    text = agent.metrics()
    assert 'nicpool_cni_request_seconds_count{verb="add"} 3.0' in text
    assert 'nicpool_cni_errors_total{reason="BadRequest"} 1.0' in text
    assert 'nicpool_cni_errors_total{reason="NoLease"} 1.0' in text
    assert "nicpool_cni_wait_seconds_count 1.0" in text


def test_a_plugin_that_gives_up_while_waiting_does_not_disturb_the_agent(
    agent: AgentProcess, leases: Leases
) -> None:
    payload = json.dumps(ADD).encode()
    head = f"POST /api/v1/add HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(agent.socket))
        sock.sendall(head.encode() + payload)
    # The agent answers that request after its 2 s wait, to nobody.
    wait_for(
        "the agent to find its client gone",
        lambda: 'nicpool_cni_errors_total{reason="ClientGone"} 1.0' in agent.metrics(),
        timeout=60,
    )
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert post(agent.socket, "/api/v1/add", ADD)[0] == 200
    assert "Traceback" not in agent.log_text()


def test_a_client_that_never_sends_its_request_is_dropped(agent: AgentProcess) -> None:
    """A connection that opens and then says nothing must not hold an agent thread
    forever (the socket is root-only, but a stuck runtime is enough)."""
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(agent.socket))
    silent.sendall(b"POST /api/v1/add HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")  # and no more
    silent.settimeout(60)
    try:
        closed = silent.recv(65536)  # the agent answers or hangs up; it must not wait forever
    finally:
        silent.close()
    assert closed == b"" or closed.startswith(b"HTTP/1.1 4")
    assert agent.process is not None and agent.process.poll() is None
