"""Refusals the controller's core can produce, each with its Event reason.

They extend :class:`store.errors.PermanentError`: the same input gives the
same refusal, so the controller reports it (Event, metric, log) and retries
only with long backoff, in case the user fixes a NAD, a Subnet or an IPPool.
Errors about addresses themselves (``InvalidAddress``, ``OutsideSubnet``,
``PoolExhausted``, ...) are the store's and are reused, not redefined.
"""

from __future__ import annotations

import sys

from store import errors as store_errors
from store.errors import PermanentError


class InvalidNetworksAnnotation(PermanentError):
    """``k8s.v1.cni.cncf.io/networks`` cannot be parsed."""

    reason = "InvalidNetworksAnnotation"


class InvalidDefaultNetwork(PermanentError):
    """``v1.multus-cni.io/default-network`` cannot be parsed or names several networks."""

    reason = "InvalidDefaultNetwork"


class InvalidAnnotation(PermanentError):
    """A ``<provider>.kubernetes.io/*`` value is malformed (ip_address, ip_pool, routes, ...)."""

    reason = "InvalidAnnotation"


class InvalidRoutes(InvalidAnnotation):
    reason = "InvalidRoutes"


class InvalidIPPoolAnnotation(InvalidAnnotation):
    reason = "InvalidIPPool"


class NadNotFound(PermanentError):
    """The pod names a NetworkAttachmentDefinition that does not exist."""

    reason = "NetworkAttachmentDefinitionNotFound"


class NadNoProvider(PermanentError):
    """The NAD has an empty ``spec`` (Multus reads the config from each node), so
    no provider can be known centrally; DESIGN.md: report it, never guess."""

    reason = "NoProvider"


class InvalidNadConfig(PermanentError):
    """The NAD's ``spec.config`` is not a CNI config (bad JSON, wrong shapes)."""

    reason = "InvalidNetworkAttachmentDefinition"


class NoSubnetForProvider(PermanentError):
    """No Subnet has ``spec.provider`` equal to the attachment's provider."""

    reason = "NoSubnetForProvider"


class AmbiguousSubnet(PermanentError):
    """Several Subnets claim the same provider; picking one would be a guess."""

    reason = "AmbiguousSubnet"


class UnknownIPPool(PermanentError):
    """``ip_pool`` names an IPPool that does not exist."""

    reason = "IPPoolNotFound"


class IPPoolSubnetMismatch(PermanentError):
    """``ip_pool`` names an IPPool of another subnet than the attachment's."""

    reason = "IPPoolSubnetMismatch"


class FamilyMismatch(InvalidAnnotation):
    """An address list does not give exactly one address per family of the subnet."""

    reason = "AddressFamilyMismatch"


class DuplicateInterface(InvalidNetworksAnnotation):
    """Two attachments of one pod ask for the same interface name."""

    reason = "DuplicateInterface"


class InvalidSubnet(PermanentError):
    """A Subnet object nicpool cannot use (reported on the Subnet)."""

    reason = "InvalidSubnet"


class InvalidIPPool(PermanentError):
    """An IPPool object nicpool cannot read (bad ``spec.ips``, no ``spec.subnet``)."""

    reason = "InvalidIPPoolObject"


class DuplicateProvider(PermanentError):
    """Two NICs of one pod resolve to the same provider, so their leases would collide."""

    reason = "DuplicateProvider"


class ClaimRefusal(PermanentError):
    """A NIC's IPAMClaim cannot be used; reported on the pod and on the claim."""

    reason = "InvalidIPAMClaim"

    def __init__(self, message: str, *, claim: str) -> None:
        super().__init__(message)
        self.claim = claim
        """``"ns/name"`` of the claim, whose status condition tells the refusal."""


class InvalidIPAMClaim(ClaimRefusal):
    """The claim's spec cannot be read (``ipRequests`` not addresses, ...)."""


class IPAMClaimNotFound(ClaimRefusal):
    reason = "IPAMClaimNotFound"


class IPAMClaimDeleting(ClaimRefusal):
    """The claim is being deleted: no new pod may start using its addresses."""

    reason = "IPAMClaimDeleting"


class IPAMClaimUnknownNetwork(ClaimRefusal):
    """The claim's ``spec.network`` is not the network of the NIC that names it."""

    reason = "IPAMClaimUnknownNetwork"


class IPAMClaimForeignNetwork(ClaimRefusal):
    """The claim is for a NAD that does not use nicpool (kube-ovn IPAM)."""

    reason = "IPAMClaimForeignNetwork"


class IPAMClaimInterfaceMismatch(ClaimRefusal):
    reason = "IPAMClaimInterfaceMismatch"


class IPAMClaimInUse(ClaimRefusal):
    """The claim's addresses are held by a pod that is not this one's migration peer."""

    reason = "IPAMClaimInUse"


class IPPoolRefused(PermanentError):
    """``ip_pool`` names an IPPool nicpool refused (see the IPPool's conditions)."""

    reason = "IPPoolNotReady"


class IPPoolNamespaceMismatch(PermanentError):
    """The IPPool's ``spec.namespaces`` does not list the pod's namespace."""

    reason = "IPPoolNamespaceMismatch"


class IPPoolOutsideSubnet(PermanentError):
    """An IPPool entry is not inside its Subnet (or of a family the Subnet lacks)."""

    reason = "IPPoolOutsideSubnet"


class IPPoolOverlap(PermanentError):
    """An IPPool shares addresses with an older IPPool of the same Subnet."""

    reason = "IPPoolOverlap"


class IPPoolSubnetNotFound(PermanentError):
    """An IPPool's ``spec.subnet`` names no usable Subnet."""

    reason = "IPPoolSubnetNotFound"


class BeingDeleted(PermanentError):
    """A Subnet, IPPool or Vip being deleted: pods keep what they hold, nothing new is
    allocated from it (its finalizer waits for the last lease)."""

    reason = "BeingDeleted"


class SubnetDeleting(BeingDeleted):
    reason = "SubnetDeleting"


class IPPoolDeleting(BeingDeleted):
    reason = "IPPoolDeleting"


class VipDeleting(BeingDeleted):
    reason = "VipDeleting"


class SubnetOverlap(PermanentError):
    """A Subnet's CIDR overlaps an older Subnet of the same network (see ``core.overlaps``)."""

    reason = "CIDROverlap"


class InvalidVip(PermanentError):
    """A Vip object nicpool cannot read (no subnet, bad addresses or MAC)."""

    reason = "InvalidVip"


class VipNotFound(PermanentError):
    """The pod's ``vip`` annotation names a Vip that does not exist."""

    reason = "VipNotFound"


class VipNamespaceMismatch(PermanentError):
    """The Vip's ``spec.namespace`` is another namespace than the pod's."""

    reason = "VipNamespaceMismatch"


class VipNoNic(PermanentError):
    """``ovn.kubernetes.io/vip`` names a Vip of a Subnet none of the pod's NICs uses."""

    reason = "VipSubnetMismatch"


NAD_REFUSALS: tuple[type[PermanentError], ...] = (NadNotFound, NadNoProvider, InvalidNadConfig)
"""Refusals caused by a NetworkAttachmentDefinition (``nicpool_nad_errors_total``)."""


def refusal_reasons() -> tuple[str, ...]:
    """Every reason a refusal can carry: the store's and this module's error classes.

    Read from the classes themselves, so a new refusal is counted (and its
    metric series exported from the start) without a list to keep in step.
    """
    found = {
        obj.reason
        for module in (store_errors, sys.modules[__name__])
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, PermanentError)
    }
    return tuple(sorted(found))
