"""Small helpers the store-tier tests share: requests, subnets, and reading etcd back.

The assertions of this tier are about what etcd ends up holding, so the
helpers read it raw (a full dump of a test's prefix, the bitmap chunks
decoded into addresses) rather than through the code under test.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from store.config import EtcdSettings
from store.core.bitmap import Chunk
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.keys import Keys
from store.core.ops import TxnResult
from store.core.records import Attachment, decode_attachment
from store.core.subnetspec import SubnetSpec, parse_subnet_spec
from store.errors import PermanentError
from store.etcd import EtcdClient
from store.leases import UNFENCED, AllocationRequest, Result
from store.subnets import Subnets

PROVIDER = Provider("net1.default")
NET1 = SubnetName("net1")
"""The subnet :func:`register` and :func:`request` default to."""
NAMESPACE = "default"


def ref(pod: str, provider: str = PROVIDER, namespace: str = NAMESPACE) -> AttachmentRef:
    return AttachmentRef(PodRef(namespace, pod), Provider(provider))


def request(
    pod: str, subnet: str = "net1", *, uid: str | None = None, **fields: Any
) -> AllocationRequest:
    """A request for pod ``pod``'s ``net1`` NIC; the uid defaults to one per pod name."""
    return AllocationRequest(
        ref=ref(pod),
        uid=PodUID(uid or f"uid-{pod}"),
        subnet=SubnetName(subnet),
        interface="net1",
        **fields,
    )


def register(client: EtcdClient, prefix: str, name: str = "net1", **fields: Any) -> SubnetSpec:
    """Parse and store a subnet (unfenced, as an admin tool would)."""
    fields.setdefault("provider", PROVIDER)
    spec = parse_subnet_spec(name, **fields)
    Subnets(client, prefix).put(spec, fence=UNFENCED)
    return spec


def attachment(result: Result) -> Attachment:
    """The attachment of one result; fails the test with the error otherwise."""
    if isinstance(result, PermanentError):
        raise AssertionError(f"expected an attachment, got {type(result).__name__}: {result}")
    return result


def ips(results: Sequence[Result]) -> list[str]:
    """The address(es) of each result, ``v4,v6`` joined as in the pod annotation."""
    return [attachment(r).ip_csv() for r in results]


def dump(client: EtcdClient, prefix: str) -> dict[str, tuple[bytes, int]]:
    """Every key under ``prefix`` with its value and mod_revision."""
    return {kv.key: (kv.value, kv.mod_revision) for kv in client.iter_prefix(prefix)}


def store_revision(client: EtcdClient) -> int:
    """etcd's current revision: it moves on every write, anywhere."""
    _, revision = client.get("/nicpool-test/revision-probe")
    return int(revision)


def bitmap_addresses(client: EtcdClient, prefix: str, spec: SubnetSpec) -> set[str]:
    """The addresses whose bits are set in the chunks stored in etcd."""
    keys = Keys(prefix)
    found: set[str] = set()
    for layout in spec.layouts:
        base = keys.bitmap(spec.name, layout.family)
        for kv in client.iter_prefix(base, page=64):
            chunk = Chunk.decode(int(kv.key[len(base) :], 16), kv.value)
            found.update(layout.address_at(offset) for offset in chunk.offsets())
    return found


def chunk_keys(client: EtcdClient, prefix: str, subnet: str) -> list[str]:
    base = f"{Keys(prefix).subnet(SubnetName(subnet))}bitmap/"
    return [kv.key for kv in client.get_prefix(base, keys_only=True)[0]]


def lease_addresses(client: EtcdClient, prefix: str, subnet: str) -> set[str]:
    base = Keys(prefix).leases(SubnetName(subnet))
    return {kv.key[len(base) :] for kv in client.get_prefix(base, keys_only=True)[0]}


def attachment_addresses(client: EtcdClient, prefix: str) -> list[str]:
    """Every address of every stored attachment (a list: duplicates must show)."""
    found: list[str] = []
    for kv in client.iter_prefix(Keys(prefix).attachments):
        found += [leased.ip for leased in decode_attachment(kv.value).ips]
    return found


class ReadSignalling(EtcdClient):
    """The real client; ``read`` is set once a first read (a transaction) is done, so
    a write the test makes after it can only be seen through a watch."""

    def __init__(self, settings: EtcdSettings) -> None:
        super().__init__(settings)
        self.read = threading.Event()

    def txn(self, compares: Any, success: Any, failure: Any = ()) -> TxnResult:
        try:
            return super().txn(compares, success, failure)
        finally:
            self.read.set()
