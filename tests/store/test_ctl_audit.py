"""``nicpoolctl audit --no-kube`` on a real etcd: each planted inconsistency is found.

Each test damages a consistent store in exactly one way, the way a bug or
a half-applied manual edit would, and checks that the audit reports that
kind of finding, only that kind, and exits 1. (The apiserver-side kinds,
annotations, orphans and IP objects, are in tests/controller/test_ctl_kube.py.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from store.core.bitmap import Chunk, chunk_index
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.keys import Keys
from store.core.records import Lease, decode_attachment, encode_attachment, encode_lease
from store.core.subnetspec import SubnetSpec
from store.etcd import EtcdClient
from store.subnets import Subnets
from tests.support.ctl import PROVIDER, Ctl, allocate, register

pytestmark = pytest.mark.store

KINDS_OF_DESIGN = (
    "duplicates",
    "leases_without_bits",
    "bits_without_leases",
    "annotations_disagree",
    "orphans",
)
SUBNET = SubnetName("net1")


@pytest.fixture
def store(client: EtcdClient, etcd_prefix: str) -> EtcdClient:
    register(client, etcd_prefix, "net1", "10.30.0.0/24")
    allocate(client, etcd_prefix, "a", "net1", ips=["10.30.0.10"])
    allocate(client, etcd_prefix, "b", "net1", ips=["10.30.0.11"])
    return client


def _spec(client: EtcdClient, prefix: str) -> SubnetSpec:
    spec = Subnets(client, prefix).get(SUBNET)
    assert spec is not None
    return spec


def set_bit(client: EtcdClient, prefix: str, ip: str, *, value: bool) -> None:
    """Flip one address's bitmap bit behind the store's back."""
    layout = _spec(client, prefix).family_of(ip)
    offset = layout.offset_of(ip)
    key = Keys(prefix).chunk(SUBNET, layout.family, chunk_index(offset))
    kv, _ = client.get(key)
    chunk = Chunk.decode(chunk_index(offset), kv.value if kv else None)
    if value:
        chunk.set(offset)
    else:
        chunk.clear(offset)
    client.put(key, chunk.encode())


def only(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The findings of ``kind``, after checking every other kind is empty."""
    others = {k: v for k, v in report.items() if isinstance(v, list) and k != kind and v}
    assert not others, f"unexpected findings besides {kind}: {others}"
    assert report["ok"] is False
    return list(report[kind])


def test_a_consistent_store_passes_with_ok_true_and_exit_0(ctl: Ctl, store: Any) -> None:
    report = ctl.json("audit", "--no-kube")
    assert report["ok"] is True and report["kube"] is False
    for kind in KINDS_OF_DESIGN:
        assert report[kind] == []
    text = ctl.run("audit", "--no-kube")
    assert text.returncode == 0
    assert "audit: OK" in text.stdout and "--no-kube" in text.stdout


def test_an_address_held_by_two_attachments_is_a_duplicate(
    ctl: Ctl, store: EtcdClient, etcd_prefix: str
) -> None:
    keys = Keys(etcd_prefix)
    kv, _ = store.get(keys.attachment(AttachmentRef(PodRef("default", "a"), Provider(PROVIDER))))
    assert kv is not None
    original = decode_attachment(kv.value)
    twin = replace(
        original,
        ref=AttachmentRef(PodRef("default", "twin"), Provider(PROVIDER)),
        uid=PodUID("uid-twin"),
        mac=Mac("02:00:00:00:00:99"),
    )
    store.put(keys.attachment(twin.ref), encode_attachment(twin))
    store.put(keys.mac(SUBNET, twin.mac), keys.attachment(twin.ref).encode())

    report = ctl.json("audit", "--no-kube", expect=1)
    assert only(report, "duplicates") == [
        {
            "subnet": "net1",
            "ip": "10.30.0.10",
            "holders": ["default/a@net1.default", "default/twin@net1.default"],
        }
    ]
    text = ctl.run("audit", "--no-kube")
    assert text.returncode == 1
    assert "duplicates: 1" in text.stdout and "10.30.0.10" in text.stdout


def test_a_lease_whose_bit_is_clear_is_found(ctl: Ctl, store: EtcdClient, etcd_prefix: str) -> None:
    set_bit(store, etcd_prefix, "10.30.0.11", value=False)
    report = ctl.json("audit", "--no-kube", expect=1)
    [finding] = only(report, "leases_without_bits")
    assert (finding["ip"], finding["owner"]) == ("10.30.0.11", "default/b@net1.default")


def test_a_set_bit_without_a_lease_is_found(ctl: Ctl, store: EtcdClient, etcd_prefix: str) -> None:
    set_bit(store, etcd_prefix, "10.30.0.99", value=True)
    report = ctl.json("audit", "--no-kube", expect=1)
    assert only(report, "bits_without_leases") == [{"subnet": "net1", "ip": "10.30.0.99"}]


def test_a_lease_without_its_attachment_is_a_record_disagreement(
    ctl: Ctl, store: EtcdClient, etcd_prefix: str
) -> None:
    ghost = AttachmentRef(PodRef("default", "ghost"), Provider(PROVIDER))
    mac = Mac("02:00:00:00:00:50")
    lease = Lease(SUBNET, "10.30.0.50", ghost, PodUID("uid-ghost"), mac, "net1")
    store.put(Keys(etcd_prefix).lease(SUBNET, "10.30.0.50"), encode_lease(lease))
    set_bit(store, etcd_prefix, "10.30.0.50", value=True)
    report = ctl.json("audit", "--no-kube", expect=1)
    [finding] = only(report, "records_disagree")
    assert finding["ip"] == "10.30.0.50" and "without an attachment" in finding["problem"]


def test_an_unreadable_record_is_reported_not_fatal(
    ctl: Ctl, store: EtcdClient, etcd_prefix: str
) -> None:
    store.put(f"{etcd_prefix}attachments/default/broken/{PROVIDER}", b"{not json")
    report = ctl.json("audit", "--no-kube", expect=1)
    [finding] = only(report, "unreadable")
    assert finding["key"] == f"attachments/default/broken/{PROVIDER}"


def test_restore_reproduces_the_findings_of_a_damaged_store(
    ctl: Ctl, store: EtcdClient, etcd_prefix: str
) -> None:
    set_bit(store, etcd_prefix, "10.30.0.99", value=True)
    set_bit(store, etcd_prefix, "10.30.0.11", value=False)
    backup = ctl.run("backup")
    assert backup.returncode == 0
    copy = ctl.with_prefix(etcd_prefix.replace("/v1/", "/copy/v1/"))
    assert copy.run("restore", "-", stdin=backup.stdout).returncode == 0
    original = ctl.json("audit", "--no-kube", expect=1)
    assert original["bits_without_leases"] and original["leases_without_bits"]
    assert copy.json("audit", "--no-kube", expect=1) == original
    assert copy.json("usage") == ctl.json("usage")
