"""The leader's attachment index: a reload never loses a write made while it ran."""

from __future__ import annotations

import pytest

from reconciler.index import AttachmentIndex
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.records import Attachment, LeasedIP

pytestmark = pytest.mark.unit


def att(pod: str, uid: str = "u", provider: str = "net.ns") -> Attachment:
    return Attachment(
        ref=AttachmentRef(PodRef("ns", pod), Provider(provider)),
        uid=PodUID(uid),
        subnet=SubnetName("s"),
        interface="net1",
        ips=(LeasedIP(4, "10.0.0.2", "10.0.0.0/24", "10.0.0.1"),),
        mac=Mac("02:00:00:00:00:01"),
    )


def test_writes_during_a_reload_win_over_the_snapshot() -> None:
    index = AttachmentIndex()
    index.begin_load()
    assert not index.loaded
    index.put(att("new"))  # allocated while etcd was being read
    index.drop(att("gone").ref)  # released while etcd was being read
    index.finish_load([att("old"), att("gone")])  # the snapshot predates both writes
    assert index.loaded
    assert sorted(a.ref.pod.name for a in index.all()) == ["new", "old"]


def test_attachments_by_pod() -> None:
    index = AttachmentIndex()
    index.load([att("p", provider="a.ns"), att("p", provider="b.ns"), att("q")])
    assert [a.ref.provider for a in index.of_pod(PodRef("ns", "p"))] == ["a.ns", "b.ns"]
    index.drop(att("p", provider="a.ns").ref)
    index.drop(att("p", provider="b.ns").ref)
    assert index.of_pod(PodRef("ns", "p")) == []
    assert len(index) == 1
