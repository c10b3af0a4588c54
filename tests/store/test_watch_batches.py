"""The agent's wait sees every event of a watch response (issue 8, item 15).

One transaction may write several attachments of one pod (its NICs are
allocated together), and etcd delivers them in one watch response. A wait
that looked only at the first event of each response missed its NIC when
another one came first, and the CNI ADD timed out after 20 s.
"""

from __future__ import annotations

import threading

import pytest

from store.attachments import AttachmentReader
from store.config import EtcdSettings
from store.core.identity import PodUID, SubnetName
from store.core.keys import Keys
from store.core.ops import Put
from store.core.records import Attachment, LeasedIP, encode_attachment
from store.etcd import EtcdClient
from tests.store.helpers import ReadSignalling, ref

pytestmark = pytest.mark.store


def _attachment(provider: str, ip: str) -> Attachment:
    return Attachment(
        ref=ref("pod", provider=provider),
        uid=PodUID("uid-pod"),
        subnet=SubnetName("net1"),
        interface="net1",
        ips=(LeasedIP(4, ip, "10.0.0.0/24", "10.0.0.1"),),
        mac="02:00:00:00:00:01",  # type: ignore[arg-type]
    )


def test_a_wait_finds_its_nic_written_second_in_one_transaction(
    client: EtcdClient, etcd_prefix: str
) -> None:
    watching = ReadSignalling(EtcdSettings(endpoints=client.settings.endpoints))
    reader = AttachmentReader(watching, etcd_prefix)
    first, wanted = _attachment("a.default", "10.0.0.2"), _attachment("b.default", "10.0.0.3")
    found: list[Attachment | None] = []

    waiter = threading.Thread(
        target=lambda: found.append(reader.wait_any([wanted.ref], timeout=15))
    )
    waiter.start()
    assert watching.read.wait(10)
    keys = Keys(etcd_prefix)
    # Key order puts "a.default" first in the transaction and in the watch response.
    client.txn(
        [],
        [
            Put(keys.attachment(first.ref), encode_attachment(first)),
            Put(keys.attachment(wanted.ref), encode_attachment(wanted)),
        ],
    )
    waiter.join(30)
    watching.close()
    assert found == [wanted]
