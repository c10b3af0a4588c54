"""The checker, on hand-made histories: each broken promise must be found, a clean run passes.

A checker that finds nothing proves nothing, so most cases here are
histories that must FAIL, each shaped like a real defect: a live pod's lease
freed by a replayed watch (issue 8, item 8), a controller blind after a
silent watch (no allocation for minutes), a deposed leader writing, a
replica that crashed, an address handed to two pods.
"""

from __future__ import annotations

import math

import pytest

from tests.faults.checker import check
from tests.faults.history import (
    AttachmentWrite,
    CniAdd,
    ElectionWrite,
    FaultWindow,
    FinalAttachment,
    FinalState,
    History,
    Intent,
    LeaseWrite,
    PodSeen,
    Probe,
    ProcessExit,
)
from tests.faults.lifetimes import Calm
from tests.faults.verdict import Settings

pytestmark = pytest.mark.unit

NS, P, SUBNET = "ns", "net-a.ns", "sa"
CLEAN_AUDIT = {"ok": True, "duplicates": [], "orphans": []}


class Run:
    """A small history builder: one leader (fence 1), pods allocated one address each."""

    def __init__(self) -> None:
        self.h = History(started=0.0, ended=1000.0)
        self.revision = 1
        self.h.elections.append(ElectionWrite(1, 0.0, "/p/election/a", 1))

    def rev(self) -> int:
        self.revision += 1
        return self.revision

    def pod(self, name: str, uid: str, at: float, *, workload: str | None = None) -> Run:
        self.h.pods.append(PodSeen(at, "ADDED", NS, name, uid, {}, workload, (P,)))
        return self

    def lease(self, name: str, uid: str, ip: str, at: float, *, fence: int = 1) -> Run:
        """The controller's transaction: lease and attachment at one revision."""
        revision = self.rev()
        prev = self.owner(ip)
        self.h.leases.append(
            LeaseWrite(revision, at, SUBNET, ip, uid, prev, f"{NS}/{name}", P, fence)
        )
        self.h.attachments.append(
            AttachmentWrite(revision, at, f"{NS}/{name}", P, uid, SUBNET, (ip,), fence)
        )
        return self

    def release(self, name: str, ip: str, at: float) -> Run:
        revision = self.rev()
        prev = self.owner(ip)
        self.h.leases.append(LeaseWrite(revision, at, SUBNET, ip, None, prev, f"{NS}/{name}", P))
        self.h.attachments.append(AttachmentWrite(revision, at, f"{NS}/{name}", P, None))
        return self

    def owner(self, ip: str) -> str | None:
        found = [w for w in self.h.leases if w.ip == ip]
        return found[-1].uid if found else None

    def annotate(self, name: str, uid: str, ip: str, at: float) -> Run:
        notes = {f"{P}.kubernetes.io/allocated": "true", f"{P}.kubernetes.io/ip_address": ip}
        self.h.pods.append(PodSeen(at, "MODIFIED", NS, name, uid, notes, None, (P,)))
        return self

    def delete(self, name: str, uid: str, at: float, *, asked: bool = True) -> Run:
        if asked:
            self.h.intents.append(Intent(at, "delete-pod", NS, name, uid))
        self.h.pods.append(PodSeen(at + 0.5, "DELETED", NS, name, uid, {}, None, (P,)))
        return self

    def allocated_pod(self, name: str, uid: str, ip: str, at: float) -> Run:
        return (
            self.pod(name, uid, at).lease(name, uid, ip, at + 0.1).annotate(name, uid, ip, at + 0.2)
        )

    def finish(self, pods: dict[str, str], attachments: list[tuple[str, str]]) -> History:
        self.h.final = FinalState(
            at=self.h.ended,
            pods=pods,
            statefulsets={},
            attachments=tuple(FinalAttachment(f"{NS}/{n}", P, u) for n, u in attachments),
            audit=CLEAN_AUDIT,
        )
        return self.h


def kinds(history: History, bound: float = 30.0) -> set[str]:
    return check(history, Settings(bound=bound)).kinds()


def test_a_clean_run_passes_and_counts_what_it_checked() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).allocated_pod("b", "u2", "10.0.0.3", 11)
    run.delete("a", "u1", 50).release("a", "10.0.0.2", 51).allocated_pod("c", "u3", "10.0.0.2", 60)
    run.h.cni.append(CniAdd(12, "n1", NS, "b", "u2", P, "net1", True, ("10.0.0.3",)))
    verdict = check(run.finish({"u2": "ns/b", "u3": "ns/c"}, [("b", "u2"), ("c", "u3")]))
    assert verdict.ok, verdict.anomalies
    assert verdict.pods == 3 and verdict.operations == 18  # 4+4 writes, 1+7 pod, 1 intent, 1 ADD


def test_a_live_pods_lease_freed_by_a_replayed_watch_is_found() -> None:
    """Issue 8 item 8: pod recreated under its name, an old event replayed, the new lease freed."""
    run = Run().allocated_pod("p", "u1", "10.0.0.2", 10)
    run.delete("p", "u1", 20).release("p", "10.0.0.2", 21)
    run.allocated_pod("p", "u2", "10.0.0.3", 22)
    run.release("p", "10.0.0.3", 40)  # the replay: nobody deleted u2
    assert "released-while-alive" in kinds(run.finish({"u2": "ns/p"}, []))


def test_a_lease_given_to_another_pod_while_its_owner_lives_is_found() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).allocated_pod("b", "u2", "10.0.0.2", 20)
    assert "released-while-alive" in kinds(run.h)


def test_a_release_after_the_delete_was_asked_for_is_fine() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).delete("a", "u1", 30)
    run.release("a", "10.0.0.2", 30.2)
    assert "released-while-alive" not in kinds(run.h)


@pytest.mark.parametrize(("seen_after", "found"), [(1.0, False), (10.0, True)])
def test_a_pod_nobody_asked_to_delete_may_go_only_just_before_the_watch_says(
    seen_after: float, found: bool
) -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).release("a", "10.0.0.2", 30)
    run.delete("a", "u1", 30 + seen_after - 0.5, asked=False)
    assert ("released-while-alive" in kinds(run.h)) is found


def test_a_scale_down_of_its_workload_may_end_a_pod_but_not_one_of_another() -> None:
    run = Run().pod("db-1", "u1", 10, workload="statefulset-db").lease("db-1", "u1", "10.0.0.2", 11)
    run.pod("web-1", "u2", 10, workload="deployment-web").lease("web-1", "u2", "10.0.0.3", 11)
    run.h.intents.append(Intent(30, "scale-down", NS, "statefulset-db"))
    run.release("db-1", "10.0.0.2", 31).release("web-1", "10.0.0.3", 31)
    found = [a for a in check(run.h).anomalies if a.kind == "released-while-alive"]
    assert len(found) == 1 and "web-1" in found[0].detail


def test_an_address_in_two_attachments_at_one_revision_is_found() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10)
    run.h.attachments.append(
        AttachmentWrite(run.rev(), 12, f"{NS}/b", P, "u2", SUBNET, ("10.0.0.2",), 1)
    )
    assert {"duplicate-address", "records-disagree"} <= kinds(run.h)


def test_a_lease_written_without_its_attachment_is_found() -> None:
    run = Run()
    run.h.leases.append(LeaseWrite(run.rev(), 5, SUBNET, "10.0.0.9", "u9", None, "ns/x", P, 1))
    assert kinds(run.h) == {"records-disagree"}


def test_a_deposed_leader_writing_is_found() -> None:
    run = Run()
    run.h.elections.append(ElectionWrite(run.rev(), 5, "/p/election/a", 0))  # lease lapsed
    run.h.elections.append(ElectionWrite(run.rev(), 6, "/p/election/b", run.revision))
    run.pod("a", "u1", 7).lease("a", "u1", "10.0.0.2", 8, fence=1)  # the paused one wakes
    assert "unfenced-write" in kinds(run.h)


def test_a_standby_writing_while_an_older_candidate_leads_is_found() -> None:
    run = Run()
    run.h.elections.append(ElectionWrite(run.rev(), 5, "/p/election/b", run.revision))
    run.pod("a", "u1", 7).lease("a", "u1", "10.0.0.2", 8, fence=run.revision)
    assert "unfenced-write" in kinds(run.h)


def test_an_annotation_that_changes_after_allocation_is_found() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).lease("a", "u1", "10.0.0.5", 20)
    run.annotate("a", "u1", "10.0.0.5", 21)
    assert "annotation-changed" in kinds(run.h)


def test_an_annotation_no_lease_ever_backed_is_found() -> None:
    run = (
        Run()
        .pod("a", "u1", 10)
        .lease("a", "u1", "10.0.0.2", 11)
        .annotate("a", "u1", "10.0.0.7", 12)
    )
    assert "annotation-unbacked" in kinds(run.h)


def test_a_controller_blind_after_a_silent_watch_is_found() -> None:
    """Issue 9: a black-holed watch noticed only at its 330 s read timeout."""
    run = Run()
    run.h.faults.append(FaultWindow("blackhole-apiserver", 100, 110))
    run.pod("late", "u1", 120).lease("late", "u1", "10.0.0.2", 440).annotate(
        "late", "u1", "10.0.0.2", 441
    )
    found = check(run.h, Settings(bound=90)).anomalies
    assert [a.kind for a in found] == ["not-allocated"] and "ns/late" in found[0].detail


def test_a_pod_created_during_a_fault_gets_its_bound_after_the_fault_heals() -> None:
    run = Run()
    run.h.faults.append(FaultWindow("quorum-lost", 100, 200))
    run.allocated_pod("p", "u1", "10.0.0.2", 105)
    run.h.pods[-1] = PodSeen(210, "MODIFIED", NS, "p", "u1", run.h.pods[-1].annotations, None, (P,))
    assert kinds(run.h, bound=30) == set()
    run.h.pods[-1] = PodSeen(240, "MODIFIED", NS, "p", "u1", run.h.pods[-1].annotations, None, (P,))
    assert kinds(run.h, bound=30) == {"not-allocated"}


def test_a_pod_deleted_before_its_deadline_is_excused() -> None:
    run = Run().pod("a", "u1", 10).delete("a", "u1", 20)
    assert kinds(run.h, bound=30) == set()


def test_cni_results_must_match_the_lease_and_never_share_an_address() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).allocated_pod("b", "u2", "10.0.0.3", 10)
    run.h.cni += [
        CniAdd(12, "n1", NS, "a", "u1", P, "net1", True, ("10.0.0.2",)),
        CniAdd(13, "n2", NS, "b", "u2", P, "net1", True, ("10.0.0.2",)),
    ]
    assert {"cni-unbacked", "address-shared"} <= kinds(run.h)


def test_an_add_that_never_succeeds_for_a_living_pod_is_found() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10)
    run.h.cni += [
        CniAdd(11 + n, "n1", NS, "a", "u1", P, "net1", False, error="11") for n in range(5)
    ]
    assert kinds(run.h, bound=30) == {"cni-not-served"}


def test_an_add_made_before_the_pod_existed_is_matched_to_the_pod_by_name() -> None:
    run = Run().allocated_pod("w", "u1", "10.0.0.2", 10)
    run.h.cni += [
        CniAdd(9, "n1", NS, "w", None, P, "net1", False, error="agent restarted"),
        CniAdd(11, "n1", NS, "w", None, P, "net1", True, ("10.0.0.2",)),
    ]
    assert kinds(run.h) == set()


def test_a_process_that_exits_on_its_own_is_found_and_a_killed_one_is_not() -> None:
    run = Run()
    run.h.exits += [
        ProcessExit(5, "replica-0", -9, expected=True),
        ProcessExit(6, "replica-1", 1, expected=False, log_tail="TemporaryError at takeover"),
    ]
    found = check(run.h).anomalies
    assert [a.kind for a in found] == ["process-exited"] and "replica-1" in found[0].detail


def test_a_failed_probe_is_an_anomaly() -> None:
    run = Run()
    run.h.probes += [Probe("replica-0 takes over", True), Probe("replica-2 takes over", False)]
    assert kinds(run.h) == {"probe-failed"}


def test_after_the_quiet_period_orphans_and_missing_attachments_are_found() -> None:
    run = Run().allocated_pod("a", "u1", "10.0.0.2", 10).allocated_pod("b", "u2", "10.0.0.3", 10)
    history = run.finish({"u2": "ns/b"}, [("a", "u1")])
    assert kinds(history) >= {"orphan", "missing-attachment"}


def test_statefulset_retention_is_not_an_orphan() -> None:
    run = Run()
    run.h.final = FinalState(
        at=100,
        pods={},
        statefulsets={"ns/db": ("sts-uid", 2)},
        attachments=(
            FinalAttachment("ns/db-1", P, "u1", "StatefulSet", "db", "sts-uid"),
            FinalAttachment("ns/db-2", P, "u2", "StatefulSet", "db", "sts-uid"),
        ),
        audit=CLEAN_AUDIT,
    )
    found = check(run.h).anomalies
    assert [a.kind for a in found] == ["orphan"] and "db-2" in found[0].detail


def test_audit_findings_are_anomalies() -> None:
    run = Run()
    history = run.finish({}, [])
    assert history.final is not None
    history.final = FinalState(0, {}, {}, (), {"ok": False, "leases_without_bits": [{"ip": "x"}]})
    assert kinds(history) == {"audit"}


@pytest.mark.parametrize(
    ("windows", "start", "deadline"),
    [
        ([], 10.0, 40.0),
        ([(20.0, 50.0)], 10.0, 70.0),
        ([(0.0, 15.0)], 10.0, 45.0),
        ([(20.0, 30.0), (35.0, 100.0)], 10.0, 115.0),
        ([(20.0, 30.0), (25.0, 40.0)], 10.0, 60.0),
    ],
)
def test_calm_time_skips_fault_windows(
    windows: list[tuple[float, float]], start: float, deadline: float
) -> None:
    calm = Calm(FaultWindow("f", s, e) for s, e in windows)
    assert math.isclose(calm.deadline(start, 30.0), deadline)
