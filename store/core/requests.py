"""What the controller asks of the store, and the fencing token it proves leadership with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from store.core.identity import AttachmentRef, Mac, OwnerRef, PodUID, Revision, SubnetName
from store.core.records import Route, WorkloadRef


@dataclass(frozen=True)
class Fence:
    """Every write compares ``create_revision(key) == revision``.

    ``key`` is the writer's election key; ``revision`` the create_revision it
    had when the writer became leader. When the writer's etcd lease expires
    the key is deleted (or re-created with a new revision), so a deposed
    leader's transaction fails whatever it believes about itself.
    """

    key: str
    revision: Revision


@dataclass(frozen=True)
class Unfenced:
    """Explicitly no fence: for admin tools run with the controllers stopped, and tests."""


UNFENCED: Final = Unfenced()
Fencing = Fence | Unfenced


@dataclass(frozen=True)
class AllocationRequest:
    """One NIC of one pod, to be given addresses in ``subnet``.

    Address choice, first match wins: ``fixed_ips`` (one address per family
    at most; a family without one gets the next free address), then the
    first ``pool`` candidate whose addresses are all free, then the next
    free address. ``adopt`` lets a StatefulSet pod recreated with a new UID
    take over the attachment its predecessor left (address retention).

    An attachment left under this pod name by another UID (a predecessor) is
    replaced or adopted only when ``replaces`` names that UID: the caller's
    proof that the predecessor is gone (the apiserver shows the name held by
    ``uid``). Without it the store refuses (``HeldByPredecessor``) rather than
    take a live pod's addresses on the word of a stale cache.

    ``owner`` (an IPAMClaim, a VM NIC) leases the addresses to that owner
    instead of the pod: the first request allocates them, every later one
    (a restarted VM's pod, a migration target) joins as another holder of the
    same addresses and MAC (:mod:`store.core.owners`). ``owner_uid`` is the
    owner's UID, empty when unknown (a VM without its VirtualMachine object).
    """

    ref: AttachmentRef
    uid: PodUID
    subnet: SubnetName
    interface: str
    fixed_ips: tuple[str, ...] = ()
    pool: tuple[tuple[str, ...], ...] = ()
    mac: Mac | None = None
    routes: tuple[Route, ...] = ()
    default_route: bool = False
    workload: WorkloadRef | None = None
    adopt: bool = False
    replaces: PodUID | None = None
    owner: OwnerRef | None = None
    owner_uid: str = ""

    def estimated_bytes(self) -> int:
        """About how many bytes this NIC's records take (routes dominate; 1 KiB for the rest)."""
        return 1024 + sum(len(route.dst) + len(route.gw) + 16 for route in self.routes)
