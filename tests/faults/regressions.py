"""Seeds that once exposed a defect, kept as regression cases (issue 9: every bug found).

Each names the fault that exposed the defect and what the checker saw;
``make chaos-regressions`` replays each seed with only those faults (same
workload sequence, same fault parameters; timings on a real machine vary,
so a seed makes the bug likely, not certain, and the CI schedule runs every
fault anyway). Each defect is also pinned by a deterministic test in the
tier where it lives.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regression:
    seed: int
    faults: tuple[str, ...]
    caught: str
    """The defect, as the checker reported it, and where it was fixed."""
    mode: str = "alone"
    """``mixed`` for a defect that needed faults to overlap (replayed for 300 s)."""


REGRESSIONS: tuple[Regression, ...] = (
    Regression(
        4,
        ("apiserver-resets",),
        "released-while-alive: a watch broken by a RST resumed from the list's old "
        "resourceVersion and replayed a pod's earlier incarnations, so the leader tombstoned "
        "the live UID and freed its lease again and again (issue 8 item 8; fixed in 3c89aef)",
    ),
    Regression(
        11,
        ("partition-apiserver",),
        "not-allocated (162 s late) and probe-failed: the leader's black-holed watches stayed "
        "silent until the 330 s read timeout, so no new pod was allocated (issue 9; fixed in "
        "3c89aef: a silent watch is noticed within 55 s)",
    ),
    Regression(
        11,
        ("controller-blackhole",),
        "released-while-alive: a replica blinded by the black hole took over with a stale "
        "cache and re-allocated for a deleted UID, replacing the live successor's attachment "
        "(issue 8 item 9; fixed in e02b607)",
    ),
    Regression(
        11,
        ("partition-etcd",),
        "process-exited: a replica cut off from etcd crashed on Unavailable (DEADLINE_EXCEEDED) "
        "while loading the attachment index at takeover (issue 8 item 5; fixed in e02b607)",
    ),
    Regression(
        32,
        ("apiserver-resets", "apiserver-restart"),
        "audit ip_objects_disagree: a release committed in etcd, then the IP object's DELETE "
        "failed on a reset connection, and the retry found the index entry already dropped: "
        "the IP object outlived its pod for good (first seen with seed 21, mixed; pinned in "
        "tests/controller/test_controller_release.py)",
    ),
    Regression(
        2026,
        ("apiserver-resets", "leader-kill"),
        "audit ip_objects_disagree: as seed 32, but leadership moved before the retry, and the "
        "new leader had no index entry to bring it back: the IP object outlived its pod (found "
        "in a mixed run of every fault; fixed in e474aa8: the GC deletes an IP object nicpool "
        "wrote that no attachment shows, after the grace)",
        mode="mixed",
    ),
)
