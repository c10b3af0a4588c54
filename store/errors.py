"""Errors split by what the caller should do about them.

``PermanentError``: retrying the same request cannot help (bad input, the
address is held by someone else, the pool is exhausted). The controller turns
these into an Event on the pod and retries only with long backoff, in case
the world changes (a pod goes away, a subnet grows).

``TemporaryError``: the same request may succeed later (a lost
compare-and-swap race, etcd unreachable, a compacted watch). Retried by the
policies in ``store.retry``.

``FencedOut`` is neither: the caller is no longer the leader, so it must stop
acting at once rather than retry. The etcd client's own exceptions are
translated into these in ``store.etcd`` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.core.ops import KeyValue

if TYPE_CHECKING:
    from store.core.records import Attachment


class NicpoolError(Exception):
    """Base of every error nicpool raises on purpose."""

    reason = "Error"
    """Short CamelCase reason, used as the Kubernetes Event reason and metric label."""


class PermanentError(NicpoolError):
    reason = "Invalid"


class InvalidSubnetSpec(PermanentError):
    reason = "InvalidSubnetSpec"


class InvalidAddress(PermanentError):
    reason = "InvalidAddress"


class OutsideSubnet(PermanentError):
    reason = "AddressOutsideSubnet"


class ExcludedAddress(PermanentError):
    reason = "AddressExcluded"


class AddressInUse(PermanentError):
    reason = "AddressInUse"


class MacInUse(PermanentError):
    reason = "MacInUse"


class InvalidMac(PermanentError):
    reason = "InvalidMac"


class SubnetExhausted(PermanentError):
    reason = "SubnetExhausted"


class SubnetCoolingDown(SubnetExhausted):
    """Every free address of a family was freed less than the cool-down ago
    (``store.core.cooldown``): the request fits once ``retry_after`` seconds pass."""

    reason = "AddressesCoolingDown"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoolExhausted(PermanentError):
    reason = "PoolExhausted"


class UnknownSubnet(PermanentError):
    reason = "UnknownSubnet"


class HeldByPredecessor(PermanentError):
    """The pod name's attachment belongs to another UID, and the caller has not
    proven that pod gone (``AllocationRequest.replaces``)."""

    reason = "HeldByPredecessor"

    def __init__(self, message: str, *, holder: str) -> None:
        super().__init__(message)
        self.holder = holder
        """The UID holding the attachment, to prove gone before asking again."""


class OwnerInAnotherSubnet(PermanentError):
    """The NIC's owner (claim, VM) holds its addresses in another subnet than the
    NIC asks for: they are never moved, only released when the owner ends."""

    reason = "OwnerInAnotherSubnet"


class OwnerAddressMismatch(PermanentError):
    """A fixed address or MAC asked for a NIC whose owner already holds others."""

    reason = "OwnerAddressMismatch"


class PreviousOwnerNotReleased(PermanentError):
    """An owner of this name with another UID (a deleted and re-created claim or VM)
    still holds the addresses: released first, then allocated anew."""

    reason = "PreviousOwnerNotReleased"


class RecordTooLarge(PermanentError):
    """One pod NIC's record would not fit in an etcd request (its routes, mostly)."""

    reason = "RecordTooLarge"


class PermissionDenied(PermanentError):
    """etcd's auth refused the call: this component's role does not allow it."""

    reason = "EtcdPermissionDenied"


class TemporaryError(NicpoolError):
    reason = "Temporary"

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Conflict(TemporaryError):
    """A compared revision moved: someone else wrote first. Re-read and retry.

    ``observed`` holds what the failed transaction read of the keys its
    writer asked about (see ``store.guard``), so the retry needs no extra read.
    """

    reason = "Conflict"

    def __init__(self, message: str, *, observed: dict[str, KeyValue | None] | None = None) -> None:
        super().__init__(message)
        self.observed: dict[str, KeyValue | None] = observed or {}


class PartialAllocation(TemporaryError):
    """Some requests of one ``Ipam.allocate`` call committed, then another subnet
    failed temporarily: ``committed`` holds what did, so the caller loses nothing."""

    reason = "PartialAllocation"

    def __init__(self, message: str, *, committed: list[Attachment]) -> None:
        super().__init__(message)
        self.committed = committed


class Unavailable(TemporaryError):
    reason = "EtcdUnavailable"


class TooLarge(TemporaryError):
    """A response over gRPC's receive limit: read less at a time."""

    reason = "ResponseTooLarge"


class Compacted(TemporaryError):
    """A watch asked for a revision etcd has compacted away: relist."""

    reason = "Compacted"


class FencedOut(NicpoolError):
    """The fencing revision no longer matches the leader key: stop, do not retry."""

    reason = "FencedOut"


STATE_REFUSALS: tuple[type[PermanentError], ...] = (
    AddressInUse,
    ExcludedAddress,
    InvalidAddress,
    OutsideSubnet,
    PoolExhausted,
    SubnetExhausted,
)
"""Refusals that depend on the bitmaps and spec a plan read, which may come from
the leader's cache: ``store.leases`` confirms each against etcd before returning it."""


class VipInUse(PermanentError):
    """A Vip's address is already borrowed by another pod NIC (one at a time)."""

    reason = "VipInUse"


class VipNotReserved(PermanentError):
    """The Vip has no reservation in the store (yet): nothing to borrow."""

    reason = "VipNotReady"


class VipSubnetMismatch(PermanentError):
    """The Vip reserves an address of another Subnet than the NIC's."""

    reason = "VipSubnetMismatch"
