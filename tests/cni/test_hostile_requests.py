"""Hostile plugin requests get 400 from the real agent, and are never echoed.

The agent echoes a request's ``routes`` and ``dns`` into its reply, and the
reply is what a main plugin hands to ``ip`` as root; the request's names
select etcd keys. Anyone who may write a NAD chooses ``routes``,
``provider`` and ``dns``; the pod's networks annotation chooses the
interface name. So the agent parses every field into its type before using
it, whoever the client is (a current plugin refuses these values itself; an
older one, or Kube-OVN's, may not). Each case is a raw HTTP request to the
agent process, with a lease in etcd that a well-formed request would get.
"""

from __future__ import annotations

from typing import Any

import pytest

from ops.lab.cni import AgentProcess
from tests.cni.conftest import Leases
from tests.cni.test_agent import ADD, post

pytestmark = pytest.mark.cni

SMUGGLED = "\nnetns add pwn\nnetns exec pwn touch /tmp/pwned"
GOOD_ROUTE = {"dst": "192.0.2.0/24", "gw": "172.17.0.254"}

HOSTILE: list[tuple[str, Any]] = [
    ("pod_name", f"samplepod{SMUGGLED}"),
    ("pod_name", "SamplePod"),
    ("pod_name", "../samplepod"),
    ("pod_name", "p" * 254),
    ("pod_namespace", "default/x"),
    ("pod_namespace", "kube.system"),
    ("pod_namespace", "d" * 64),
    ("provider", f"macvlan.default{SMUGGLED}"),
    ("provider", "macvlan.default dev lo"),
    ("provider", "macvlan..default"),
    ("provider", "macvlan.default/x"),
    ("if_name", f"net1{SMUGGLED}"),
    ("if_name", "net 1"),
    ("if_name", "net1/x"),
    ("if_name", "x" * 16),
    ("if_name", ".."),
    ("container_id", "c1; touch /tmp/pwned"),
    ("container_id", "-c1"),
    ("net_ns", "relative/netns"),
    ("net_ns", f"/var/run/netns/p{SMUGGLED}"),
    ("pod_uid", "uid with spaces"),
    ("wait_seconds", -1),
    ("routes", [{"dst": "192.0.2.0/24", "gw": f"172.17.0.254 dev net1 onlink{SMUGGLED}"}]),
    ("routes", [{"dst": "192.0.2.0/24", "gw": "172.17.0.254 dev lo"}]),
    ("routes", [{"dst": f"192.0.2.0/24{SMUGGLED}", "gw": "172.17.0.254"}]),
    ("routes", [{"dst": "192.0.2.0/24", "gw": "fd00::1"}]),
    ("routes", [{"dst": "192.0.2.0/33", "gw": "172.17.0.254"}]),
    ("routes", [{"dst": "", "gw": ""}]),
    ("routes", [{**GOOD_ROUTE, "table": "local"}]),
    ("routes", [GOOD_ROUTE] * 1000),
    ("dns", "nameserver 1.1.1.1"),
    ("dns", {"nameservers": "1.1.1.1"}),
    ("dns", {"nameservers": [f"1.1.1.1{SMUGGLED}"]}),
    ("dns", {"domain": f"cluster.local{SMUGGLED}"}),
    ("dns", {"search": ["svc cluster.local"]}),
    ("dns", {"options": ["ndots:5\nnameserver 6.6.6.6"]}),
    ("dns", {"resolv_conf": "/etc/shadow"}),
]


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param(f, v, id=f"{f}-{i}") for i, (f, v) in enumerate(HOSTILE)],
)
def test_a_hostile_request_gets_400_naming_the_field(
    agent: AgentProcess, leases: Leases, field: str, value: Any
) -> None:
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert post(agent.socket, "/api/v1/add", ADD)[0] == 200
    for verb in ("add", "del"):
        status, reply = post(agent.socket, f"/api/v1/{verb}", {**ADD, field: value})
        assert status == 400, reply
        assert field in reply["error"]
        assert set(reply) == {"error"}  # no lease, no echoed routes
    assert agent.process is not None and agent.process.poll() is None


def test_a_wait_of_nan_or_infinity_is_refused(agent: AgentProcess) -> None:
    """Python's json reads the non-standard NaN and Infinity literals."""
    for literal in (b"NaN", b"Infinity"):
        body = b'{"pod_name": "p", "pod_namespace": "d", "provider": "m.d", "wait_seconds": '
        status, reply = post(agent.socket, "/api/v1/add", body + literal + b"}")
        assert status == 400, reply
        assert "wait_seconds" in reply["error"]


def test_routes_and_dns_are_echoed_in_canonical_form(agent: AgentProcess, leases: Leases) -> None:
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    request = {
        **ADD,
        "routes": [{"dst": "192.0.2.77/24", "gw": "172.17.0.254"}, {"gw": "FD00:0::1"}],
        "dns": {"nameservers": ["1.1.1.1"], "search": ["svc.local"], "options": ["ndots:5"]},
    }
    status, reply = post(agent.socket, "/api/v1/add", request)
    assert status == 200, reply
    assert reply["routes"] == [{"dst": "192.0.2.0/24", "gw": "172.17.0.254"}, {"gw": "fd00::1"}]
    assert reply["dns"] == request["dns"]
