"""Who holds an address or a MAC: as the pod asking may be told, and as proven gone.

Events about a pod are read by its namespace's users: a holder is named only
when it lives in that same namespace (DESIGN.md, trust boundaries); anyone
else is "another pod". A holder is a pod NIC, or an owner (an IPAMClaim, a
VM's NIC) whose addresses several pods may share.
"""

from __future__ import annotations

from store.core.identity import AttachmentRef, OwnerRef
from store.core.keys import Keys
from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.errors import HeldByPredecessor


def holder_text(holder: AttachmentRef | OwnerRef | None, asking: AttachmentRef) -> str:
    if isinstance(holder, OwnerRef) and holder.namespace == asking.pod.namespace:
        return str(holder)
    if isinstance(holder, AttachmentRef) and holder.pod.namespace == asking.pod.namespace:
        return f"pod {holder.pod} ({holder.provider})"
    return "another pod"


def holder_of_key(keys: Keys, key: str) -> AttachmentRef | OwnerRef:
    """The holder a MAC index entry points at (an attachment or an owner record)."""
    return keys.owner_ref(key) if key.startswith(keys.owners) else keys.attachment_ref(key)


def require_proof(request: AllocationRequest, predecessor: Attachment) -> None:
    """Refuse to replace or adopt another UID's attachment without proof it is gone."""
    if predecessor.uid not in (request.uid, request.replaces):
        raise HeldByPredecessor(
            f"{request.ref} is held by pod uid {predecessor.uid}, not {request.uid}; "
            "replaced only once that pod is known to be gone",
            holder=predecessor.uid,
        )
