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
"""

from __future__ import annotations

from store.core.addressing import parse_ip
from store.core.identity import Revision, SubnetName
from store.core.keys import Keys
from store.core.ops import Compare, Delete, ModRevisionIs, Op, Put
from store.core.records import Lease
from store.core.requests import Fencing
from store.core.subnetspec import SubnetSpec
from store.errors import InvalidSubnetSpec
from store.etcd import EtcdClient
from store.guard import guarded_txn
from store.inventory import Inventory
from store.retry import retrying


class SubnetInUse(InvalidSubnetSpec):
    reason = "SubnetInUse"


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

    def put(self, spec: SubnetSpec, *, fence: Fencing) -> list[Lease]:
        """Create or update ``spec``; returns live leases now inside a reserved range."""
        for attempt in retrying("put_subnet", subject=spec.name):
            with attempt:
                return self._put_once(spec, fence)
        raise AssertionError("unreachable: retrying re-raises")

    def _put_once(self, spec: SubnetSpec, fence: Fencing) -> list[Lease]:
        kv, _ = self.client.get(self.keys.spec(spec.name))
        counted = self._generation(spec.name)
        leases = self.leases(spec.name)
        ops: list[Op] = [Put(self.keys.spec(spec.name), spec.to_json())]
        if kv is not None:
            old = SubnetSpec.from_json(kv.value)
            if old == spec:
                return self._stranded(spec, leases)
            self._check_cidr_change(old, spec, leases)
            ops += self._cursor_resets(old, spec)
        compares: list[Compare] = [
            ModRevisionIs(self.keys.spec(spec.name), kv.mod_revision if kv else Revision(0)),
            # No lease came or went since they were checked above.
            ModRevisionIs(self.keys.generation(spec.name), counted),
        ]
        guarded_txn(self.client, compares, ops, fence)
        return self._stranded(spec, leases)

    def delete(self, name: SubnetName, *, fence: Fencing) -> None:
        """Remove an empty subnet and all its keys; refused while it holds leases."""
        for attempt in retrying("delete_subnet", subject=name):
            with attempt:
                return self._delete_once(name, fence)

    def _delete_once(self, name: SubnetName, fence: Fencing) -> None:
        kv, _ = self.client.get(self.keys.spec(name))
        counted = self._generation(name)
        leases = self.leases(name)
        if leases:
            raise SubnetInUse(f"subnet {name} still holds {len(leases)} leases")
        if kv is None:
            return
        compares: list[Compare] = [
            ModRevisionIs(self.keys.spec(name), kv.mod_revision),
            ModRevisionIs(self.keys.generation(name), counted),
        ]
        # Bitmap chunks, cursors and the generation of an empty subnet hold no information.
        guarded_txn(self.client, compares, [Delete(self.keys.subnet(name), prefix=True)], fence)

    def _generation(self, name: SubnetName) -> Revision:
        kv, _ = self.client.get(self.keys.generation(name))
        return kv.mod_revision if kv else Revision(0)

    def _cursor_resets(self, old: SubnetSpec, new: SubnetSpec) -> list[Op]:
        """A family whose CIDR changed starts its next-fit search from the beginning."""
        return [
            Delete(self.keys.cursor(new.name, layout.family))
            for layout in new.layouts
            if (previous := old.layout(layout.family)) is None or previous.cidr != layout.cidr
        ]

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

    @staticmethod
    def _stranded(spec: SubnetSpec, leases: list[Lease]) -> list[Lease]:
        stranded = []
        for lease in leases:
            layout = spec.family_of(lease.ip)
            if layout.offset_of(lease.ip) in layout.reserved:
                stranded.append(lease)
        return stranded
