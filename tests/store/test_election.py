"""Leader election: one leader at a time, prompt hand-over, and recovery from a dead leader."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops.lab.etcd import EtcdServer
from store.core.keys import Keys
from store.election import Election
from store.etcd import EtcdClient
from store.leases import Fence
from tests.store.leader_process import LeaderProcess

pytestmark = pytest.mark.store


@pytest.fixture
def elections() -> Iterator[list[Election]]:
    made: list[Election] = []
    yield made
    for election in made:
        election.resign()


@pytest.fixture
def processes() -> Iterator[list[LeaderProcess]]:
    started: list[LeaderProcess] = []
    yield started
    for process in started:
        process.stop()


def candidate(
    elections: list[Election], client: EtcdClient, prefix: str, name: str, ttl: int
) -> Election:
    election = Election(client, prefix, identity=name, ttl=ttl)
    elections.append(election)
    return election


def wait_for_candidates(client: EtcdClient, prefix: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(client.get_prefix(Keys(prefix).election)[0]) < count:
        assert time.monotonic() < deadline, f"fewer than {count} candidates joined"
        time.sleep(0.02)


def test_nobody_leads_an_empty_election(client: EtcdClient, etcd_prefix: str) -> None:
    assert Election(client, etcd_prefix, identity="observer").leader() is None


def test_second_candidate_waits_while_the_first_leads(
    client: EtcdClient, etcd_prefix: str, elections: list[Election]
) -> None:
    first = candidate(elections, client, etcd_prefix, "host-a/1", ttl=5)
    second = candidate(elections, client, etcd_prefix, "host-b/2", ttl=5)
    fence = first.campaign(timeout=10)
    # Longer than the TTL: the first keeps its lease alive, so the second never leads.
    with pytest.raises(TimeoutError):
        second.campaign(timeout=7)
    assert first.is_leader()
    assert first.fence == fence
    assert not second.is_leader()
    assert second.fence is None
    assert second.leader() == first.leader() == "host-a/1"


def test_resign_hands_over_at_once_in_campaign_order(
    client: EtcdClient, etcd_prefix: str, elections: list[Election]
) -> None:
    # A TTL far longer than the waits below: hand-over cannot be lease expiry.
    names = ["a", "b", "c"]
    candidates = [candidate(elections, client, etcd_prefix, n, ttl=60) for n in names]
    fences: list[Fence] = [candidates[0].campaign(timeout=10)]
    with ThreadPoolExecutor(2) as pool:
        waiting = []
        for joined, later in enumerate(candidates[1:], start=2):
            waiting.append(pool.submit(later.campaign, timeout=50))
            # Queue order is join order: let b join before c does.
            wait_for_candidates(client, etcd_prefix, joined)
        for index, future in enumerate(waiting):
            leaders = [c.identity for c in candidates if c.is_leader()]
            assert leaders == [names[index]]
            assert candidates[index].leader() == names[index]
            candidates[index].resign()
            fences.append(future.result(timeout=20))
    assert [c.is_leader() for c in candidates] == [False, False, True]
    assert candidates[0].leader() == "c"
    # Every term has its own fencing token, later terms larger.
    assert [f.revision for f in fences] == sorted({f.revision for f in fences})


def test_a_killed_leader_is_replaced_after_its_ttl(
    etcd_server: EtcdServer,
    client: EtcdClient,
    etcd_prefix: str,
    elections: list[Election],
    processes: list[LeaderProcess],
) -> None:
    leader = LeaderProcess(etcd_server.endpoint, etcd_prefix, "doomed/1", ttl=2)
    processes.append(leader)
    old_key = leader.expect("LEADER").split()[1]
    successor = candidate(elections, client, etcd_prefix, "successor/2", ttl=2)
    assert successor.leader() == "doomed/1"

    leader.signal(signal.SIGKILL)  # no resign: only the TTL frees the leadership
    fence = successor.campaign(timeout=60)
    assert successor.is_leader()
    assert successor.leader() == "successor/2"
    assert fence.key != old_key
    assert client.get(old_key)[0] is None


def test_a_leader_can_campaign_again_after_resigning(
    client: EtcdClient, etcd_prefix: str, elections: list[Election]
) -> None:
    election = candidate(elections, client, etcd_prefix, "again", ttl=10)
    first = election.campaign(timeout=10)
    election.resign()
    assert election.leader() is None
    second = election.campaign(timeout=10)
    assert election.is_leader()
    assert second.revision > first.revision
