"""nicpoolctl on addresses held for an IPAMClaim: leases, lease show, audit, release.

A migration's source and target share the claim's address by design: the
audit must not call that a duplicate, yet must still catch any other
sharing, including a forged one (an attachment naming the owner without
being among its holders). ``leases`` names the claim as the owner and its
holder pods; ``release --force`` frees the claim's addresses for all of them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from store.core.identity import IPAMCLAIM, OwnerRef, PodUID
from store.core.keys import Keys
from store.core.ops import Put
from store.core.records import encode_attachment
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import attachment, ref, register, request
from tests.support.ctl import Ctl

pytestmark = pytest.mark.store

CLAIM = OwnerRef(IPAMCLAIM, "default", "vm1.data")


@pytest.fixture
def migrating(client: EtcdClient, etcd_prefix: str) -> str:
    """The claim's address, held by a source and a target pod at once."""
    register(client, etcd_prefix, cidr_block="10.50.0.0/24")
    ipam = Ipam(client, etcd_prefix)
    for pod in ("virt-launcher-vm1-src", "virt-launcher-vm1-dst"):
        held = ipam.allocate([request(pod, owner=CLAIM, owner_uid="c-uid")], fence=UNFENCED)
        address = attachment(held[0]).ip_csv()
    return address


def test_holders_of_one_claim_are_no_duplicate(ctl: Ctl, migrating: str) -> None:
    report = ctl.json("audit", "--no-kube")
    assert report["ok"] is True, report


def test_a_pod_sharing_the_claims_address_is_a_duplicate(
    ctl: Ctl, etcd_prefix: str, client: EtcdClient, migrating: str
) -> None:
    ipam = Ipam(client, etcd_prefix)
    holder = ipam.get(ref("virt-launcher-vm1-src"))
    assert holder is not None
    # A bug's leftover: a pod-owned attachment with the claim's address.
    intruder = replace(holder, ref=ref("intruder"), uid=PodUID("uid-intruder"), owner=None)
    client.txn([], [Put(Keys(etcd_prefix).attachment(intruder.ref), encode_attachment(intruder))])
    report = ctl.json("audit", "--no-kube", expect=1)
    [duplicate] = [d for d in report["duplicates"] if "ip" in d]
    assert duplicate["ip"] == migrating
    assert "default/intruder@net1.default" in duplicate["holders"]


def test_a_forged_holder_of_the_claim_is_found(
    ctl: Ctl, etcd_prefix: str, client: EtcdClient, migrating: str
) -> None:
    """Naming the owner is not enough: the owner record must list the holder."""
    holder = Ipam(client, etcd_prefix).get(ref("virt-launcher-vm1-src"))
    assert holder is not None
    forged = replace(holder, ref=ref("forged"), uid=PodUID("uid-forged"))
    client.txn([], [Put(Keys(etcd_prefix).attachment(forged.ref), encode_attachment(forged))])
    report = ctl.json("audit", "--no-kube", expect=1)
    assert report["duplicates"] == []
    problems = [f["problem"] for f in report["records_disagree"]]
    assert problems == ["attachment is not among its owner's holders"]


def test_leases_show_the_claim_as_owner_with_its_holders(ctl: Ctl, migrating: str) -> None:
    [lease] = ctl.json("leases")["leases"]
    assert lease["owner"] == {
        "kind": "IPAMClaim",
        "namespace": "default",
        "name": "vm1.data",
        "uid": "c-uid",
    }
    assert lease["holders"] == ["default/virt-launcher-vm1-src", "default/virt-launcher-vm1-dst"]
    held = ctl.json("leases", "--pod", "default/virt-launcher-vm1-dst")["leases"]
    assert [x["ip"] for x in held] == [migrating]
    table = ctl.run("leases").stdout
    assert "OWNER" in table and "ipamclaim default/vm1.data" in table
    shown = ctl.run("lease", "show", migrating).stdout
    assert "ipamclaim default/vm1.data (uid c-uid)" in shown
    assert "default/virt-launcher-vm1-src, default/virt-launcher-vm1-dst" in shown


def test_release_of_a_claims_address_frees_it_for_every_holder(
    ctl: Ctl, etcd_prefix: str, client: EtcdClient, migrating: str
) -> None:
    done = ctl.run("release", migrating, "--force", "--no-kube")
    assert done.returncode == 0, done.stderr
    assert f"released {migrating}" in done.stdout and "ipamclaim default/vm1.data" in done.stdout
    assert ctl.json("leases")["leases"] == []
    assert Ipam(client, etcd_prefix).get(ref("virt-launcher-vm1-dst")) is None
    assert ctl.json("audit", "--no-kube")["ok"] is True
