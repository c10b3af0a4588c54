"""Editing a registered subnet while pods hold addresses (store/subnets.py rules)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from store.core.identity import SubnetName
from store.core.keys import Keys
from store.core.records import Attachment
from store.core.subnetspec import parse_subnet_spec
from store.errors import ExcludedAddress, InvalidSubnetSpec, SubnetExhausted
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from store.subnets import SpecOrigin, StaleSpec, SubnetInUse, Subnets
from tests.store.helpers import NET1, PROVIDER, dump, ips, lease_addresses, ref, register, request

pytestmark = pytest.mark.store


def spec(**fields: object) -> object:
    return parse_subnet_spec("net1", provider=PROVIDER, **fields)  # type: ignore[arg-type]


def test_registered_spec_reads_back_and_lists(client: EtcdClient, subnets: Subnets) -> None:
    net1 = parse_subnet_spec(
        "net1", provider=PROVIDER, cidr_block="10.0.0.0/24,fd00::/120", exclude_ips=["10.0.0.9"]
    )
    net2 = parse_subnet_spec("net2", provider="net2.default", cidr_block="10.1.0.0/16", mtu=1400)
    assert subnets.put(net1, fence=UNFENCED) == []
    assert subnets.put(net2, fence=UNFENCED) == []
    assert subnets.get(NET1) == net1
    assert sorted(s.name for s in subnets.all()) == ["net1", "net2"]
    assert subnets.get(SubnetName("absent")) is None


def test_putting_the_same_spec_again_writes_nothing(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets
) -> None:
    net1 = parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.0.0.0/24")
    subnets.put(net1, fence=UNFENCED)
    before = dump(client, etcd_prefix)
    subnets.put(net1, fence=UNFENCED)
    assert dump(client, etcd_prefix) == before


def test_newly_excluded_lease_is_kept_reported_and_never_handed_out_again(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/28")
    [held] = ips(ipam.allocate([request("a")], fence=UNFENCED))
    assert held == "10.0.0.2"

    narrowed = parse_subnet_spec(
        "net1", provider=PROVIDER, cidr_block="10.0.0.0/28", exclude_ips=["10.0.0.2..10.0.0.3"]
    )
    stranded = subnets.put(narrowed, fence=UNFENCED)
    assert [(lease.ip, lease.owner) for lease in stranded] == [("10.0.0.2", ref("a"))]
    # The running pod keeps its address.
    kept = ipam.get(ref("a"))
    assert kept is not None
    assert kept.ip_csv() == "10.0.0.2"

    ipam.release(ref("a"), fence=UNFENCED)
    # Fill the subnet: .2 and .3 never come back.
    results = ipam.allocate([request(f"p{i}") for i in range(20)], fence=UNFENCED)
    handed_out = [r.ip_csv() for r in results if isinstance(r, Attachment)]
    assert all(isinstance(r, (Attachment, SubnetExhausted)) for r in results)
    assert handed_out == [f"10.0.0.{i}" for i in range(4, 15)]
    [fixed] = ipam.allocate([request("fixed", fixed_ips=("10.0.0.2",))], fence=UNFENCED)
    assert isinstance(fixed, ExcludedAddress)


def test_usage_counts_a_kept_lease_inside_a_new_exclusion_as_used(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/28")
    ipam.allocate([request("a"), request("b")], fence=UNFENCED)  # .2 and .3
    subnets.put(
        parse_subnet_spec(
            "net1", provider=PROVIDER, cidr_block="10.0.0.0/28", exclude_ips=["10.0.0.2"]
        ),
        fence=UNFENCED,
    )
    [usage] = ipam.usage(NET1)
    # 16 - network - broadcast - gateway - 1 excluded = 12 usable; .3 takes one of them.
    assert (usage.total, usage.used, usage.available, usage.excluded) == (12, 2, 11, 1)


def test_gateway_change_onto_a_leased_address_keeps_and_reports_it(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a")], fence=UNFENCED)  # 10.0.0.2
    stranded = subnets.put(
        parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.0.0.0/24", gateway="10.0.0.2"),
        fence=UNFENCED,
    )
    assert [lease.ip for lease in stranded] == ["10.0.0.2"]


def test_cidr_change_is_refused_while_leases_exist_and_allowed_after(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a")], fence=UNFENCED)
    renumbered = parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.9.0.0/24")
    before = dump(client, etcd_prefix)
    with pytest.raises(InvalidSubnetSpec, match=r"10\.0\.0\.0/24 cannot change.*10\.0\.0\.2"):
        subnets.put(renumbered, fence=UNFENCED)
    assert dump(client, etcd_prefix) == before

    ipam.release(ref("a"), fence=UNFENCED)
    subnets.put(renumbered, fence=UNFENCED)
    [renumbered_ip] = ips(ipam.allocate([request("b")], fence=UNFENCED))
    assert renumbered_ip.startswith("10.9.0.")


def test_adding_a_family_to_a_subnet_with_leases_is_allowed(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a")], fence=UNFENCED)
    dual = parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.0.0.0/24,fd00::/120")
    assert subnets.put(dual, fence=UNFENCED) == []
    assert ips(Ipam(client, etcd_prefix).allocate([request("b")], fence=UNFENCED)) == [
        "10.0.0.3,fd00::2"
    ]


def test_delete_is_refused_while_leases_exist_and_clears_the_subnet_after(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a")], fence=UNFENCED)
    before = dump(client, etcd_prefix)
    with pytest.raises(SubnetInUse, match="1 leases"):
        subnets.delete(NET1, fence=UNFENCED)
    assert dump(client, etcd_prefix) == before

    ipam.release(ref("a"), fence=UNFENCED)
    subnets.delete(NET1, fence=UNFENCED)
    assert subnets.get(NET1) is None
    assert dump(client, Keys(etcd_prefix).subnet(NET1)) == {}
    subnets.delete(NET1, fence=UNFENCED)  # deleting what is gone is a no-op
    assert subnets.get(NET1) is None


class AllocatingJustBeforeWrites:
    """A client that lets another worker allocate right before a chosen txn commits:
    the first ``times`` such txns (every one when None); ``fired`` counts them."""

    def __init__(
        self,
        client: EtcdClient,
        before: Callable[[], object],
        marker: str,
        *,
        times: int | None = 1,
    ) -> None:
        self._client = client
        self._before = before
        self._marker = marker
        self._times = times
        self.fired = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def txn(self, compares: Any, success: Any, failure: Any = ()) -> Any:
        due = self._times is None or self.fired < self._times
        if due and any(getattr(op, "key", "") == self._marker for op in success):
            self.fired += 1
            self._before()
        return self._client.txn(compares, success, failure)


def test_delete_racing_an_allocation_never_drops_a_live_lease(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    racing = AllocatingJustBeforeWrites(
        client,
        lambda: ipam.allocate([request("late")], fence=UNFENCED),
        Keys(etcd_prefix).subnet(NET1),  # the delete's range op
    )
    with contextlib.suppress(SubnetInUse):  # the right outcome: refused
        Subnets(racing, etcd_prefix).delete(NET1, fence=UNFENCED)  # type: ignore[arg-type]
    assert racing.fired
    late = ipam.get(ref("late"))
    assert late is not None
    assert Subnets(client, etcd_prefix).get(NET1) is not None
    assert lease_addresses(client, etcd_prefix, "net1") == {late.ip_csv()}


def test_cidr_change_racing_an_allocation_is_refused(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    racing = AllocatingJustBeforeWrites(
        client,
        lambda: ipam.allocate([request("late")], fence=UNFENCED),
        Keys(etcd_prefix).spec(NET1),
    )
    renumbered = parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.9.0.0/24")
    with pytest.raises(InvalidSubnetSpec):
        Subnets(racing, etcd_prefix).put(renumbered, fence=UNFENCED)  # type: ignore[arg-type]
    assert racing.fired


def test_an_edit_succeeds_under_a_steady_allocation_burst(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    """Issue 8 item 14: every allocation rewrites a key the edit compared, so an edit
    under load used to retry for 30 s and fail. Here a steady burst is made certain:
    an allocation and a release land right before every write the edit tries."""
    register(client, etcd_prefix, cidr_block="10.0.0.0/16")
    churned = [0]

    def churn() -> None:
        n = churned[0]
        ipam.allocate([request(f"churn{n % 50}", uid=f"u{n}")], fence=UNFENCED)
        ipam.release(ref(f"churn{(n - 10) % 50}"), fence=UNFENCED)
        churned[0] = n + 1

    racing = AllocatingJustBeforeWrites(client, churn, Keys(etcd_prefix).spec(NET1), times=None)
    edited = parse_subnet_spec(
        "net1", provider=PROVIDER, cidr_block="10.0.0.0/16", exclude_ips=["10.0.200.0/24"]
    )
    Subnets(racing, etcd_prefix).put(edited, fence=UNFENCED)  # type: ignore[arg-type]
    assert racing.fired == 1  # its first try won, an allocation just before it
    assert Subnets(client, etcd_prefix).get(NET1) == edited


def test_a_replayed_older_subnet_never_overwrites_a_newer_one(
    client: EtcdClient, etcd_prefix: str, subnets: Subnets
) -> None:
    """Only a newer ``metadata.generation`` of the same object changes the stored spec."""
    v2 = parse_subnet_spec(
        "net1", provider=PROVIDER, cidr_block="10.0.0.0/24", exclude_ips=["10.0.0.9"]
    )
    v1 = parse_subnet_spec("net1", provider=PROVIDER, cidr_block="10.0.0.0/24")
    subnets.put(v2, fence=UNFENCED, origin=SpecOrigin(uid="u1", generation=2))
    with pytest.raises(StaleSpec):
        subnets.put(v1, fence=UNFENCED, origin=SpecOrigin(uid="u1", generation=1))
    assert subnets.get(NET1) == v2

    # The same name recreated (a new UID) starts its generations again at 1.
    subnets.put(v1, fence=UNFENCED, origin=SpecOrigin(uid="u2", generation=1))
    assert subnets.get(NET1) == v1
