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
    client: EtcdClient,
    compares: Sequence[Compare],
    ops: Sequence[Op],
    fence: Fencing,
    *,
    probes: Sequence[str] = (),
) -> Revision:
    """Commit ``ops`` if ``compares`` and the fence hold; returns the commit revision.

    ``probes`` are keys the caller assumed something about without reading
    them first (optimism: usually right, and a read saved). When the
    transaction fails, its failure branch reads them, and the ``Conflict``
    carries what it found in ``observed`` (None for an absent key).
    """
    failure: list[Op] = []
    if isinstance(fence, Fence):
        compares = [*compares, CreateRevisionIs(fence.key, fence.revision)]
        failure = [Get(fence.key)]
    failure += [Get(key) for key in probes]
    outcome = client.txn(compares, ops, failure)
    if outcome.succeeded:
        return outcome.revision
    gets = list(outcome.gets)
    if isinstance(fence, Fence):
        current = gets.pop(0)
        if current is None or current.create_revision != fence.revision:
            raise FencedOut(
                f"leadership lost: {fence.key} no longer has create_revision {fence.revision}"
            )
    observed = dict(zip(probes, gets, strict=True))
    raise Conflict("a compared revision moved; re-reading", observed=observed)
