"""Big records against etcd's limits (issue 8, items 5 and 12).

etcd refuses a request over ``--max-request-bytes`` (1.5 MiB by default) and
gRPC refuses a response over the client's receive limit (4 MiB by default).
Pods with large ``routes`` annotations make large attachment records, so:

* group commit caps a transaction by bytes as well as by ops, and one
  oversized request is refused alone, never failing its neighbours;
* every range read is paged so that no response can outgrow the limit.
"""

from __future__ import annotations

import pytest

from store.core.identity import SubnetName
from store.core.records import Route
from store.errors import RecordTooLarge
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import attachment, ips, register, request

pytestmark = pytest.mark.store


def _routes(count: int) -> tuple[Route, ...]:
    """``count`` distinct routes (about 45 bytes each once encoded)."""
    return tuple(
        Route(dst=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}/32", gw="192.168.0.1")
        for n in range(count)
    )


def test_ten_pods_with_large_routes_are_all_allocated(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    # ~210 KB per attachment: ten of them are ~2.1 MB, over etcd's 1.5 MiB request limit.
    register(client, etcd_prefix, cidr_block="10.9.0.0/24")
    routes = _routes(4700)
    results = ipam.allocate([request(f"p{n}", routes=routes) for n in range(10)], fence=UNFENCED)
    assert len(ips(results)) == 10
    assert all(len(attachment(r).routes) == 4700 for r in results)


def test_one_oversized_request_is_refused_alone(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.9.0.0/24")
    huge = request("huge", routes=_routes(40_000))  # ~1.8 MB: can never fit in one request
    results = ipam.allocate([request("a"), huge, request("b")], fence=UNFENCED)
    assert isinstance(results[1], RecordTooLarge)
    assert ips([results[0], results[2]]) == ["10.9.0.2", "10.9.0.3"]
    assert ipam.get(huge.ref) is None


def test_attachments_larger_than_one_grpc_response_are_read_back(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    # 25 attachments of ~210 KB: ~5 MB, more than one 4 MiB gRPC response.
    register(client, etcd_prefix, cidr_block="10.9.0.0/24")
    routes = _routes(4700)
    for start in range(0, 25, 5):
        batch = [request(f"p{n}", routes=routes) for n in range(start, start + 5)]
        assert len(ips(ipam.allocate(batch, fence=UNFENCED))) == 5
    found = Ipam(client, etcd_prefix).attachments(SubnetName("net1"))
    assert len(found) == 25
    keys, _ = client.get_prefix(etcd_prefix, keys_only=True)
    assert len(keys) > 25
