"""IPAMClaim status, and the ends of claims and VMs (leader only).

``sync_claim`` (key ``("claim", "ns/name")``) writes the claim's status as
the IPAMClaim API defines it: ``ips`` in CIDR form (the owner record's
addresses), ``ownerPod`` (the oldest pod still holding them: a migration's
source until it goes, then the target) and the ``IPsAllocated`` condition
(:func:`reconciler.core.claims.claim_status`), through the status
subresource and only when it changed. A claim that is gone has its
addresses freed once no holder runs (:func:`reconciler.ownerflow.settle_owner`).

``sync_vm`` (key ``("vm", "ns/name")``) does the same for each NIC of a
VirtualMachine that went away (Kube-OVN's keep-vm-ip ends with the VM).

The pod workflow reports here what happened to a claim's NIC
(:func:`note_refusals`, :func:`note_allocated`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable

from reconciler.core.claims import claim_status
from reconciler.core.planning import NicPlan
from reconciler.events import Involved
from reconciler.kube.resources import IPAMCLAIMS, PODS
from reconciler.objects import meta
from reconciler.ownerflow import runs, settle_owner
from reconciler.runtime import Runtime
from store.core.identity import IPAMCLAIM, OwnerRef
from store.core.owners import OwnerRecord
from store.errors import PermanentError

log = logging.getLogger("nicpool.claims")


def sync_claim(rt: Runtime, key: str) -> bool:
    namespace, name = key.split("/", 1)
    owner = OwnerRef(IPAMCLAIM, namespace, name)
    claim = rt.informer(IPAMCLAIMS).get(key)
    record = rt.ipam.owner(owner)
    if claim is None or (record is not None and record.uid not in ("", _uid(claim))):
        # Gone, or re-created under the same name while the old one's addresses
        # remain: those end with the claim they belonged to, never move to this one.
        if record is not None:
            settle_owner(rt, owner)
        if claim is None:
            rt.claim_refusals.pop(key)
            return True
        record = None
    refusal = rt.claim_refusals.get(key)
    if record is None and refusal is None:
        return True  # not used through nicpool (yet): another IPAM's status stays its own
    current = claim.get("status") or {}
    ips = () if record is None else tuple(_cidr(leased.ip, leased.cidr) for leased in record.ips)
    holder = None if record is None else _owner_pod(rt, record)
    wanted = claim_status(
        ips=ips,
        owner_pod=holder,
        refusal=refusal,
        generation=int(meta(claim).get("generation") or 0),
        current=current,
        now=_now(),
    )
    if _same(current, wanted):
        return True
    rt.kube.merge_patch(IPAMCLAIMS, namespace, name, {"status": wanted}, status=True)
    log.info("IPAMClaim %s: status %s, ips %s, ownerPod %s", key, _state(wanted), ips, holder)
    return True


def sync_vm(rt: Runtime, key: str) -> bool:
    """A VirtualMachine changed or went away: settle each of its NICs' addresses."""
    namespace, name = key.split("/", 1)
    for record in rt.ipam.owners(rt.ipam.keys.vm_owners(namespace, name)):
        settle_owner(rt, record.owner)
    return True


def note_refusals(rt: Runtime, refusals: Iterable[tuple[str, PermanentError]]) -> None:
    """The NIC of claim ``ns/name`` was refused: its condition tells why, and an
    Event on the claim too (what ``kubectl describe ipamclaim`` shows)."""
    for key, error in refusals:
        rt.claim_refusals.set(key, (error.reason, str(error)))
        claim = rt.informer(IPAMCLAIMS).get(key)
        if claim is not None:
            namespace, name = key.split("/", 1)
            involved = Involved("IPAMClaim", IPAMCLAIMS.group_version, namespace, name, _uid(claim))
            rt.recorder.warn(involved, error.reason, str(error))
        rt.queue.add(("claim", key))


def note_allocated(rt: Runtime, nics: Iterable[NicPlan]) -> None:
    for nic in nics:
        if nic.claim is not None:
            rt.claim_refusals.pop(nic.claim)
            rt.queue.add(("claim", nic.claim))


def _owner_pod(rt: Runtime, record: OwnerRecord) -> str | None:
    """The oldest holder still running (a migration's source until it ends), else the
    oldest one listed."""
    pods = rt.informer(PODS)
    running = [h for h in record.holders if runs(pods.get(str(h.ref.pod)), h.uid)]
    chosen = running or list(record.holders)
    return chosen[0].ref.pod.name if chosen else None


def _uid(claim: dict[str, object] | None) -> str:
    return "" if claim is None else str(meta(claim).get("uid", ""))


def _cidr(ip: str, network: str) -> str:
    return f"{ip}/{network.rsplit('/', 1)[1]}"


def _same(current: dict[str, object], wanted: dict[str, object]) -> bool:
    """Equal as the API would store it (a null ``ownerPod`` is an absent one)."""
    return {k: v for k, v in current.items() if v is not None} == {
        k: v for k, v in wanted.items() if v is not None
    }


def _state(status: dict[str, object]) -> str:
    conditions = status.get("conditions")
    if isinstance(conditions, list) and conditions:
        return f"{conditions[0].get('status')} ({conditions[0].get('reason')})"
    return "-"


def _now() -> str:
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")
