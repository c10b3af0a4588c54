"""Asking again for what a pod already has: the controller does this after every
restart and failover, with the pod's fixed-address annotations as they stand."""

from __future__ import annotations

import pytest

from store.core.identity import Mac
from store.errors import AddressInUse
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import NAMESPACE, attachment, dump, register, request

pytestmark = pytest.mark.store


def test_a_fixed_address_request_repeated_by_a_new_process_returns_the_same_attachment(
    client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    fixed = request("a", fixed_ips=("10.0.0.10",), mac=Mac("02:00:00:00:00:0A"))
    first = attachment(Ipam(client, etcd_prefix).allocate([fixed], fence=UNFENCED)[0])
    before = dump(client, etcd_prefix)

    again = Ipam(client, etcd_prefix).allocate([fixed], fence=UNFENCED)[0]

    assert again == first
    assert dump(client, etcd_prefix) == before


def test_the_same_fixed_address_for_another_pod_is_still_refused(
    client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    Ipam(client, etcd_prefix).allocate([request("a", fixed_ips=("10.0.0.10",))], fence=UNFENCED)
    before = dump(client, etcd_prefix)

    (refused,) = Ipam(client, etcd_prefix).allocate(
        [request("b", fixed_ips=("10.0.0.10",))], fence=UNFENCED
    )

    assert isinstance(refused, AddressInUse)
    assert f"pod {NAMESPACE}/a " in str(refused)
    assert dump(client, etcd_prefix) == before


def test_a_pool_request_repeated_returns_the_entry_it_already_holds(
    client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    pool = (("10.0.0.200",),)
    first = attachment(
        Ipam(client, etcd_prefix).allocate([request("a", pool=pool)], fence=UNFENCED)[0]
    )
    again = Ipam(client, etcd_prefix).allocate([request("a", pool=pool)], fence=UNFENCED)[0]
    assert again == first
