"""Persistent addresses for virtual machines, on a real apiserver and etcd (issue 12).

KubeVirt's part is played by the test with KubeVirt-shaped objects
(:mod:`tests.controller.kubevirt`: VirtualMachine, VMI, IPAMClaim with its
finalizer, virt-launcher pods with their owner references, labels and
networks annotation); nothing here is KubeVirt. The controller is the
production one, in this process so a test can run one claim's sync at a
known moment; it, the store, the apiserver and etcd are real.

What a VM user notices: a restarted VM's new pod gets its addresses and MAC
back, a migration target shares them with the source and keeps them when
the source goes, the claim's status tells addresses and pod, and the
addresses come free when the claim (or, without a claim, the VM) is deleted,
not before its last pod is gone. A claim that cannot be used allocates
nothing and says why, on the pod and on the claim.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler.claimsync import sync_claim
from reconciler.kube.resources import IPAMCLAIMS
from store.core.identity import IPAMCLAIM, VIRTUAL_MACHINE, OwnerRef, SubnetName
from tests.controller.inprocess import InProcessController, start_controller
from tests.controller.kubevirt import KubeVirt, install_kubevirt_crds
from tests.support.ctl import Ctl

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"
CIDRS = (f"10.{n}.0.0/24" for n in itertools.count(120))


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[InProcessController]:
    install_kubevirt_crds(control_plane)  # before the controller: its informers find them
    handle = start_controller(control_plane, gc_interval=1.0, gc_grace=1.0, refusal_base=1.0)
    yield handle
    handle.stop()


@dataclass
class VmNet:
    """A namespace with NAD ``net`` (macvlan, kube-ovn IPAM, CNI network ``tenant-net``)."""

    cluster: Cluster
    kv: KubeVirt
    ns: str
    provider: str
    subnet: str
    controller: InProcessController
    ctl: Ctl

    def key(self, suffix: str) -> str:
        return f"{self.provider}.kubernetes.io/{suffix}"

    def nic(self, pod: str) -> tuple[str, str]:
        """Wait for the pod's NIC; its (address, MAC) as annotated."""
        found = self.cluster.allocated(self.ns, pod, self.provider)
        return found[self.key("ip_address")], found[self.key("mac_address")]

    def owner(self, kind: Any, name: str, nic: str = "") -> Any:
        return self.controller.rt.ipam.owner(OwnerRef(kind, self.ns, name, nic))

    def leased(self) -> set[str]:
        return {lease.ip for lease in self.controller.rt.ipam.leases(SubnetName(self.subnet))}

    def refused(self, pod: str, reason: str) -> str:
        """The pod's Warning Event of ``reason``; nothing was allocated for it."""
        event = self.cluster.wait_event(self.ns, pod, reason)
        assert event.type == "Warning"
        assert self.key("allocated") not in self.cluster.annotations(self.ns, pod)
        return str(event.message)


@pytest.fixture
def vmnet(
    control_plane: ControlPlane, controller: InProcessController, kube_namespace: str
) -> Iterator[VmNet]:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"cniVersion": "1.0.0", "name": "tenant-net", "type": "macvlan", "master": "eth0",
              "ipam": {"type": "kube-ovn", "provider": provider}}  # fmt: skip
    cluster.create_nad(ns, "net", json.dumps(config))
    subnet = f"{ns}-net"
    cluster.create_subnet(subnet, provider=provider, cidrBlock=next(CIDRS))
    assert control_plane.etcd is not None
    ctl = Ctl(control_plane.etcd.endpoint, controller.prefix, str(control_plane.kubeconfig))
    yield VmNet(cluster, KubeVirt(cluster, ns), ns, provider, subnet, controller, ctl)
    cluster.delete_cluster_object("subnets", subnet)


def claim_status(net: VmNet, name: str, **wanted: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = net.kv.claim_status(name)
        return status if all(status.get(k) == v for k, v in wanted.items()) else None

    return wait_for(f"IPAMClaim {name} status {wanted}", probe, 60)


def condition(status: dict[str, Any]) -> tuple[str, str]:
    [found] = [c for c in status["conditions"] if c["type"] == "IPsAllocated"]
    return found["status"], found["reason"]


def test_a_restarted_vm_gets_its_claims_addresses_and_mac_back(vmnet: VmNet) -> None:
    net, kv = vmnet, vmnet.kv
    vm = kv.vm("vm1")
    kv.claim(vm, "data")
    nets = [kv.element("net", "data", claim="vm1.data")]
    first = kv.launcher(kv.vmi("vm1", vm), nets)
    ip, mac = net.nic(first)
    status = claim_status(net, "vm1.data", ownerPod={"name": first})
    assert status["ips"] == [f"{ip}/24"] and condition(status) == ("True", "SuccessfulAllocation")
    # Restart: KubeVirt deletes the VMI (its pod goes with it), then starts a new one.
    kv.delete_vmi("vm1")
    wait_for(f"{first} gone", lambda: net.cluster._gone(net.ns, first), 60)
    claim_status(net, "vm1.data", ips=[f"{ip}/24"], ownerPod=None)
    net.cluster.create_pod(net.ns, "stranger", {NETWORKS: f"{net.ns}/net"})
    assert net.nic("stranger")[0] != ip  # kept for the VM while no pod runs it
    wait_for("the old VMI gone", lambda: _vmi_gone(net, "vm1"), 60)
    second = kv.launcher(kv.vmi("vm1", vm), nets)
    assert net.nic(second) == (ip, mac)
    claim_status(net, "vm1.data", ownerPod={"name": second})


def test_a_migration_target_shares_the_addresses_and_keeps_them_when_the_source_goes(
    vmnet: VmNet,
) -> None:
    net, kv = vmnet, vmnet.kv
    vm = kv.vm("vm1")
    kv.claim(vm, "data")
    vmi = kv.vmi("vm1", vm)
    nets = [kv.element("net", "data", claim="vm1.data")]
    source = kv.launcher(vmi, nets)
    ip, mac = net.nic(source)
    target = kv.launcher(vmi, nets, migration="kubevirt-migrate-vm-x7k2p")
    assert net.nic(target) == (ip, mac)
    claim_status(net, "vm1.data", ownerPod={"name": source})  # the source still runs the VM
    record = net.owner(IPAMCLAIM, "vm1.data")
    assert [h.ref.pod.name for h in record.holders] == [source, target]
    report = net.ctl.json("audit", "-n", net.ns)
    assert report["ok"] is True, report
    net.cluster.delete_pod(net.ns, source)
    claim_status(net, "vm1.data", ownerPod={"name": target}, ips=[f"{ip}/24"])
    [lease] = net.ctl.json("leases", "--subnet", net.subnet)["leases"]
    assert (lease["ip"], lease["owner"]["kind"], lease["holders"]) == (
        ip, "IPAMClaim", [f"{net.ns}/{target}"])  # fmt: skip
    assert net.ctl.json("audit", "-n", net.ns)["ok"] is True


def test_a_deleted_claims_addresses_go_once_its_last_pod_is_gone(vmnet: VmNet) -> None:
    net, kv = vmnet, vmnet.kv
    vm = kv.vm("vm1")
    kv.claim(vm, "data")
    pod = kv.launcher(kv.vmi("vm1", vm), [kv.element("net", "data", claim="vm1.data")])
    ip, _ = net.nic(pod)
    owner_ip = f"vm1.data.{net.ns}.{net.provider}"
    wait_for("the claim's IP object", lambda: net.cluster.ip_object(owner_ip), 60)
    kv.delete_claim("vm1.data")
    rt = net.controller.rt
    wait_for("the claim gone from the cache", lambda: not rt.informer(IPAMCLAIMS).get(
        f"{net.ns}/vm1.data"))  # fmt: skip
    sync_claim(rt, f"{net.ns}/vm1.data")  # what the worker runs for the deletion
    assert ip in net.leased()  # its pod still runs: never freed under it
    net.cluster.delete_pod(net.ns, pod)
    wait_for("the claim's address freed", lambda: ip not in net.leased(), 60)
    assert net.owner(IPAMCLAIM, "vm1.data") is None
    wait_for("the claim's IP object gone", lambda: net.cluster.ip_object(owner_ip) is None, 60)
    net.cluster.create_pod(net.ns, "next", {NETWORKS: f"{net.ns}/net", net.key("ip_address"): ip})
    assert net.nic("next")[0] == ip


@pytest.mark.parametrize("with_vm", [True, False], ids=["vm", "just-a-vmi"])
def test_keep_vm_ip_without_a_claim_lasts_until_the_vm_is_deleted(
    vmnet: VmNet, with_vm: bool
) -> None:
    """Kube-OVN's keep-vm-ip: keyed by VM name; a VMI without a VM keeps them for
    the VMI's lifetime."""
    net, kv = vmnet, vmnet.kv
    vm = kv.vm("vm2") if with_vm else None
    vmi = kv.vmi("vm2", vm)
    nets = [kv.element("net", "default")]
    first = kv.launcher(vmi, nets)
    ip, mac = net.nic(first)
    owner = net.owner(VIRTUAL_MACHINE, "vm2", net.provider)
    assert owner is not None and owner.uid == (vm["metadata"]["uid"] if vm else "")
    net.cluster.delete_pod(net.ns, first)  # the pod restarts; the VM(I) stays
    second = kv.launcher(vmi, nets)
    assert net.nic(second) == (ip, mac)
    if vm is not None:
        kv.delete_vm("vm2")  # the garbage collector takes the VMI, then the pod
    else:
        kv.delete_vmi("vm2")
    wait_for(f"{second} gone", lambda: net.cluster._gone(net.ns, second), 60)
    wait_for("the VM's address freed", lambda: ip not in net.leased(), 60)
    assert net.owner(VIRTUAL_MACHINE, "vm2", net.provider) is None


def test_a_claim_that_cannot_be_used_allocates_nothing_and_says_why(
    vmnet: VmNet, control_plane: ControlPlane
) -> None:
    net, kv = vmnet, vmnet.kv
    other = {"cniVersion": "1.0.0", "name": "other-net", "type": "bridge",
             "ipam": {"type": "host-local", "subnet": "10.99.0.0/24"}}  # fmt: skip
    net.cluster.create_nad(net.ns, "other", json.dumps(other))
    net.cluster.create_pod(net.ns, "holder", {NETWORKS: f"{net.ns}/net"})
    taken, _ = net.nic("holder")
    cases: dict[str, tuple[dict[str, Any], str, str]] = {
        "unknown": ({"for_network": "no-such-net"}, "IPAMClaimUnknownNetwork", "'no-such-net'"),
        "foreign": ({"for_network": "other-net"}, "IPAMClaimForeignNetwork", "not use nicpool"),
        "taken": ({"ipRequests": [f"{taken}/24"]}, "AddressInUse", "held by pod"),
    }
    for name, (spec, reason, why) in cases.items():
        vm = kv.vm(name)
        kv.claim(vm, "data", **spec)
        pod = kv.launcher(kv.vmi(name, vm), [kv.element("net", "data", claim=f"{name}.data")])
        assert why in net.refused(pod, reason)
        status = claim_status(net, f"{name}.data")
        assert status.get("conditions") and condition(status) == ("False", reason), status
        assert status["ips"] == []
        assert net.owner(IPAMCLAIM, f"{name}.data") is None
    missing = kv.launcher(kv.vmi("lost", None), [kv.element("net", "data", claim="lost.data")])
    net.refused(missing, "IPAMClaimNotFound")
    assert net.leased() == {taken}  # only the holder's address, all along


def test_a_second_pod_of_another_vm_cannot_share_a_running_claim(vmnet: VmNet) -> None:
    net, kv = vmnet, vmnet.kv
    vm = kv.vm("vm1")
    kv.claim(vm, "data")
    nets = [kv.element("net", "data", claim="vm1.data")]
    owner_pod = kv.launcher(kv.vmi("vm1", vm), nets)
    ip, _ = net.nic(owner_pod)
    intruder = kv.launcher(kv.vmi("vm9", kv.vm("vm9")), nets)
    assert "live migration" in net.refused(intruder, "IPAMClaimInUse")
    status = claim_status(net, "vm1.data", ownerPod={"name": owner_pod})
    assert condition(status) == ("True", "SuccessfulAllocation")  # the claim's own pod is fine
    assert net.leased() == {ip}


def _vmi_gone(net: VmNet, name: str) -> bool:
    try:
        net.cluster.custom.get_namespaced_custom_object(
            "kubevirt.io", "v1", net.ns, "virtualmachineinstances", name
        )
    except Exception as error:  # the client's ApiException; 404 once gone
        return getattr(error, "status", None) == 404
    return False
