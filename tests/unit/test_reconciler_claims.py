"""IPAMClaims and KubeVirt VMs in planning: which owner a NIC's addresses get, or why not.

Table-driven over the pure core: the claim named by ``ipam-claim-reference``
(found in the pod's namespace, for this NIC's network), keep-vm-ip for a
virt-launcher pod, the claim's status, and when an owner has ended.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from reconciler.core.claims import (
    CONDITION,
    ClaimView,
    VmRef,
    claim_from_object,
    claim_status,
    virt_launcher_vm,
)
from reconciler.core.errors import ClaimRefusal, InvalidNetworksAnnotation
from reconciler.core.networks import parse_pod_networks
from reconciler.core.owners import ObjectState, owner_alive, releasable
from reconciler.core.planning import PodView, World, plan_pod
from reconciler.core.subnets import subnet_from_object
from store.core.identity import IPAMCLAIM, VIRTUAL_MACHINE, OwnerRef, PodUID, SubnetName
from store.errors import OwnerAddressMismatch

pytestmark = pytest.mark.unit

NETWORKS = "k8s.v1.cni.cncf.io/networks"
MACVLAN = json.dumps(
    {"name": "tenant-net", "type": "macvlan", "ipam": {"type": "kube-ovn", "provider": "net.vms"}}
)
FOREIGN = json.dumps({"name": "ovnk-net", "type": "ovn-k8s-cni-overlay"})
WORLD = World(
    nads={"vms/net": MACVLAN, "vms/ovnk": FOREIGN},
    subnets={SubnetName("net"): subnet_from_object("net", {"provider": "net.vms",
                                                           "cidrBlock": "10.9.0.0/24"})},
)  # fmt: skip


def claim(name: str = "vm1.data", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "vms", "name": name, "uid": f"uid-{name}", "generation": 2},
        "spec": {"network": "tenant-net", "interface": "", **spec},
    }


def world(*claims: dict[str, Any], **changes: Any) -> World:
    views: dict[str, Any] = {}
    for obj in claims:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        try:
            views[key] = claim_from_object(obj)
        except ClaimRefusal as exc:
            views[key] = exc
    return replace(WORLD, claims=views, **changes)


VM1 = VmRef("vm1", "vmi-uid")


def launcher(element: dict[str, Any], *, vm: VmRef | None = VM1) -> PodView:
    return PodView("vms", "virt-launcher-vm1-abcde", PodUID("pod-uid"),
                   {NETWORKS: json.dumps([element])}, vm=vm)  # fmt: skip


ELEMENT = {
    "name": "net",
    "namespace": "vms",
    "interface": "pod1a2b",
    "ipam-claim-reference": "vm1.data",
}


def test_the_networks_element_names_its_claim() -> None:
    [sel] = parse_pod_networks({NETWORKS: json.dumps([ELEMENT])}, "vms")
    assert sel.claim == "vm1.data" and sel.interface == "pod1a2b"
    with pytest.raises(InvalidNetworksAnnotation, match="not a valid IPAMClaim name"):
        parse_pod_networks(
            {NETWORKS: json.dumps([{**ELEMENT, "ipam-claim-reference": "A/B"}])}, "vms"
        )


@pytest.mark.parametrize(
    "network", ["tenant-net", "vms/net", "net"], ids=["cni-name", "ns/nad", "nad"]
)
def test_a_claim_for_the_nics_network_owns_it(network: str) -> None:
    [nic] = plan_pod(launcher(ELEMENT), world(claim(network=network))).nics
    assert nic.owner == OwnerRef(IPAMCLAIM, "vms", "vm1.data")
    assert (nic.request.owner_uid, nic.claim, nic.adopt) == ("uid-vm1.data", "vms/vm1.data", False)
    assert nic.request.owner == nic.owner


def test_ip_requests_are_the_nics_fixed_addresses() -> None:
    [nic] = plan_pod(launcher(ELEMENT), world(claim(ipRequests=["10.9.0.40/24"]))).nics
    assert nic.fixed_ips == ("10.9.0.40",)
    annotated = {**ELEMENT, "ips": ["10.9.0.41"]}
    plan = plan_pod(launcher(annotated), world(claim(ipRequests=["10.9.0.40"])))
    assert [type(e) for e in plan.errors] == [OwnerAddressMismatch]


@pytest.mark.parametrize(
    ("objects", "element", "reason"),
    [
        ((), ELEMENT, "IPAMClaimNotFound"),
        ((claim(network="elsewhere"),), ELEMENT, "IPAMClaimUnknownNetwork"),
        ((claim(network="ovnk-net"),), ELEMENT, "IPAMClaimForeignNetwork"),
        ((claim(interface="eth9"),), ELEMENT, "IPAMClaimInterfaceMismatch"),
        ((claim(ipRequests=["nonsense"]),), ELEMENT, "InvalidIPAMClaim"),
        ((claim(ipRequests=["10.9.0.1", "10.9.0.2"]),), ELEMENT, "InvalidIPAMClaim"),
        ((claim(ipRequests=["10.8.0.1"]),), ELEMENT, "AddressOutsideSubnet"),
        ((claim(network=""),), ELEMENT, "InvalidIPAMClaim"),
    ],
    ids=["missing", "unknown-network", "foreign-nad", "interface", "bad-ip", "two-v4",
         "outside", "no-network"],
)  # fmt: skip
def test_a_claim_that_cannot_be_used_is_refused_and_allocates_nothing(
    objects: tuple[dict[str, Any], ...], element: dict[str, Any], reason: str
) -> None:
    plan = plan_pod(launcher(element), world(*objects))
    assert plan.nics == () and [e.reason for e in plan.errors] == [reason]
    assert [(k, e.reason) for k, e in plan.claim_errors] == [("vms/vm1.data", reason)]


def test_a_claim_of_another_namespace_is_never_used() -> None:
    other = claim()
    other["metadata"]["namespace"] = "elsewhere"
    plan = plan_pod(launcher(ELEMENT), world(other))
    assert [e.reason for e in plan.errors] == ["IPAMClaimNotFound"]


def test_a_claim_being_deleted_takes_no_new_pod() -> None:
    deleting = claim()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert [e.reason for e in plan_pod(launcher(ELEMENT), world(deleting)).errors] == [
        "IPAMClaimDeleting"
    ]


def test_keep_vm_ip_gives_a_virt_launcher_nic_to_its_vm() -> None:
    element = {"name": "net", "namespace": "vms", "interface": "pod1a2b"}
    known = world(vm_uids={"vms/vm1": "vm-uid"})
    [nic] = plan_pod(launcher(element), known).nics
    assert nic.owner == OwnerRef(VIRTUAL_MACHINE, "vms", "vm1", "net.vms")
    assert (nic.request.owner_uid, nic.claim) == ("vm-uid", None)
    [plain] = plan_pod(launcher(element, vm=None), known).nics
    assert plain.owner is None
    [off] = plan_pod(launcher(element), replace(known, keep_vm_ip=False)).nics
    assert off.owner is None


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": "vm1",
           "uid": "u", "controller": True}], VmRef("vm1", "u")),
        ([{"apiVersion": "example.com/v1", "kind": "VirtualMachineInstance", "name": "vm1"}], None),
        ([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}], None),
        (None, None),
    ],
    ids=["virt-launcher", "other-group", "replicaset", "none"],
)  # fmt: skip
def test_a_virt_launcher_is_known_by_its_vmi_owner_reference(
    refs: object, expected: VmRef | None
) -> None:
    assert virt_launcher_vm(refs) == expected


def test_claim_status_reports_addresses_holder_and_condition() -> None:
    done = claim_status(ips=("10.9.0.5/24",), owner_pod="virt-launcher-a", refusal=None,
                        generation=2, current={}, now="T1")  # fmt: skip
    assert done["ips"] == ["10.9.0.5/24"] and done["ownerPod"] == {"name": "virt-launcher-a"}
    [condition] = done["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        CONDITION, "True", "SuccessfulAllocation")  # fmt: skip
    again = claim_status(ips=("10.9.0.5/24",), owner_pod="virt-launcher-b", refusal=None,
                         generation=2, current=done, now="T2")  # fmt: skip
    assert again["conditions"][0]["lastTransitionTime"] == "T1"  # no transition
    refused = claim_status(ips=(), owner_pod=None, refusal=("AddressInUse", "held"),
                           generation=2, current=done, now="T3")  # fmt: skip
    assert refused["conditions"][0]["status"] == "False"
    assert (refused["conditions"][0]["reason"], refused["conditions"][0]["lastTransitionTime"]) == (
        "AddressInUse", "T3")  # fmt: skip
    assert refused["ownerPod"] is None


CLAIM_OWNER = OwnerRef(IPAMCLAIM, "vms", "vm1.data")
VM_OWNER = OwnerRef(VIRTUAL_MACHINE, "vms", "vm1", "net.vms")
LIVE, GOING = ObjectState("u1"), ObjectState("u1", deleting=True)


@pytest.mark.parametrize(
    ("owner", "recorded", "objects", "alive"),
    [
        (CLAIM_OWNER, "u1", {"claim": LIVE}, True),
        (CLAIM_OWNER, "u1", {"claim": GOING}, True),  # finalizer pending: still the claim's
        (CLAIM_OWNER, "u1", {"claim": ObjectState("u2")}, False),  # re-created: the old ended
        (CLAIM_OWNER, "u1", {}, False),
        (VM_OWNER, "u1", {"vm": LIVE}, True),  # stopped VM: no VMI, keeps its addresses
        (VM_OWNER, "u1", {"vm": GOING}, False),
        (VM_OWNER, "u1", {"vm": GOING, "vmi": ObjectState("i")}, True),  # VMI still runs
        (VM_OWNER, "", {"vmi": ObjectState("i")}, True),  # just a VMI, alive
        (VM_OWNER, "", {"vmi": ObjectState("i", deleting=True)}, False),  # just a VMI, going
        (VM_OWNER, "u1", {"vm": ObjectState("u2")}, False),  # another VM of that name
        (VM_OWNER, "u1", {"vm": ObjectState("u2"), "vmi": ObjectState("i", owner_uid="u2")}, False),
        (VM_OWNER, "u1", {"vmi": ObjectState("i", owner_uid="u1")}, True),  # VM deleting, VMI runs
        (VM_OWNER, "", {}, False),
    ],
)
def test_when_an_owner_has_ended(
    owner: OwnerRef, recorded: str, objects: dict[str, ObjectState], alive: bool
) -> None:
    assert owner_alive(owner, recorded, **objects) is alive


def test_an_ended_owners_addresses_wait_for_its_last_running_pod() -> None:
    assert releasable(False, 0) and not releasable(False, 1) and not releasable(True, 0)


def test_a_claim_view_reads_only_typed_values() -> None:
    view = claim_from_object(claim(ipRequests=["fd00::5/64", "10.9.0.5"]))
    assert view == ClaimView("vms", "vm1.data", "uid-vm1.data", "tenant-net", "",
                             ("10.9.0.5", "fd00::5"), False, 2)  # fmt: skip
