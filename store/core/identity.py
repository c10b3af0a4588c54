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
    """

    pod: PodRef
    provider: Provider

    def __str__(self) -> str:
        return f"{self.pod}@{self.provider}"
