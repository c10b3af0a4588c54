"""An Ipam keeps working across an etcd restart: unavailability is temporary.

This module stops and starts the session's etcd; it always leaves it
running and healthy for the tests that follow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ops.lab.controllers import wait_for
from ops.lab.etcd import EtcdServer
from store.attachments import AttachmentReader
from store.core.keys import Keys
from store.core.ops import KeyValue
from store.election import Election
from store.errors import Unavailable
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from store.retry import RETRIES
from tests.store.helpers import (
    attachment,
    attachment_addresses,
    bitmap_addresses,
    ips,
    lease_addresses,
    ref,
    register,
    request,
)

pytestmark = pytest.mark.store


@pytest.fixture
def restartable(etcd_server: EtcdServer) -> Iterator[EtcdServer]:
    yield etcd_server
    if etcd_server.process is None or etcd_server.process.poll() is not None:
        etcd_server.start()
    etcd_server.wait_healthy(30)


def test_ipam_survives_an_etcd_restart(
    restartable: EtcdServer, client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    assert ips(ipam.allocate([request("before")], fence=UNFENCED)) == ["10.0.0.2"]

    restartable.restart()
    # The same client and Ipam, no reconnect by the caller.
    assert ips(ipam.allocate([request("after")], fence=UNFENCED)) == ["10.0.0.3"]
    assert AttachmentReader(client, etcd_prefix).get(ref("before")) is not None
    assert bitmap_addresses(client, etcd_prefix, spec) == {"10.0.0.2", "10.0.0.3"}


def test_allocation_issued_while_etcd_is_down_completes_when_it_returns(
    restartable: EtcdServer, client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("before")], fence=UNFENCED)

    restartable.stop()
    started = threading.Event()

    def allocate_during_outage() -> list[str]:
        started.set()
        return ips(ipam.allocate([request(f"during-{i}") for i in range(3)], fence=UNFENCED))

    retries = RETRIES.labels("allocate")
    failed_before = retries._value.get()
    with ThreadPoolExecutor(1) as pool:
        during = pool.submit(allocate_during_outage)
        assert started.wait(10)
        wait_for(
            "the allocation to fail and retry against the stopped etcd",
            lambda: retries._value.get() >= failed_before + 2,
            timeout=30,
        )
        assert not during.done()
        restartable.start()
        assert during.result(timeout=60) == ["10.0.0.3", "10.0.0.4", "10.0.0.5"]

    [after] = ipam.allocate([request("after")], fence=UNFENCED)
    assert attachment(after).ip_csv() == "10.0.0.6"
    stored = attachment_addresses(client, etcd_prefix)
    assert len(stored) == len(set(stored)) == 5
    assert lease_addresses(client, etcd_prefix, "net1") == set(stored)
    assert bitmap_addresses(client, etcd_prefix, spec) == set(stored)


def test_reader_waits_through_an_etcd_restart(
    restartable: EtcdServer, client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [stored] = ipam.allocate([request("a")], fence=UNFENCED)
    restartable.restart()
    assert AttachmentReader(client, etcd_prefix).wait(ref("a"), timeout=30) == stored


def test_reader_waiting_while_etcd_restarts_still_gets_the_attachment(
    restartable: EtcdServer, client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    reader = AttachmentReader(client, etcd_prefix)
    watching = threading.Event()
    original = client.watch_prefix

    def watch_prefix(prefix: str, *, start_revision: int, timeout: float) -> KeyValue | None:
        watching.set()
        return original(prefix, start_revision=start_revision, timeout=timeout)

    client.watch_prefix = watch_prefix  # type: ignore[method-assign]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(reader.wait, ref("late"), 60)
        assert watching.wait(30)
        restartable.restart()  # the agent is waiting for this pod's lease right now
        [stored] = ipam.allocate([request("late")], fence=UNFENCED)
        assert waiting.result(timeout=90) == stored


def test_candidate_waiting_while_etcd_restarts_takes_over_when_the_leader_resigns(
    restartable: EtcdServer, client: EtcdClient, etcd_prefix: str
) -> None:
    leader = Election(client, etcd_prefix, identity="leader", ttl=10)
    follower = Election(client, etcd_prefix, identity="follower", ttl=10)
    leader.campaign(timeout=10)
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(follower.campaign, timeout=60)
            wait_for(  # the follower has joined the line (and watches the leader's key)
                "the follower's election key",
                lambda: len(client.get_prefix(Keys(etcd_prefix).election)[0]) == 2,
                timeout=30,
            )
            restartable.restart()
            leader.resign()
            waiting.result(timeout=90)
        assert follower.is_leader()
        assert follower.leader() == "follower"
    finally:
        leader.resign()
        follower.resign()


class CandidatesUnreadable:
    """A client whose election reads fail (etcd restarting) for the calls in ``failing``."""

    def __init__(self, client: EtcdClient, failing: set[int]) -> None:
        self._client = client
        self._failing = failing
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_prefix(self, prefix: str) -> Any:
        self.reads += 1
        if self.reads in self._failing:
            raise Unavailable(f"{prefix}: etcd error StatusCode.UNAVAILABLE (injected)")
        return self._client.get_prefix(prefix)


def test_a_candidate_whose_next_read_meets_a_restarting_etcd_waits_and_leads(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """The watch on the leader ended (its key gone) just as etcd went down: the read
    of the line that follows failed, and the campaign ended in Unavailable."""
    leader = Election(client, etcd_prefix, identity="leader", ttl=10)
    flaky = CandidatesUnreadable(client, failing={2, 3})  # the reads after the watch
    follower = Election(flaky, etcd_prefix, identity="follower", ttl=10)  # type: ignore[arg-type]
    leader.campaign(timeout=10)
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(follower.campaign, timeout=60)
            wait_for("the follower reads the line once", lambda: flaky.reads >= 1, timeout=30)
            wait_for(
                "the follower's election key",
                lambda: len(client.get_prefix(Keys(etcd_prefix).election)[0]) == 2,
                timeout=30,
            )
            leader.resign()
            waiting.result(timeout=60)
        assert follower.is_leader()
        assert flaky.reads >= 4  # both failed reads were met, and outlasted
    finally:
        leader.resign()
        follower.resign()
