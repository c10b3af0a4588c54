"""Pure: replay nicpool's etcd writes in revision order and check each revision.

Every nicpool mutation is one etcd transaction, so all the events of one
revision are applied together before anything is checked. Three things
are checked per revision:

* no address of a subnet is held by two attachments (``duplicate-address``);
* every address an attachment holds has its lease, with the same owner,
  and every lease has its attachment (``records-disagree``);
* a lease written at revision r carries the fence of the replica that led
  just before r: its election key alive and the oldest
  (``unfenced-write``);

and per event: a lease that leaves its owner (deleted, or written for
another UID) leaves a pod that could already be gone
(``released-while-alive``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from tests.faults.history import AttachmentWrite, ElectionWrite, History, LeaseWrite
from tests.faults.lifetimes import Life
from tests.faults.verdict import Anomaly

Address = tuple[str, str]
"""(subnet, ip)."""
Event = LeaseWrite | AttachmentWrite | ElectionWrite


@dataclass
class StoreState:
    leases: dict[Address, LeaseWrite] = field(default_factory=dict)
    attachments: dict[tuple[str, str], AttachmentWrite] = field(default_factory=dict)
    holders: dict[Address, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    elections: dict[str, int] = field(default_factory=dict)

    def apply(self, event: Event) -> list[Address]:
        """Apply one event; returns the addresses it touched."""
        if isinstance(event, ElectionWrite):
            if event.create_revision:
                self.elections[event.key] = event.create_revision
            else:
                self.elections.pop(event.key, None)
            return []
        if isinstance(event, LeaseWrite):
            address = (event.subnet, event.ip)
            if event.uid is None:
                self.leases.pop(address, None)
            else:
                self.leases[address] = event
            return [address]
        ref = (event.pod, event.provider)
        old = self.attachments.pop(ref, None)
        touched = [(old.subnet, ip) for ip in old.ips] if old is not None else []
        for address in touched:
            self.holders[address].discard(ref)
        if event.uid is not None:
            self.attachments[ref] = event
            for ip in event.ips:
                self.holders[(event.subnet, ip)].add(ref)
                touched.append((event.subnet, ip))
        return touched


def _events(history: History) -> list[Event]:
    events: list[Event] = [*history.elections, *history.leases, *history.attachments]
    return sorted(events, key=lambda e: e.revision)


def replay(history: History, pods: Mapping[str, Life]) -> Iterator[Anomaly]:
    state = StoreState()
    reported: set[tuple[str, Address]] = set()
    for revision, group in groupby(_events(history), key=lambda e: e.revision):
        events = list(group)
        leader = min(state.elections.values(), default=None)
        touched: set[Address] = set()
        for event in events:
            if isinstance(event, LeaseWrite):
                yield from _fenced(event, state.elections, leader)
                yield from _left_alive(event, pods)
            touched.update(state.apply(event))
        at = max(e.at for e in events)
        for address in sorted(touched):
            for kind, detail in _inconsistent(state, address):
                if (kind, address) not in reported:
                    reported.add((kind, address))
                    yield Anomaly(kind, at, f"revision {revision}: {detail}")


def _fenced(
    write: LeaseWrite, elections: Mapping[str, int], leader: int | None
) -> Iterator[Anomaly]:
    if write.uid is None:
        return  # deletions carry no record, hence no fence to check
    if write.fence not in elections.values():
        why = "its election key was gone"
    elif write.fence != leader:
        why = f"an older candidate (fence {leader}) still led"
    else:
        return
    yield Anomaly(
        "unfenced-write",
        write.at,
        f"revision {write.revision}: lease {write.subnet} {write.ip} for {write.pod} written "
        f"with fence {write.fence}, but {why}",
    )


def _left_alive(write: LeaseWrite, pods: Mapping[str, Life]) -> Iterator[Anomaly]:
    owner = write.previous_uid
    if owner is None or owner == write.uid:
        return
    life = pods.get(owner)
    if life is None or write.at >= life.gone_after:
        return
    what = "released" if write.uid is None else f"given to uid {write.uid}"
    gone = "it was never deleted" if life.deleted_seen is None else "before it could be gone"
    yield Anomaly(
        "released-while-alive",
        write.at,
        f"revision {write.revision}: lease {write.subnet} {write.ip} of live pod {life.key} "
        f"uid {owner} {what} ({gone})",
    )


def _inconsistent(state: StoreState, address: Address) -> Iterator[tuple[str, str]]:
    holders = state.holders.get(address, set())
    lease = state.leases.get(address)
    subnet, ip = address
    if len(holders) > 1:
        yield "duplicate-address", f"{subnet} {ip} held by {sorted('/'.join(h) for h in holders)}"
    if lease is not None and not holders:
        yield "records-disagree", f"lease {subnet} {ip} ({lease.uid}) without an attachment"
    for ref in holders:
        holder = state.attachments[ref]
        if lease is None:
            yield "records-disagree", f"{'/'.join(ref)} holds {subnet} {ip} without its lease"
        elif lease.uid != holder.uid:
            yield (
                "records-disagree",
                f"lease {subnet} {ip} owned by {lease.uid}, attachment {'/'.join(ref)} "
                f"by {holder.uid}",
            )
