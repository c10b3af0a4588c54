"""What the leader remembers of each subnet between transactions, and plans from.

The leader is normally the only writer, so it keeps the subnet's spec, the
bitmap chunks and the next-fit cursors it last read or wrote, each with the
mod_revision to compare in the next transaction. The cache is an
optimisation that can never make a write wrong (every transaction compares
what it read); what it could make wrong is a *refusal*, which is why
``store.leases`` confirms every refusal against etcd before returning it.
A failed transaction drops the subnet's cache; a new term drops them all.

A chunk is read together with its release times (the cool-down's record,
``store.core.cooldown``) in one transaction, so the two are as of one
revision and the cool-down costs no extra round trip.

:class:`PlanSource` builds a ``BatchPlan`` for a subnet, reading through its
:class:`SubnetCache` whatever is not cached yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from store.core.bitmap import CHUNK_BITS, Chunk, WorkingChunks
from store.core.cooldown import FreedTimes
from store.core.identity import AttachmentRef, OwnerRef, Revision, SubnetName
from store.core.keys import Keys
from store.core.ops import Get
from store.core.plan import BatchPlan
from store.core.records import decode_lease
from store.core.requests import Fencing
from store.core.subnetspec import SubnetSpec
from store.errors import UnknownSubnet
from store.etcd import EtcdClient


@dataclass
class SubnetCache:
    spec: tuple[SubnetSpec, Revision] | None = None
    chunks: dict[tuple[int, int], tuple[Chunk, Revision]] = field(default_factory=dict)
    cursors: dict[int, int] | None = None

    def forget(self) -> None:
        self.spec = None
        self.chunks.clear()
        self.cursors = None

    def holds_anything(self) -> bool:
        return self.spec is not None or bool(self.chunks)

    def remember(self, plan: BatchPlan, revision: Revision) -> None:
        """What a committed plan wrote is what etcd now holds, at ``revision``."""
        for key in plan.chunks.dirty:
            self.chunks[key] = (plan.chunks.touched[key][0], revision)
        self.cursors = dict(plan.cursors)


class PlanSource:
    """Plans for one prefix, reading specs, chunks, cursors and holders from etcd."""

    def __init__(
        self,
        client: EtcdClient,
        keys: Keys,
        *,
        rng: random.Random,
        clock: Callable[[], float],
        cooldown: float = 0.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.rng = rng
        self.clock = clock
        self.cooldown = cooldown

    def plan(self, subnet: SubnetName, cache: SubnetCache, fence: Fencing) -> BatchPlan:
        spec, spec_revision = self.spec(subnet, cache)
        if cache.cursors is None:
            cache.cursors = self._cursors(spec)

        def load(family: int, index: int) -> tuple[Chunk, Revision]:
            cached = cache.chunks.get((family, index))
            if cached is not None:
                return cached
            loaded = self._chunk(subnet, family, index)
            cache.chunks[(family, index)] = loaded
            return loaded

        return BatchPlan(
            spec=spec,
            spec_revision=spec_revision,
            keys=self.keys,
            chunks=WorkingChunks(load),
            cursors=dict(cache.cursors),
            fence=fence,
            now=self.clock(),
            rng=self.rng,
            holder_of=self._holder_of(subnet),
            cooldown=self.cooldown,
        )

    def _chunk(self, subnet: SubnetName, family: int, index: int) -> tuple[Chunk, Revision]:
        """A bitmap chunk, its mod_revision (0 if absent) and its release times, in one read."""
        keys = [self.keys.chunk(subnet, family, index), self.keys.cooling(subnet, family, index)]  # type: ignore[arg-type]
        kv, freed = self.client.txn([], [Get(key) for key in keys]).gets
        chunk = Chunk.decode(index, kv.value if kv else None)
        chunk.freed = FreedTimes.decode(freed.value if freed else None, chunk.base, CHUNK_BITS)
        return chunk, kv.mod_revision if kv else Revision(0)

    def spec(self, subnet: SubnetName, cache: SubnetCache) -> tuple[SubnetSpec, Revision]:
        if cache.spec is None:
            kv, _ = self.client.get(self.keys.spec(subnet))
            if kv is None:
                raise UnknownSubnet(f"subnet {subnet} is not registered in the store")
            cache.spec = (SubnetSpec.from_json(kv.value), kv.mod_revision)
        return cache.spec

    def _cursors(self, spec: SubnetSpec) -> dict[int, int]:
        cursors: dict[int, int] = {}
        for layout in spec.layouts:
            kv, _ = self.client.get(self.keys.cursor(spec.name, layout.family))
            cursors[layout.family] = int(kv.value) if kv else -1
        return cursors

    def _holder_of(self, subnet: SubnetName) -> Callable[[str], AttachmentRef | OwnerRef | None]:
        def holder_of(ip: str) -> AttachmentRef | OwnerRef | None:
            kv, _ = self.client.get(self.keys.lease(subnet, ip))
            return None if kv is None else decode_lease(kv.value).owner

        return holder_of
