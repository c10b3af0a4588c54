"""The one way nicpool writes to etcd: a transaction guarded by the fence.

Every mutation compares the revisions of what it read plus the writer's
fencing key. When the transaction fails, its failure branch has read the
fencing key, which tells the two causes apart: a deposed leader gets
``FencedOut`` (stop at once), anyone else a ``Conflict`` (re-read, retry).
"""

from __future__ import annotations

from collections.abc import Sequence

from store.core.identity import Revision
from store.core.ops import Compare, CreateRevisionIs, Get, Op
from store.core.requests import Fence, Fencing
from store.errors import Conflict, FencedOut
from store.etcd import EtcdClient


def guarded_txn(
    client: EtcdClient, compares: Sequence[Compare], ops: Sequence[Op], fence: Fencing
) -> Revision:
    """Commit ``ops`` if ``compares`` and the fence hold; returns the commit revision."""
    failure: list[Op] = []
    if isinstance(fence, Fence):
        compares = [*compares, CreateRevisionIs(fence.key, fence.revision)]
        failure = [Get(fence.key)]
    outcome = client.txn(compares, ops, failure)
    if outcome.succeeded:
        return outcome.revision
    if isinstance(fence, Fence):
        current = outcome.gets[0] if outcome.gets else None
        if current is None or current.create_revision != fence.revision:
            raise FencedOut(
                f"leadership lost: {fence.key} no longer has create_revision {fence.revision}"
            )
    raise Conflict("a compared revision moved; re-reading")
