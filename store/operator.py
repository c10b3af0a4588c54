"""What an operator's tool may write outside the allocation path.

``nicpoolctl release --force`` on a NIC whose pod may still live must not
free the address under that pod: another pod could get it while the first
still uses it on its node. So the request is recorded on the attachment
(``release_requested``) and the controller frees the NIC once the pod is
gone, whatever StatefulSet retention would otherwise keep. Until then the
address stays held and nobody sees it free.
"""

from __future__ import annotations

from dataclasses import replace

from store.core.identity import AttachmentRef, PodUID
from store.core.keys import Keys
from store.core.ops import ModRevisionIs, Put
from store.core.records import Attachment, decode_attachment, encode_attachment
from store.core.requests import UNFENCED
from store.etcd import EtcdClient
from store.guard import guarded_txn


def request_release(
    client: EtcdClient, prefix: str, ref: AttachmentRef, *, uid: PodUID
) -> Attachment | None:
    """Mark ``uid``'s NIC for release once its pod is gone; None when it is not ``uid``'s.

    One transaction comparing the attachment as read: a controller write in
    between makes it fail (``Conflict``) rather than be overwritten.
    """
    keys = Keys(prefix)
    kv, _ = client.get(keys.attachment(ref))
    if kv is None:
        return None
    current = decode_attachment(kv.value)
    if current.uid != uid:
        return None
    marked = replace(current, release_requested=True)
    compare = ModRevisionIs(keys.attachment(ref), kv.mod_revision)
    guarded_txn(client, [compare], [Put(keys.attachment(ref), encode_attachment(marked))], UNFENCED)
    return marked
