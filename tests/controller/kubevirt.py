"""KubeVirt-shaped objects for the controller tier: KubeVirt's part, played by the test.

KubeVirt cannot run here, so the tests create on the real apiserver the
objects KubeVirt would, shaped as its code shapes them (read in KubeVirt's
virt-controller and its IPAM extensions, and OVN-Kubernetes' handling):

* a ``VirtualMachine`` and its ``VirtualMachineInstance`` (owner reference
  VMI -> VM, controller, blockOwnerDeletion), from a minimal test copy of
  their CRDs (``crds/kubevirt.io.yaml``);
* per VM interface an ``IPAMClaim`` named ``<vm>.<network>``, owned by the VM,
  labelled ``kubevirt.io/vm``, holding the ``kubevirt.io/persistent-ipam``
  finalizer KubeVirt removes once the VM and its VMI are gone,
  ``spec.network`` the NAD config's network name and ``spec.interface`` empty;
* virt-launcher pods: ``virt-launcher-<vm>-<5 chars>``, owned by the VMI,
  labels ``kubevirt.io: virt-launcher``, ``vm.kubevirt.io/name``,
  ``kubevirt.io/created-by``, annotation ``kubevirt.io/domain``, and a JSON
  networks annotation whose element names the NAD, a hashed interface name
  (``pod<11 hex>``) and ``ipam-claim-reference``; a migration target carries
  ``kubevirt.io/migrationJobUID`` and ``kubevirt.io/migrationJobName`` too.

Deleting the VM lets kube-controller-manager's garbage collector delete the
VMI and its pods through those owner references, as on a real cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane, wait_established

CRDS = Path(__file__).with_name("crds") / "kubevirt.io.yaml"
KUBEVIRT = ("kubevirt.io", "v1")
CLAIMS = ("k8s.cni.cncf.io", "v1alpha1", "ipamclaims")
FINALIZER = "kubevirt.io/persistent-ipam"


def install_kubevirt_crds(plane: ControlPlane) -> None:
    plane.apply_yaml(CRDS)
    wait_established(
        plane.api_client(),
        ["virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io"],
        30,
    )


def hashed_interface(network: str) -> str:
    """KubeVirt's pod interface name for a VM network: ``pod`` + 11 hex of its sha256."""
    return "pod" + hashlib.sha256(network.encode()).hexdigest()[:11]


def owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class KubeVirt:
    """Creates and deletes what KubeVirt would, in one namespace."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.ns = cluster, namespace

    # -- VMs ---------------------------------------------------------------------

    def vm(self, name: str) -> dict[str, Any]:
        body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                "metadata": {"name": name}, "spec": {"runStrategy": "Always"}}  # fmt: skip
        return self._create("virtualmachines", body)

    def vmi(self, name: str, vm: dict[str, Any] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if vm is not None:
            meta["ownerReferences"] = [owner_reference(vm)]
        body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "metadata": meta, "spec": {"domain": {"devices": {}}}}  # fmt: skip
        return self._create("virtualmachineinstances", body)

    def _create(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.custom.create_namespaced_custom_object(
            *KUBEVIRT, self.ns, plural, body
        )
        return found

    def delete_vm(self, name: str) -> None:
        """Background cascade: the garbage collector deletes the VMI, then its pods."""
        self.cluster.custom.delete_namespaced_custom_object(
            *KUBEVIRT, self.ns, "virtualmachines", name
        )

    def delete_vmi(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(
            *KUBEVIRT, self.ns, "virtualmachineinstances", name
        )

    # -- IPAMClaims ---------------------------------------------------------------

    def claim(
        self, vm: dict[str, Any], network: str, *, for_network: str = "tenant-net", **spec: Any
    ) -> dict[str, Any]:
        vm_name = vm["metadata"]["name"]
        body = {
            "apiVersion": "k8s.cni.cncf.io/v1alpha1",
            "kind": "IPAMClaim",
            "metadata": {
                "name": f"{vm_name}.{network}",
                "ownerReferences": [owner_reference(vm)],
                "finalizers": [FINALIZER],
                "labels": {"kubevirt.io/vm": vm_name},
            },
            "spec": {"network": for_network, "interface": "", **spec},
        }
        found: dict[str, Any] = self.cluster.custom.create_namespaced_custom_object(
            *CLAIMS[:2], self.ns, CLAIMS[2], body
        )
        return found

    def get_claim(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.cluster.custom.get_namespaced_custom_object(
                *CLAIMS[:2], self.ns, CLAIMS[2], name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def claim_status(self, name: str) -> dict[str, Any]:
        claim = self.get_claim(name)
        return dict((claim or {}).get("status") or {})

    def release_claim(self, name: str) -> None:
        """KubeVirt's IPAM controller, once the VM is gone: drop the finalizer."""
        patch = {"metadata": {"finalizers": None}}
        with contextlib.suppress(ApiException):
            self.cluster.custom.patch_namespaced_custom_object(
                *CLAIMS[:2], self.ns, CLAIMS[2], name, patch
            )

    def delete_claim(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(*CLAIMS[:2], self.ns, CLAIMS[2], name)
        self.release_claim(name)
        wait_for(f"IPAMClaim {name} gone", lambda: self.get_claim(name) is None, 60)

    # -- virt-launcher pods ------------------------------------------------------

    def launcher(
        self,
        vmi: dict[str, Any],
        networks: list[dict[str, Any]],
        *,
        migration: str | None = None,
    ) -> str:
        """A virt-launcher pod of ``vmi`` (a migration target with ``migration``)."""
        vm_name = vmi["metadata"]["name"]
        name = f"virt-launcher-{vm_name}-{secrets.token_hex(3)[:5]}"
        labels = {
            "kubevirt.io": "virt-launcher",
            "kubevirt.io/created-by": vmi["metadata"]["uid"],
            "vm.kubevirt.io/name": vm_name,
            "vmi.kubevirt.io/id": vm_name,
        }
        annotations = {
            "kubevirt.io/domain": vm_name,
            "k8s.v1.cni.cncf.io/networks": json.dumps(networks),
        }
        if migration is not None:
            labels["kubevirt.io/migrationJobUID"] = str(uuid.uuid4())
            annotations["kubevirt.io/migrationJobName"] = migration
        self.cluster.create_pod(
            self.ns,
            name,
            annotations,
            labels=labels,
            ownerReferences=[owner_reference(vmi)],
        )
        return name

    def element(self, nad: str, network: str, claim: str | None = None) -> dict[str, Any]:
        """One networks element as KubeVirt writes it (with the claim its webhook adds)."""
        found = {"name": nad, "namespace": self.ns, "interface": hashed_interface(network)}
        if claim is not None:
            found["ipam-claim-reference"] = claim
        return found
