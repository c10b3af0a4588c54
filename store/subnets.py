"""Registering subnets in the store, and what an update does to live leases.

The controller mirrors each Subnet custom resource here with ``put``. Rules
for an update, chosen so that no running pod ever loses its address behind
its back:

* ``excludeIps`` or ``gateway`` may change freely. A lease that now falls
  inside a reserved range is **kept** (its pod keeps working) and returned
  to the caller, which reports it (an Event on the Subnet). Once that lease
  is released the address is never handed out again.
* ``cidrBlock`` may change only for a family that holds no lease; otherwise
  the update is refused with ``InvalidSubnetSpec``. Renumbering live pods is
  a migration, not an edit.
* ``delete`` refuses while the subnet holds leases.

An edit must succeed while pods are being allocated in the subnet: it
compares only the spec's own revision, plus, for a family whose CIDR
changes, that family's generation key (rewritten by every allocation in
it), so allocations elsewhere never make it retry. An older
``metadata.generation`` of the same Subnet object never overwrites a newer
one (:class:`SpecOrigin`): a replayed or stale event is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from store.core.addressing import parse_ip
from store.core.identity import Family, Revision, SubnetName
from store.core.keys import Keys
from store.core.ops import Compare, Delete, ModRevisionIs, Op, Put
from store.core.records import Lease
from store.core.requests import Fencing
from store.core.subnetspec import SubnetSpec
from store.errors import InvalidSubnetSpec, NicpoolError
from store.etcd import EtcdClient
from store.guard import guarded_txn
from store.inventory import Inventory
from store.retry import retrying


class SubnetInUse(InvalidSubnetSpec):
    reason = "SubnetInUse"


class StaleSpec(NicpoolError):
    """An older generation of the Subnet object than the one already stored.

    Not an error to report: a replayed watch event or a stale cache. The
    caller logs it and moves on; the stored spec is left as it is.
    """

    reason = "StaleSubnet"


@dataclass(frozen=True)
class SpecOrigin:
    """Which Kubernetes object, at which ``metadata.generation``, a spec came from.

    A spec of the same object (UID) at a lower generation never overwrites a
    newer one; a new UID (the Subnet deleted and created again) starts over.
    """

    uid: str
    generation: int


class Subnets:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, name: SubnetName) -> SubnetSpec | None:
        kv, _ = self.client.get(self.keys.spec(name))
        return SubnetSpec.from_json(kv.value) if kv else None

    def all(self) -> list[SubnetSpec]:
        return [
            SubnetSpec.from_json(kv.value)
            for kv in self.client.iter_prefix(self.keys.subnets)
            if kv.key.endswith("/spec")
        ]

    def put(
        self, spec: SubnetSpec, *, fence: Fencing, origin: SpecOrigin | None = None
    ) -> list[Lease]:
        """Create or update ``spec``; returns live leases now inside a reserved range.

        Raises ``StaleSpec`` when ``origin`` is older than what is stored.
        """
        for attempt in retrying("put_subnet", subject=spec.name):
            with attempt:
                return self._put_once(spec, fence, origin)
        raise AssertionError("unreachable: retrying re-raises")

    def _put_once(self, spec: SubnetSpec, fence: Fencing, origin: SpecOrigin | None) -> list[Lease]:
        kv, _ = self.client.get(self.keys.spec(spec.name))
        stored = _origin_of(kv.value) if kv else None
        if _is_older(origin, stored):
            assert origin is not None and stored is not None
            raise StaleSpec(
                f"subnet {spec.name}: generation {origin.generation} is older than the "
                f"stored generation {stored.generation}; left as it is"
            )
        old = SubnetSpec.from_json(kv.value) if kv else None
        if old == spec and (origin is None or origin == stored):
            return self._stranded(spec)
        compares: list[Compare] = [
            ModRevisionIs(self.keys.spec(spec.name), kv.mod_revision if kv else Revision(0))
        ]
        ops: list[Op] = [Put(self.keys.spec(spec.name), spec.to_json(origin=_origin_doc(origin)))]
        if old is not None:
            renumbered = _renumbered(old, spec)
            if renumbered:
                # No lease of a renumbered family came or went since it was counted.
                for family in renumbered:
                    compares.append(self._generation_compare(spec.name, family))
                self._check_cidr_change(old, spec, self.leases(spec.name))
            ops += [Delete(self.keys.cursor(spec.name, f)) for f in renumbered]
            # Release times are kept by offset: they mean nothing in a new CIDR.
            ops += [Delete(self.keys.cooling(spec.name, f), prefix=True) for f in renumbered]
        guarded_txn(self.client, compares, ops, fence)
        # Read after the commit: every allocation planned on the old spec has
        # either committed by now or will fail its spec compare and re-plan.
        return self._stranded(spec)

    def delete(self, name: SubnetName, *, fence: Fencing) -> None:
        """Remove an empty subnet and all its keys; refused while it holds leases."""
        for attempt in retrying("delete_subnet", subject=name):
            with attempt:
                return self._delete_once(name, fence)

    def _delete_once(self, name: SubnetName, fence: Fencing) -> None:
        kv, _ = self.client.get(self.keys.spec(name))
        if kv is None:
            if self.leases(name):
                raise SubnetInUse(f"subnet {name} still holds leases")
            return
        spec = SubnetSpec.from_json(kv.value)
        compares: list[Compare] = [ModRevisionIs(self.keys.spec(name), kv.mod_revision)]
        compares += [self._generation_compare(name, lay.family) for lay in spec.layouts]
        leases = self.leases(name)
        if leases:
            raise SubnetInUse(f"subnet {name} still holds {len(leases)} leases")
        # Bitmap chunks, cursors and the generation of an empty subnet hold no information.
        guarded_txn(self.client, compares, [Delete(self.keys.subnet(name), prefix=True)], fence)

    def _generation_compare(self, name: SubnetName, family: Family) -> Compare:
        key = self.keys.generation(name, family)
        kv, _ = self.client.get(key)
        return ModRevisionIs(key, kv.mod_revision if kv else Revision(0))

    def leases(self, name: SubnetName) -> list[Lease]:
        return Inventory(self.client, self.keys.prefix).leases(name)

    @staticmethod
    def _check_cidr_change(old: SubnetSpec, new: SubnetSpec, leases: list[Lease]) -> None:
        for layout in old.layouts:
            replacement = new.layout(layout.family)
            if replacement is not None and replacement.cidr == layout.cidr:
                continue
            held = [lease.ip for lease in leases if parse_ip(lease.ip).version == layout.family]
            if held:
                raise InvalidSubnetSpec(
                    f"subnet {new.name}: IPv{layout.family} CIDR {layout.cidr} cannot change "
                    f"while it holds {len(held)} leases (e.g. {held[0]})"
                )

    def _stranded(self, spec: SubnetSpec) -> list[Lease]:
        stranded = []
        for lease in self.leases(spec.name):
            layout = spec.family_of(lease.ip)
            if layout.offset_of(lease.ip) in layout.reserved:
                stranded.append(lease)
        return stranded


def _renumbered(old: SubnetSpec, new: SubnetSpec) -> list[Family]:
    """Families whose CIDR changed, appeared or went away."""
    families = {lay.family for lay in old.layouts} | {lay.family for lay in new.layouts}
    before = {lay.family: lay.cidr for lay in old.layouts}
    after = {lay.family: lay.cidr for lay in new.layouts}
    return sorted(family for family in families if before.get(family) != after.get(family))


def _is_older(origin: SpecOrigin | None, stored: SpecOrigin | None) -> bool:
    """True when ``origin`` is an earlier generation of the object ``stored`` came from."""
    if origin is None or stored is None or origin.uid != stored.uid:
        return False
    return origin.generation < stored.generation


def _origin_doc(origin: SpecOrigin | None) -> dict[str, object] | None:
    return None if origin is None else {"uid": origin.uid, "generation": origin.generation}


def _origin_of(raw: bytes) -> SpecOrigin | None:
    doc = json.loads(raw).get("origin")
    if not isinstance(doc, dict):
        return None
    return SpecOrigin(uid=str(doc.get("uid", "")), generation=int(doc.get("generation", 0)))
