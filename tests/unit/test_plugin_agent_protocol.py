"""The agent's wire format and decisions, table-driven, without I/O.

The agent's HTTP layer runs against the real etcd-backed reader in
tests/cni; here the same service answers from an in-memory lease source so
every status code and reply shape is pinned down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from cnibin.agent.protocol import AddRequest, RequestError, build_add_reply, parse_add_request
from cnibin.agent.service import AgentService
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.records import Attachment, LeasedIP, RecordError, Route
from store.errors import Unavailable

pytestmark = pytest.mark.unit

REF = AttachmentRef(PodRef("default", "samplepod"), Provider("macvlan.default"))
ATT = Attachment(
    ref=REF,
    uid=PodUID("uid-1"),
    subnet=SubnetName("macvlan"),
    interface="net1",
    ips=(LeasedIP(4, "172.17.0.11", "172.17.0.0/16", "172.17.0.1"),),
    mac=Mac("00:00:00:53:6b:bb"),
    mtu=1500,
)
BODY = {
    "pod_name": "samplepod",
    "pod_namespace": "default",
    "container_id": "c1",
    "net_ns": "/var/run/netns/p",
    "if_name": "net1",
    "provider": "macvlan.default",
    "routes": [],
}


def request(**changes: Any) -> AddRequest:
    return parse_add_request(json.dumps({**BODY, **changes}).encode())


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({**BODY, "pod_name": ""}).encode(), "pod_name is required"),
        (json.dumps({k: v for k, v in BODY.items() if k != "provider"}).encode(), "provider"),
        (json.dumps({**BODY, "pod_namespace": 3}).encode(), "pod_namespace must be a string"),
        (json.dumps({**BODY, "routes": "10.0.0.0/8"}).encode(), "routes: must be a list"),
        (json.dumps({**BODY, "routes": [{"gw": 1}]}).encode(), "1 is not an IP address"),
        (json.dumps({**BODY, "wait_seconds": -1}).encode(), "wait_seconds"),
        (json.dumps({**BODY, "dns": []}).encode(), "dns"),
        (b" " * (2 << 20), "larger than"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: bytes, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_add_request(body)
    assert words in str(caught.value)


def test_request_maps_to_the_attachment_ref() -> None:
    parsed = request(pod_uid="uid-1", routes=[{"dst": "10.9.0.0/16", "gw": "172.17.0.254"}])
    assert parsed.ref == REF
    assert parsed.pod_uid == "uid-1"
    assert parsed.routes == (("10.9.0.0/16", "172.17.0.254"),)


def test_a_secondary_nic_gets_no_gateway_and_no_default_route() -> None:
    reply = build_add_reply(ATT, request())
    assert reply == {
        "ips": [{"protocol": "IPv4", "ip": "172.17.0.11", "cidr": "172.17.0.0/16", "gateway": ""}],
        "mac_address": "00:00:00:53:6b:bb",
        "routes": [],
        "mtu": 1500,
        "nicname": "net1",
        "dns": {},
    }


@pytest.mark.parametrize(("default_route", "if_name"), [(True, "net1"), (False, "eth0")])
def test_the_default_route_nic_gets_gateway_and_default_route(
    default_route: bool, if_name: str
) -> None:
    att = Attachment(**{**ATT.__dict__, "default_route": default_route})
    reply = build_add_reply(att, request(if_name=if_name))
    assert reply["ips"][0]["gateway"] == "172.17.0.1"
    assert reply["routes"] == [{"gw": "172.17.0.1"}]


def test_annotation_routes_come_first_and_a_given_default_wins() -> None:
    routes = (Route("192.168.0.0/24", "172.17.0.254"), Route("", "172.17.0.254"))
    att = Attachment(**{**ATT.__dict__, "routes": routes, "default_route": True})
    reply = build_add_reply(att, request(routes=[{"dst": "10.9.0.0/16", "gw": "172.17.0.253"}]))
    assert reply["routes"] == [
        {"dst": "192.168.0.0/24", "gw": "172.17.0.254"},
        {"gw": "172.17.0.254"},
        {"dst": "10.9.0.0/16", "gw": "172.17.0.253"},
    ]


class MemorySource:
    def __init__(self, att: Attachment | None = None, error: Exception | None = None) -> None:
        self.att, self.error = att, error
        self.waits: list[float] = []

    def get_any(self, refs: Sequence[AttachmentRef]) -> Attachment | None:
        if self.error:
            raise self.error
        return self.att if self.att and self.att.ref in refs else None

    def wait_any(self, refs: Sequence[AttachmentRef], timeout: float) -> Attachment | None:
        self.waits.append(timeout)
        return self.get_any(refs)


@pytest.mark.parametrize(
    ("source", "changes", "status", "reason"),
    [
        (MemorySource(ATT), {}, 200, ""),
        (MemorySource(ATT), {"pod_uid": "uid-1"}, 200, ""),
        (MemorySource(ATT), {"pod_uid": "uid-2"}, 409, "UidMismatch"),
        (MemorySource(None), {}, 504, "LeaseTimeout"),
        (MemorySource(None), {"wait_seconds": 0}, 404, "NoLease"),
        (MemorySource(error=Unavailable("down")), {}, 503, "EtcdUnavailable"),
        (MemorySource(error=RecordError("bad")), {}, 500, "UnreadableRecord"),
    ],
)
def test_add_answers(
    source: MemorySource, changes: dict[str, Any], status: int, reason: str
) -> None:
    answer = AgentService(source=source, lease_wait=3).add(request(**changes))
    assert (answer.status, answer.reason) == (status, reason)
    if status >= 400:
        assert answer.body and answer.body["error"]


def test_wait_is_bounded_by_the_agent_budget() -> None:
    source = MemorySource(None)
    service = AgentService(source=source, lease_wait=3)
    service.add(request(wait_seconds=60))
    service.add(request())
    assert source.waits == [3, 3]


def test_gc_counts_served_attachments_the_runtime_forgot() -> None:
    service = AgentService(source=MemorySource(ATT))
    service.add(request(container_id="c1"))
    service.add(request(container_id="c2"))
    answer = service.gc({("c2", "net1")})
    assert answer.body == {"unknown": [{"containerID": "c1", "ifname": "net1"}]}
    assert service.gc({("c2", "net1")}).body == {"unknown": []}


def test_del_never_fails_and_forgets_the_attachment() -> None:
    service = AgentService(source=MemorySource(None))
    assert service.delete(request()).status == 204
    assert service.gc(set()).body == {"unknown": []}


def test_health_follows_the_last_etcd_call() -> None:
    source = MemorySource(error=Unavailable("down"))
    service = AgentService(source=source, lease_wait=0)
    service.add(request())
    assert service.health().status == 503
    source.error = None
    service.add(request())
    assert service.health().status == 200


def test_a_nic_of_a_nad_attached_twice_is_found_under_its_interface_key() -> None:
    """The controller keys such NICs by provider and interface; the plugin sends the NAD's
    provider and the interface. Never ``<provider>.<interface>`` as one string: a provider
    can literally be named that (issue 8 item 15)."""
    second = AttachmentRef(REF.pod, REF.provider, "net2")
    stored = Attachment(**{**ATT.__dict__, "ref": second, "interface": "net2"})
    answer = AgentService(source=MemorySource(stored), lease_wait=3).add(request(if_name="net2"))
    assert answer.status == 200
    assert request(if_name="net2").candidates() == (second, REF)
    assert request(if_name="").candidates() == (REF,)
    literal = AttachmentRef(REF.pod, Provider(f"{REF.provider}.net2"))
    assert literal not in request(if_name="net2").candidates()
