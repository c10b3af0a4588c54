"""The cool-down on a real etcd: a freed address waits, across writers and leaders (issue 11).

Time is the Ipam's clock, set by the test (wall-clock seconds as etcd stores
them), so "five seconds later" needs no sleep. Each case reads etcd back or
uses a fresh ``Ipam`` (a new leader: nothing cached) to show the time of
release lives in etcd, not in a process.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from store.config import EtcdSettings
from store.core.identity import Revision
from store.core.keys import Keys
from store.core.ops import Compare, Op, TxnResult
from store.errors import SubnetCoolingDown, SubnetExhausted
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from store.subnets import Subnets
from tests.store.helpers import NET1, attachment, ips, ref, register, request

pytestmark = pytest.mark.store


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def leader(client: EtcdClient, prefix: str, clock: Clock, cooldown: float = 5.0) -> Ipam:
    """A controller's Ipam, as a new leader has it: nothing cached."""
    return Ipam(client, prefix, clock=clock, cooldown=cooldown)


def full_29(client: EtcdClient, prefix: str, clock: Clock) -> Ipam:
    """A /29 (.2 .. .6 usable) with every address leased to pods p2 .. p6."""
    register(client, prefix, cidr_block="10.0.0.0/29")
    ipam = leader(client, prefix, clock)
    assert ips(ipam.allocate([request(f"p{n}") for n in range(2, 7)], fence=UNFENCED)) == [
        f"10.0.0.{n}" for n in range(2, 7)
    ]
    return ipam


def test_a_freed_address_waits_out_the_cool_down_even_after_a_leader_change(
    client: EtcdClient, etcd_prefix: str
) -> None:
    clock = Clock(1_000_000.0)
    old = full_29(client, etcd_prefix, clock)
    old.release(ref("p4"), fence=UNFENCED)

    clock.now += 3.0
    new = leader(client, etcd_prefix, clock)  # cold: it can only know from etcd
    [waiting] = new.allocate([request("q")], fence=UNFENCED)
    assert isinstance(waiting, SubnetCoolingDown)
    assert waiting.retry_after == pytest.approx(2.0)
    assert new.get(ref("q")) is None  # nothing allocated

    clock.now += 2.0
    assert ips(new.allocate([request("q")], fence=UNFENCED)) == ["10.0.0.4"]


def test_the_time_of_release_is_stored_beside_its_chunk(
    client: EtcdClient, etcd_prefix: str
) -> None:
    clock = Clock(1_000_000.0)
    ipam = full_29(client, etcd_prefix, clock)
    ipam.release(ref("p3"), fence=UNFENCED)
    kv, _ = client.get(Keys(etcd_prefix).cooling(NET1, 4, 0))
    assert kv is not None
    assert json.loads(kv.value) == {"keep": 5.0, "freed": [[3, 1_000_000.0]]}


def test_a_release_by_another_writer_is_honoured_by_a_warm_cache(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """nicpoolctl release (no cool-down of its own) frees p5 behind the leader's back."""
    clock = Clock(1_000_000.0)
    controller = full_29(client, etcd_prefix, clock)
    [full] = controller.allocate([request("q")], fence=UNFENCED)
    assert type(full) is SubnetExhausted
    Ipam(client, etcd_prefix, clock=clock).release(ref("p5"), fence=UNFENCED)

    clock.now += 1.0
    [waiting] = controller.allocate([request("q")], fence=UNFENCED)
    assert isinstance(waiting, SubnetCoolingDown)
    clock.now += 4.0
    assert ips(controller.allocate([request("q")], fence=UNFENCED)) == ["10.0.0.5"]


def test_a_fixed_address_is_handed_out_while_it_cools(client: EtcdClient, etcd_prefix: str) -> None:
    """The same static IP for a recreated pod, at once, as Kube-OVN does."""
    clock = Clock(1_000_000.0)
    ipam = full_29(client, etcd_prefix, clock)
    ipam.release(ref("p2"), fence=UNFENCED)
    clock.now += 0.5
    [again] = ipam.allocate([request("static", fixed_ips=("10.0.0.2",))], fence=UNFENCED)
    assert attachment(again).ip_csv() == "10.0.0.2"


def test_a_subnet_renumbered_forgets_its_release_times(
    client: EtcdClient, etcd_prefix: str
) -> None:
    clock = Clock(1_000_000.0)
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    ipam = leader(client, etcd_prefix, clock)
    ipam.allocate([request("a")], fence=UNFENCED)
    ipam.release(ref("a"), fence=UNFENCED)
    keys = Keys(etcd_prefix)
    assert client.get(keys.cooling(NET1, 4, 0))[0] is not None
    register(client, etcd_prefix, cidr_block="10.9.0.0/29")
    assert client.get(keys.cooling(NET1, 4, 0))[0] is None
    assert ips(leader(client, etcd_prefix, clock).allocate([request("b")], fence=UNFENCED)) == [
        "10.9.0.2"
    ]


class CountingClient(EtcdClient):
    """The real client, counting round trips."""

    reads = 0
    txns = 0

    def get(self, key: str) -> tuple[object, Revision]:  # type: ignore[override]
        self.reads += 1
        return super().get(key)

    def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        self.txns += 1
        return super().txn(compares, success, failure)


def test_allocating_with_a_cool_down_costs_one_transaction_and_no_read_per_pod(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """The hot path: the leader's cache holds chunks and their release times together."""
    clock = Clock(1_000_000.0)
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    counting = CountingClient(EtcdSettings(endpoints=client.settings.endpoints))
    try:
        ipam = leader(counting, etcd_prefix, clock)
        ipam.allocate([request("warm")], fence=UNFENCED)
        ipam.release(ref("warm"), fence=UNFENCED)  # one release time on record
        ipam.allocate([request("warm-again")], fence=UNFENCED)
        counting.reads = counting.txns = 0
        for n in range(20):
            ipam.allocate([request(f"p{n}")], fence=UNFENCED)
        assert (counting.reads, counting.txns) == (0, 20)
    finally:
        counting.close()


def test_releases_and_a_cool_down_leave_the_store_consistent(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """Churn through a small subnet: no address back within 5 s, none held twice."""
    clock = Clock(1_000_000.0)
    register(client, etcd_prefix, cidr_block="10.0.0.0/28")  # .2 .. .14
    ipam = leader(client, etcd_prefix, clock)
    live: dict[str, str] = {}
    freed_at: dict[str, float] = {}
    waited = 0
    for n in range(80):
        clock.now += 0.5
        [result] = ipam.allocate([request(f"c{n}")], fence=UNFENCED)
        waited += isinstance(result, SubnetCoolingDown)
        if not isinstance(result, SubnetExhausted):
            ip = attachment(result).ip_csv()
            assert clock.now - freed_at.get(ip, 0.0) >= 5.0, ip
            live[f"c{n}"] = ip
        if len(live) > 6:
            victim = min(live, key=lambda pod: int(pod[1:]))
            ipam.release(ref(victim), fence=UNFENCED)
            freed_at[live.pop(victim)] = clock.now
    leases = {lease.ip: lease.owner.pod.name for lease in Subnets(client, etcd_prefix).leases(NET1)}
    assert leases == {ip: pod for pod, ip in live.items()}
    assert waited > 0  # the churn did run into the cool-down
