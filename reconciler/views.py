"""The cached objects planning reads, published as immutable snapshots.

Informer threads change NADs, Subnets, IPPools, Vips, IPAMClaims and VMs
while worker threads plan pods. Planning used to iterate the very dicts the informers
mutated (``RuntimeError: dictionary changed size during iteration`` in
``choose_subnet``). Now each change builds a new mapping (copy-on-write,
under a lock for the writers) and publishes a new :class:`World` by
replacing one reference; a planner takes :attr:`Views.world` once and reads
a state that never changes under it. These events are rare, so copying a
mapping per event costs nothing that matters.

What depends on several objects is derived here, on every replica, from the
same inputs: which Subnets overlap an older one of their network and which
IPPools are refused (``core.overlaps``). So a refused Subnet is absent from
``world.subnets`` on every replica alike, and a Subnet that stops
conflicting (the older one deleted) is usable again at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TypeVar

from reconciler.core.claims import ClaimView
from reconciler.core.errors import ClaimRefusal
from reconciler.core.ippools import IPPoolView
from reconciler.core.overlaps import refused_pools, refused_subnets
from reconciler.core.planning import World
from reconciler.core.subnets import SubnetView
from reconciler.core.vips import VipView
from store.core.identity import SubnetName
from store.errors import PermanentError

K = TypeVar("K")
V = TypeVar("V")


def _with(mapping: Mapping[K, V], key: K, value: V | None) -> Mapping[K, V]:
    """A new read-only mapping: ``mapping`` with ``key`` set (or removed when None)."""
    copy = dict(mapping)
    if value is None:
        copy.pop(key, None)
    else:
        copy[key] = value
    return MappingProxyType(copy)


EMPTY: Mapping[str, PermanentError] = MappingProxyType({})


class Views:
    def __init__(self, *, keep_vm_ip: bool = True) -> None:
        self._lock = threading.Lock()
        self.world = World(
            nads=MappingProxyType({}),
            subnets=MappingProxyType({}),
            ippools=MappingProxyType({}),
            claims=MappingProxyType({}),
            vm_uids=MappingProxyType({}),
            keep_vm_ip=keep_vm_ip,
        )
        """The current snapshot; replaced whole, never mutated."""
        self.all_subnets: Mapping[SubnetName, SubnetView] = MappingProxyType({})
        """Every Subnet that parsed, refused or not (``world.subnets`` holds the usable)."""
        self.refused_subnets: Mapping[SubnetName, PermanentError] = MappingProxyType({})
        self._pool_errors: Mapping[str, PermanentError] = EMPTY
        """IPPools whose object itself is unreadable."""

    def set_nad(self, key: str, config: str | None, *, present: bool = True) -> None:
        """A NAD's ``spec.config`` (None: an empty spec); ``present=False`` removes it."""
        with self._lock:
            nads = dict(self.world.nads)
            if present:
                nads[key] = config
            else:
                nads.pop(key, None)
            self.world = replace(self.world, nads=MappingProxyType(nads))

    def set_subnet(self, name: SubnetName, view: SubnetView | None) -> None:
        with self._lock:
            self.all_subnets = _with(self.all_subnets, name, view)
            self._derive()

    def set_ippool(
        self, name: str, view: IPPoolView | None, *, error: PermanentError | None = None
    ) -> None:
        """An IPPool's view; ``error`` when its object cannot be read (it is refused)."""
        with self._lock:
            self._pool_errors = _with(self._pool_errors, name, error)
            self.world = replace(self.world, ippools=_with(self.world.ippools, name, view))
            self._derive()

    def set_vip(
        self, name: str, view: VipView | None, *, error: PermanentError | None = None
    ) -> None:
        with self._lock:
            self.world = replace(
                self.world,
                vips=_with(self.world.vips, name, view),
                refused_vips=_with(self.world.refused_vips, name, error),
            )

    def set_claim(self, key: str, view: ClaimView | ClaimRefusal | None) -> None:
        """An IPAMClaim (``ns/name``) as planning reads it (why not, when its spec
        cannot be read); None: gone."""
        with self._lock:
            self.world = replace(self.world, claims=_with(self.world.claims, key, view))

    def set_vm(self, key: str, uid: str | None) -> None:
        """A KubeVirt VirtualMachine's UID (``ns/name``); None: gone."""
        with self._lock:
            self.world = replace(self.world, vm_uids=_with(self.world.vm_uids, key, uid))

    def _derive(self) -> None:
        refused = refused_subnets(self.all_subnets)
        usable = {k: v for k, v in self.all_subnets.items() if k not in refused}
        pools = {**refused_pools(self.world.ippools, usable), **self._pool_errors}
        self.refused_subnets = MappingProxyType(dict(refused))
        self.world = replace(
            self.world,
            subnets=MappingProxyType(usable),
            refused_pools=MappingProxyType(pools),
        )
