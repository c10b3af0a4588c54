"""Typed identities, so a swapped positional string fails type checking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NewType

SubnetName = NewType("SubnetName", str)
"""A Subnet custom resource's name (cluster scoped, as in Kube-OVN)."""

Provider = NewType("Provider", str)
"""``<nad>.<ns>``, ``<nad>.<ns>.ovn`` or ``ovn``."""

PodUID = NewType("PodUID", str)
Offset = NewType("Offset", int)
"""An address's distance from the start of its subnet's CIDR."""

Revision = NewType("Revision", int)
"""An etcd revision (mod_revision, create_revision or a fencing token)."""

Mac = NewType("Mac", str)
"""Lower-case, colon separated, six octets."""

Family = Literal[4, 6]


@dataclass(frozen=True, order=True)
class PodRef:
    """A pod by namespace and name (the UID lives in the lease, not the key)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class AttachmentRef:
    """One NIC of one pod: the pod and the provider that names the network.

    The agent looks a lease up by exactly this, from the CNI request's
    ``K8S_POD_NAMESPACE``, ``K8S_POD_NAME`` and the config's ``provider``.
    ``interface`` is set only for a pod that attaches one provider more than
    once (a NAD attached twice): each of those NICs has a lease of its own.
    It is a separate field, never folded into the provider string, so a NIC
    of provider ``a.ns`` on ``net1`` can never be confused with a NIC of a
    provider literally named ``a.ns.net1``.
    """

    pod: PodRef
    provider: Provider
    interface: str = ""

    @property
    def qualified(self) -> str:
        """How annotations and IP object names spell this NIC's provider:
        ``<provider>``, or ``<provider>.<interface>`` for a provider attached twice."""
        return f"{self.provider}.{self.interface}" if self.interface else self.provider

    def __str__(self) -> str:
        return f"{self.pod}@{self.qualified}"


OwnerKind = Literal["IPAMClaim", "VirtualMachine"]
IPAMCLAIM: OwnerKind = "IPAMClaim"
VIRTUAL_MACHINE: OwnerKind = "VirtualMachine"


@dataclass(frozen=True, order=True)
class OwnerRef:
    """An owner that outlives its pods (DESIGN.md, Owners): an IPAMClaim, or one
    NIC of a KubeVirt VirtualMachine (Kube-OVN's keep-vm-ip).

    A claim is one NIC by itself, so ``nic`` is empty; a VM has an owner per
    NIC, ``nic`` being the NIC's provider (``<provider>@<interface>`` for a
    provider the pod attaches twice, spelled as attachment keys spell it).
    """

    kind: OwnerKind
    namespace: str
    name: str
    nic: str = ""

    def __str__(self) -> str:
        what = "ipamclaim" if self.kind == IPAMCLAIM else "vm"
        return f"{what} {self.namespace}/{self.name}" + (f" ({self.nic})" if self.nic else "")
