"""The leader's allocation cache never refuses a pod on its say alone (issue 8, item 11).

``Ipam`` caches bitmap chunks and specs between transactions: the leader is
normally the only writer. But ``nicpoolctl release`` writes too, and so did
the previous leader before a failover. A refusal (subnet exhausted, address
held, pool exhausted) computed from a stale cache would then be wrong, and
nothing would ever re-read: the pod stays refused forever. Every refusal is
confirmed against etcd before it is returned, and a new term starts cold.
"""

from __future__ import annotations

import pytest

from store.core.identity import SubnetName
from store.errors import AddressInUse, PoolExhausted, SubnetExhausted
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import ips, ref, register, request

pytestmark = pytest.mark.store


def test_exhaustion_seen_in_the_cache_is_confirmed_in_etcd(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")  # .2 .. .6 usable
    assert len(ips(ipam.allocate([request(p) for p in "abcde"], fence=UNFENCED))) == 5
    [refused] = ipam.allocate([request("f")], fence=UNFENCED)
    assert isinstance(refused, SubnetExhausted)

    # Another writer (nicpoolctl release, a previous leader) frees an address.
    Ipam(client, etcd_prefix).release(ref("c"), fence=UNFENCED)

    assert ips(ipam.allocate([request("f")], fence=UNFENCED)) == ["10.0.0.4"]


def test_a_fixed_address_freed_elsewhere_is_not_refused_as_held(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a", fixed_ips=("10.0.0.50",))], fence=UNFENCED)
    [held] = ipam.allocate([request("b", fixed_ips=("10.0.0.50",))], fence=UNFENCED)
    assert isinstance(held, AddressInUse)

    Ipam(client, etcd_prefix).release(ref("a"), fence=UNFENCED)

    assert ips(ipam.allocate([request("b", fixed_ips=("10.0.0.50",))], fence=UNFENCED)) == [
        "10.0.0.50"
    ]


def test_a_pool_freed_elsewhere_is_not_refused_as_exhausted(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    pool = (("10.0.0.10",), ("10.0.0.11",))
    ipam.allocate([request("a", pool=pool), request("b", pool=pool)], fence=UNFENCED)
    [exhausted] = ipam.allocate([request("c", pool=pool)], fence=UNFENCED)
    assert isinstance(exhausted, PoolExhausted)

    Ipam(client, etcd_prefix).release(ref("b"), fence=UNFENCED)

    assert ips(ipam.allocate([request("c", pool=pool)], fence=UNFENCED)) == ["10.0.0.11"]


def test_forget_drops_every_cached_subnet(client: EtcdClient, etcd_prefix: str, ipam: Ipam) -> None:
    """A new leadership term starts cold: nothing cached in an earlier term is trusted."""
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    ipam.allocate([request("a")], fence=UNFENCED)
    assert ipam.cached_subnets() == {SubnetName("net1")}
    ipam.forget_all()
    assert ipam.cached_subnets() == set()
