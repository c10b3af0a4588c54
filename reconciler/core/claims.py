"""IPAMClaims and KubeVirt VMs as planning sees them: which owner a NIC's addresses get.

An ``IPAMClaim`` (``k8s.cni.cncf.io/v1alpha1``, the Network Plumbing WG's
API) is created by KubeVirt per VM interface; the virt-launcher pod's
networks element names it (``ipam-claim-reference``). Its ``spec``:
``network`` (the network it is for), ``interface`` (optional here: KubeVirt
leaves it empty) and ``ipRequests`` (addresses asked for, CIDR or plain).
Parsed into a :class:`ClaimView` before anything reads it; a claim nicpool
cannot read is refused, on the pod and on the claim.

Which owner a NIC gets (:func:`nic_owner`):

* its networks element names a claim: the claim, found **in the pod's
  namespace** (a pod never uses another namespace's claim), not being
  deleted, for this NIC's network: ``spec.network`` is the NAD
  (``ns/name``, or ``name`` in the claim's namespace) or the network name in
  the NAD's CNI config (what KubeVirt writes). A claim for a NAD that does
  not use nicpool is refused as foreign, one for any other network as
  unknown. ``ipRequests`` is the NIC's fixed address;
* else, with keep-vm-ip on, a virt-launcher pod (an owner reference of kind
  ``VirtualMachineInstance``): its VM's NIC, keyed by the VM's name (the
  VMI's, which KubeVirt gives the VM's) and the NIC's provider, as Kube-OVN
  keys it; the VirtualMachine's UID when it is known;
* else the pod itself (``None``).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import conditions
from reconciler.core.errors import (
    ClaimRefusal,
    InvalidIPAMClaim,
    IPAMClaimDeleting,
    IPAMClaimForeignNetwork,
    IPAMClaimInterfaceMismatch,
    IPAMClaimNotFound,
    IPAMClaimUnknownNetwork,
)
from reconciler.core.nadconfig import NadNetwork, nad_provider
from reconciler.core.networks import NetworkSelection
from store.core.identity import IPAMCLAIM, VIRTUAL_MACHINE, AttachmentRef, OwnerRef
from store.errors import PermanentError

VMI_KIND = "VirtualMachineInstance"
KUBEVIRT_GROUP = "kubevirt.io"


@dataclass(frozen=True)
class ClaimView:
    namespace: str
    name: str
    uid: str
    network: str
    interface: str = ""
    ip_requests: tuple[str, ...] = ()
    """Addresses (prefix length dropped), IPv4 first, one per family at most."""
    deleting: bool = False
    generation: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class VmRef:
    """The VM a virt-launcher pod runs: its VMI's name (the VM's) and the VMI's UID."""

    name: str
    vmi_uid: str


@dataclass(frozen=True)
class NicOwner:
    owner: OwnerRef
    uid: str
    claim: ClaimView | None = None


def claim_from_object(obj: Mapping[str, Any]) -> ClaimView:
    """An IPAMClaim object, read into its type; InvalidIPAMClaim when it cannot be."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    key = f"{namespace}/{name}"
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise InvalidIPAMClaim(f"IPAMClaim {key}: spec must be an object", claim=key)
    network, interface = spec.get("network", ""), spec.get("interface", "")
    if not isinstance(network, str) or not network.strip():
        raise InvalidIPAMClaim(f"IPAMClaim {key}: spec.network must name a network", claim=key)
    if not isinstance(interface, str):
        raise InvalidIPAMClaim(f"IPAMClaim {key}: spec.interface must be a string", claim=key)
    return ClaimView(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid", "")),
        network=network.strip(),
        interface=interface.strip(),
        ip_requests=_ip_requests(spec.get("ipRequests"), key),
        deleting=bool(meta.get("deletionTimestamp")),
        generation=int(meta.get("generation") or 0),
    )


def _ip_requests(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidIPAMClaim(f"IPAMClaim {key}: spec.ipRequests must be strings", claim=key)
    found: list[str] = []
    for text in value:
        try:
            found.append(str(ipaddress.ip_interface(text.strip()).ip))
        except ValueError as exc:
            raise InvalidIPAMClaim(
                f"IPAMClaim {key}: ipRequests holds {text!r}, not an address or CIDR", claim=key
            ) from exc
    families = [ipaddress.ip_address(a).version for a in found]
    if len(set(families)) != len(families):
        raise InvalidIPAMClaim(
            f"IPAMClaim {key}: ipRequests gives two IPv{families[0]} addresses", claim=key
        )
    return tuple(sorted(found, key=lambda a: ipaddress.ip_address(a).version))


def virt_launcher_vm(owner_references: object) -> VmRef | None:
    """The VM of a KubeVirt virt-launcher pod: its owner reference of kind
    VirtualMachineInstance in group kubevirt.io (the label ``vm.kubevirt.io/name``
    holds the VMI's hostname, which ``spec.hostname`` may change: not used)."""
    if not isinstance(owner_references, list):
        return None
    for ref in owner_references:
        if not isinstance(ref, Mapping) or ref.get("kind") != VMI_KIND:
            continue
        if str(ref.get("apiVersion", "")).startswith(f"{KUBEVIRT_GROUP}/") and ref.get("name"):
            return VmRef(str(ref["name"]), str(ref.get("uid", "")))
    return None


def cni_network_name(config: str | None) -> str | None:
    """The ``name`` of a NAD's CNI config (what KubeVirt writes into a claim)."""
    try:
        doc = json.loads(config or "")
    except ValueError:
        return None
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else None


def names_network(claim: ClaimView, namespace: str, name: str, config: str | None) -> bool:
    """Does ``claim.network`` name the NAD ``namespace/name`` (whose config is ``config``)?"""
    spelled = {f"{namespace}/{name}"}
    if namespace == claim.namespace:
        spelled.add(name)
    cni_name = cni_network_name(config)
    if cni_name is not None:
        spelled.add(cni_name)
    return claim.network in spelled


def nic_owner(
    *,
    pod_namespace: str,
    sel: NetworkSelection,
    ref: AttachmentRef,
    vm: VmRef | None,
    claims: Mapping[str, ClaimView | ClaimRefusal],
    nads: Mapping[str, str | None],
    vm_uids: Mapping[str, str],
    keep_vm_ip: bool,
) -> NicOwner | None:
    """Who owns this NIC's addresses (module docstring); a ClaimRefusal when its
    claim cannot be used."""
    if sel.claim is not None:
        return _claim_owner(pod_namespace, sel, ref, claims, nads)
    if vm is None or not keep_vm_ip:
        return None
    nic = f"{ref.provider}@{ref.interface}" if ref.interface else str(ref.provider)
    owner = OwnerRef(VIRTUAL_MACHINE, pod_namespace, vm.name, nic)
    return NicOwner(owner, vm_uids.get(f"{pod_namespace}/{vm.name}", ""))


def _claim_owner(
    pod_namespace: str,
    sel: NetworkSelection,
    ref: AttachmentRef,
    claims: Mapping[str, ClaimView | ClaimRefusal],
    nads: Mapping[str, str | None],
) -> NicOwner:
    assert sel.claim is not None
    key = f"{pod_namespace}/{sel.claim}"
    claim = claims.get(key)
    if claim is None:
        raise IPAMClaimNotFound(
            f"IPAMClaim {key} (of NIC {sel.interface}) does not exist", claim=key
        )
    if isinstance(claim, ClaimRefusal):
        raise claim  # its spec could not be read
    if claim.deleting:
        raise IPAMClaimDeleting(f"IPAMClaim {key} is being deleted", claim=key)
    if not names_network(claim, sel.namespace, sel.name, nads.get(sel.nad_key)):
        raise _mismatch(claim, sel, nads)
    if claim.interface and claim.interface != sel.interface:
        raise IPAMClaimInterfaceMismatch(
            f"IPAMClaim {key} is for interface {claim.interface!r}, "
            f"the pod attaches {sel.nad_key} as {sel.interface!r}",
            claim=key,
        )
    return NicOwner(OwnerRef(IPAMCLAIM, claim.namespace, claim.name), claim.uid, claim)


def _mismatch(
    claim: ClaimView, sel: NetworkSelection, nads: Mapping[str, str | None]
) -> PermanentError:
    """Foreign when the claim's network is a NAD that does not use nicpool, else unknown."""
    for nad_key, config in sorted(nads.items()):
        namespace, name = nad_key.split("/", 1)
        if names_network(claim, namespace, name, config) and not _uses_nicpool(
            namespace, name, config
        ):
            return IPAMClaimForeignNetwork(
                f"IPAMClaim {claim.key} is for network {claim.network!r} "
                f"(NetworkAttachmentDefinition {nad_key}), which does not use nicpool",
                claim=claim.key,
            )
    return IPAMClaimUnknownNetwork(
        f"IPAMClaim {claim.key} is for network {claim.network!r}, not for "
        f"{sel.nad_key} that the pod attaches as {sel.interface!r}",
        claim=claim.key,
    )


def _uses_nicpool(namespace: str, name: str, config: str | None) -> bool:
    try:
        found: NadNetwork | None = nad_provider(namespace, name, config)
    except PermanentError:
        return False
    return found is not None


# -- status ------------------------------------------------------------------------

CONDITION = "IPsAllocated"
"""The condition type OVN-Kubernetes writes on an IPAMClaim; nicpool writes the same."""
ALLOCATED = "SuccessfulAllocation"


def claim_status(
    *,
    ips: tuple[str, ...],
    owner_pod: str | None,
    refusal: tuple[str, str] | None,
    generation: int,
    current: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The claim's ``status``: ``ips`` (CIDR form), ``ownerPod`` and the condition.

    The condition is True once the claim holds addresses: a refusal of a
    later pod (one not allowed to share them) is told on that pod, not here,
    since the claim's addresses stay allocated. Without addresses it is
    False with the refusal's reason. ``lastTransitionTime`` moves only when
    status or reason change. (A claim with neither is not nicpool's to
    write: another IPAM's, or not used yet.)
    """
    if ips or refusal is None:
        state, reason, message = "True", ALLOCATED, "IP addresses allocated"
    else:
        state, (reason, message) = "False", refusal
    before = conditions.condition(current.get("conditions"), CONDITION)
    kept = (before.get("status"), before.get("reason")) == (state, reason)
    condition = {
        "type": CONDITION,
        "status": state,
        "reason": reason,
        "message": message[:32768],
        "observedGeneration": generation,
        "lastTransitionTime": before.get("lastTransitionTime", now) if kept else now,
    }
    return {
        "ips": list(ips),
        "ownerPod": {"name": owner_pod} if owner_pod else None,
        "conditions": [condition],
    }
