"""Pure: a fault run's history in, the anomalies it shows out. No I/O, no clock.

The invariants (DESIGN.md "Allocation semantics" and "Owners", issue 9):

``duplicate-address``
    at some etcd revision two attachments hold one address of a subnet;
``records-disagree``
    at some revision a lease and the attachments holding its address
    disagree (one without the other, or another owner): the store's own
    indexes, which every transaction writes together, came apart;
``unfenced-write``
    a lease was written by a replica that was not the leader at that
    revision (its election key gone, or not the oldest): a deposed leader
    wrote;
``released-while-alive``
    a pod's lease was deleted or given to another UID while the pod still
    lived (before anything the test did could have ended it);
``annotation-changed`` / ``annotation-unbacked``
    a pod's ``ip_address`` changed after ``allocated: "true"``, or names
    addresses no attachment of that pod UID ever held;
``not-allocated``
    a pod was not allocated for every NIC within ``bound`` seconds of
    fault-free time after it appeared;
``cni-unbacked`` / ``address-shared`` / ``cni-not-served``
    a CNI ADD returned addresses the pod's attachment never held; two live
    pods were given one address; a pod's ADD never succeeded within
    ``bound`` fault-free seconds;
``process-exited``
    a nicpool or server process exited without the test killing it;
``probe-failed``
    an end-of-run check failed (e.g. a replica could not take over);
``orphan`` / ``missing-attachment`` / ``audit``
    after the quiet period: an attachment without a live owner (StatefulSet
    retention aside), a live pod without its attachment, a finding of
    ``nicpoolctl audit``.

The etcd side is replayed in revision order: events of one revision (one
transaction) are applied together, then checked.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping

from tests.faults.history import AttachmentWrite, History
from tests.faults.lifetimes import ALLOCATED, IP_ADDRESS, Calm, Life, lives
from tests.faults.store_replay import replay
from tests.faults.verdict import Anomaly, Settings, Verdict


def check(history: History, settings: Settings | None = None) -> Verdict:
    settings = settings or Settings()
    pods = lives(history, slack=settings.slack)
    held = attachment_index(history.attachments)
    calm = Calm(history.faults)
    horizon = history.final.at if history.final is not None else history.ended
    found = [
        *replay(history, pods),
        *pod_annotations(history, held),
        *allocation(pods, calm, settings.bound, horizon),
        *cni(history, pods=pods, held=held, calm=calm, bound=settings.bound, horizon=horizon),
        *exits_and_probes(history),
        *final(history, pods),
    ]
    found.sort(key=lambda a: a.at)
    return Verdict(tuple(found), history.operations(), len(pods), len(history.faults))


Held = Mapping[tuple[str, str, str], set[frozenset[str]]]


def attachment_index(writes: list[AttachmentWrite]) -> Held:
    """(pod, provider, uid) -> every address set an attachment of that UID ever held."""
    held: dict[tuple[str, str, str], set[frozenset[str]]] = defaultdict(set)
    for write in writes:
        if write.uid is not None:
            held[(write.pod, write.provider, write.uid)].add(frozenset(write.ips))
    return held


def _addresses(csv: str) -> frozenset[str]:
    return frozenset(a.strip() for a in csv.split(",") if a.strip())


def pod_annotations(history: History, held: Held) -> Iterator[Anomaly]:
    first: dict[tuple[str, str], str] = {}
    for seen in history.pods:
        if seen.kind == "DELETED":
            continue
        for provider, ips in _announced(seen.annotations):
            was = first.get((seen.uid, provider))
            if was is None:
                first[(seen.uid, provider)] = ips
                if _addresses(ips) not in held.get((seen.key, provider, seen.uid), ()):
                    yield Anomaly(
                        "annotation-unbacked",
                        seen.at,
                        f"pod {seen.key} uid {seen.uid}: {provider} ip_address {ips} was never "
                        "leased to it in etcd",
                    )
            elif was != ips:
                yield Anomaly(
                    "annotation-changed",
                    seen.at,
                    f"pod {seen.key} uid {seen.uid}: {provider} ip_address {was} -> {ips}",
                )


def _announced(annotations: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(provider, ip_address) for every provider the pod is marked allocated for."""
    for key, value in annotations.items():
        if key.endswith(f".{ALLOCATED}") and value == "true":
            provider = key[: -len(f".{ALLOCATED}")]
            yield provider, annotations.get(f"{provider}.{IP_ADDRESS}", "")


def allocation(
    pods: Mapping[str, Life], calm: Calm, bound: float, horizon: float
) -> Iterator[Anomaly]:
    for life in pods.values():
        if not life.expect:
            continue
        deadline = calm.deadline(life.first_seen, bound)
        if deadline > horizon or life.gone_after <= deadline:
            continue  # not enough calm observed, or the pod may be gone by then
        if life.allocated_at is None or life.allocated_at > deadline:
            late = (
                "never"
                if life.allocated_at is None
                else f"{life.allocated_at - deadline:.0f} s late"
            )
            yield Anomaly(
                "not-allocated",
                deadline,
                f"pod {life.key} uid {life.uid} ({', '.join(life.expect)}) not allocated within "
                f"{bound:.0f} fault-free seconds ({late})",
            )


def _life_at(pods: Mapping[str, Life], key: str, at: float) -> Life | None:
    """The pod named ``key`` an ADD without a UID was for: the one living then, else the next.

    (An ADD can start before its pod exists: the fault tier does that to make
    the agent wait.)
    """
    named = sorted(
        (life for life in pods.values() if life.key == key), key=lambda one: one.first_seen
    )
    living = [life for life in named if life.first_seen <= at]
    return living[-1] if living else next(iter(named), None)


def cni(
    history: History,
    *,
    pods: Mapping[str, Life],
    held: Held,
    calm: Calm,
    bound: float,
    horizon: float,
) -> Iterator[Anomaly]:
    holders: dict[str, list[tuple[float, float, str, str]]] = defaultdict(list)
    attempts: dict[tuple[str, str], list[float]] = defaultdict(list)
    served: set[tuple[str, str]] = set()
    for add in history.cni:
        key = f"{add.namespace}/{add.pod}"
        life = pods.get(add.uid) if add.uid else _life_at(pods, key, add.at)
        uid = add.uid or (life.uid if life is not None else "")
        attempts[(uid or key, add.ifname)].append(add.at)
        if not add.ok:
            continue
        served.add((uid or key, add.ifname))
        if frozenset(add.ips) not in held.get((key, add.provider, uid), ()):
            yield Anomaly(
                "cni-unbacked",
                add.at,
                f"ADD for {key} uid {uid} {add.ifname} on {add.node} returned {add.ips}, "
                "never leased to it",
            )
        end = life.gone_after if life is not None else math.inf
        for ip in add.ips:
            holders[ip].append((add.at, end, uid, key))
    yield from _shared(holders)
    for (who, ifname), times in attempts.items():
        life = pods.get(who)
        deadline = calm.deadline(min(times), bound)
        if (who, ifname) in served or deadline > horizon:
            continue
        if life is not None and life.gone_after > deadline:  # an unseen pod: not judged
            yield Anomaly(
                "cni-not-served",
                deadline,
                f"no CNI ADD for {who} {ifname} succeeded in {len(times)} attempts",
            )


def _shared(holders: Mapping[str, list[tuple[float, float, str, str]]]) -> Iterator[Anomaly]:
    for ip, unsorted in holders.items():
        spans = sorted(unsorted)
        for n, (_, end, uid, key) in enumerate(spans):
            for other_start, _, other_uid, other_key in spans[n + 1 :]:
                if other_uid != uid and other_start < end:
                    yield Anomaly(
                        "address-shared",
                        other_start,
                        f"{ip} given by CNI to {key} uid {uid} and, while it lived, "
                        f"to {other_key} uid {other_uid}",
                    )


def exits_and_probes(history: History) -> Iterator[Anomaly]:
    for gone in history.exits:
        if not gone.expected:
            yield Anomaly(
                "process-exited",
                gone.at,
                f"{gone.process} exited with {gone.code} though nothing killed it; "
                f"log tail: {gone.log_tail[-800:]}",
            )
    for probe in history.probes:
        if not probe.ok:
            yield Anomaly("probe-failed", history.ended, f"{probe.name}: {probe.detail}")


def final(history: History, pods: Mapping[str, Life]) -> Iterator[Anomaly]:
    end = history.final
    if end is None:
        return
    for att in end.attachments:
        if att.uid in end.pods:
            continue
        sts = end.statefulsets.get(f"{att.pod.split('/')[0]}/{att.workload_name}")
        ordinal = att.pod.rsplit("-", 1)[-1]
        retained = (
            att.workload_kind == "StatefulSet"
            and sts is not None
            and sts[0] == att.workload_uid
            and ordinal.isdigit()
            and int(ordinal) < sts[1]
        )
        if not retained:
            yield Anomaly(
                "orphan", end.at, f"{att.pod} {att.provider} uid {att.uid}: no live owner"
            )
    have = {(a.uid, a.provider) for a in end.attachments}
    for uid, key in end.pods.items():
        life = pods.get(uid)
        for provider in life.expect if life is not None else ():
            if (uid, provider) not in have:
                yield Anomaly("missing-attachment", end.at, f"{key} uid {uid}: none for {provider}")
    if end.audit is None:
        yield Anomaly("audit", end.at, "nicpoolctl audit did not run")
        return
    for kind, findings in end.audit.items():
        if isinstance(findings, list) and findings:
            yield Anomaly("audit", end.at, f"{kind}: {findings[:5]}")


__all__ = ["Anomaly", "Settings", "Verdict", "check"]
