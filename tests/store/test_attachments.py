"""What the node agent reads: ``AttachmentReader.get`` and ``.wait``.

``wait`` reads once and then watches the one key, so an attachment written
while the agent waits is returned as soon as it lands, and a pod that never
gets one is answered with None when the timeout passes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from store.attachments import AttachmentReader
from store.config import EtcdSettings
from store.core.identity import AttachmentRef, PodUID, SubnetName
from store.etcd import EtcdClient
from store.leases import UNFENCED, AllocationRequest, Ipam
from tests.store.helpers import ReadSignalling, attachment, ref, register, request

pytestmark = pytest.mark.store


class CountingClient:
    """Passes calls to the real client, counting reads and watches."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client
        self.calls: list[str] = []
        self.watching = threading.Event()

    def txn(self, *args: Any) -> Any:
        self.calls.append("read")
        return self.client.txn(*args)

    def watch_prefix(self, prefix: str, **kwargs: Any) -> Any:
        self.calls.append("watch")
        self.watching.set()
        return self.client.watch_prefix(prefix, **kwargs)


def test_get_returns_the_stored_attachment_or_none(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [stored] = ipam.allocate([request("a")], fence=UNFENCED)
    reader = AttachmentReader(client, etcd_prefix)
    assert reader.get(ref("a")) == stored
    assert reader.get(ref("absent")) is None


def test_wait_returns_at_once_with_one_read_when_present(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [stored] = ipam.allocate([request("a")], fence=UNFENCED)
    counting = CountingClient(client)
    reader = AttachmentReader(counting, etcd_prefix)  # type: ignore[arg-type]
    assert reader.wait(ref("a"), timeout=30) == stored
    assert counting.calls == ["read"]


def test_wait_returns_an_attachment_written_while_it_waits(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    counting = CountingClient(client)
    reader = AttachmentReader(counting, etcd_prefix)  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as pool:
        # A long timeout: if the watch missed the write, this would return None.
        waiting = pool.submit(reader.wait, ref("late"), 120)
        assert counting.watching.wait(30)
        [stored] = ipam.allocate([request("late")], fence=UNFENCED)
        assert waiting.result(timeout=60) == attachment(stored)
    # One read, then the watch: no polling.
    assert counting.calls == ["read", "watch"]


def test_wait_ignores_other_pods_and_returns_none_after_its_timeout(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    reader = AttachmentReader(client, etcd_prefix)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(reader.wait, ref("never"), 1.5)
        ipam.allocate([request("someone-else")], fence=UNFENCED)
        assert waiting.result(timeout=60) is None


def test_wait_returns_the_successor_when_an_attachment_is_replaced(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("db-0", uid="old")], fence=UNFENCED)
    ipam.release(ref("db-0"), fence=UNFENCED)
    reader = AttachmentReader(client, etcd_prefix)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(reader.wait, ref("db-0"), 120)
        [new] = ipam.allocate([request("db-0", uid="new")], fence=UNFENCED)
        found = waiting.result(timeout=60)
    assert found == new
    assert found is not None
    assert found.uid == "new"


def test_a_nic_keyed_by_interface_is_found_among_the_candidates(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    """A pod attaching one NAD twice has each NIC stored by provider and interface."""
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    plain = ref("twice")
    by_interface = AttachmentRef(plain.pod, plain.provider, "net2")
    watching = ReadSignalling(EtcdSettings(endpoints=client.settings.endpoints))
    reader = AttachmentReader(watching, etcd_prefix)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(reader.wait_any, [by_interface, plain], 120)
        assert watching.read.wait(30)  # read done: the write below is seen by the watch
        second = AllocationRequest(
            ref=by_interface,
            uid=PodUID("uid-twice"),
            subnet=SubnetName("net1"),
            interface="net2",
        )
        [stored] = ipam.allocate([second], fence=UNFENCED)
        assert waiting.result(timeout=60) == attachment(stored)
    assert reader.get_any([plain, by_interface]) == attachment(stored)
    assert reader.get_any([plain]) is None
    watching.close()
