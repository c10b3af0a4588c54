"""What a fault run records, as plain values: the checker's only input.

Three recorders and the run itself append to one :class:`History`:

* the etcd watch (every lease, attachment and election key written under
  nicpool's prefix, with its revision; deletions carry the previous owner);
* the apiserver watch (every version of every pod of the run's namespace,
  with the annotations nicpool writes; a relist after a gap reports pods
  that vanished meanwhile as deleted);
* the workload, the CNI runner and the nemesis (what the test did: pod
  deletions and scale-downs it asked for, CNI ADD results, fault windows,
  processes that exited).

Times (``at``) are seconds since the epoch, all read from one clock in the
test process, so "observed before" means the same thing for every source.
An observation is an upper bound on when its event happened; an ``Intent``
is a lower bound on when a pod it names could have gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EXPECT = "faults.nicpool.test/expect"
"""Pod annotation: the providers the pod must be allocated for, comma separated."""
WORKLOAD = "faults.nicpool.test/workload"
"""Pod label: ``Kind/name`` of the workload that made it (absent for bare pods)."""


@dataclass(frozen=True)
class LeaseWrite:
    """A lease key (``subnets/<subnet>/leases/<ip>``) written or deleted."""

    revision: int
    at: float
    subnet: str
    ip: str
    uid: str | None
    """The owner after the write; None when the lease was deleted (released)."""
    previous_uid: str | None
    """The owner before the write; None when the key did not exist."""
    pod: str = ""
    """``ns/name`` of the owner (after a put, before a delete)."""
    provider: str = ""
    fence: int = 0
    """The writer's fencing revision, from the record (puts only)."""


@dataclass(frozen=True)
class AttachmentWrite:
    """An attachment key (``attachments/<ns>/<pod>/<provider>``) written or deleted."""

    revision: int
    at: float
    pod: str
    provider: str
    uid: str | None
    """None when deleted."""
    subnet: str = ""
    ips: tuple[str, ...] = ()
    fence: int = 0


@dataclass(frozen=True)
class ElectionWrite:
    """An election key created (``create_revision`` > 0) or deleted (0)."""

    revision: int
    at: float
    key: str
    create_revision: int


@dataclass(frozen=True)
class PodSeen:
    """One version of a pod as the apiserver watch delivered it."""

    at: float
    kind: str
    """``ADDED``, ``MODIFIED`` or ``DELETED`` (also for a pod gone from a relist)."""
    namespace: str
    name: str
    uid: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    workload: str | None = None
    expect: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Intent:
    """Something the workload asked for that can end pods (a lower bound on their end)."""

    at: float
    action: str
    """``delete-pod`` (target: pod name), ``scale-down`` or ``delete-workload`` (``Kind/name``)."""
    namespace: str
    target: str
    uid: str | None = None
    """For ``delete-pod``: the UID the delete was preconditioned on (only that pod can go)."""


@dataclass(frozen=True)
class CniAdd:
    """One CNI ADD through the real plugins, as the runtime saw it return."""

    at: float
    node: str
    namespace: str
    pod: str
    uid: str | None
    provider: str
    ifname: str
    ok: bool
    ips: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class FaultWindow:
    name: str
    start: float
    end: float
    """When the fault was healed (the process restarted, the proxy cleared, ...)."""
    detail: str = ""


@dataclass(frozen=True)
class ProcessExit:
    at: float
    process: str
    code: int
    expected: bool
    """True when the test killed or stopped it."""
    log_tail: str = ""


@dataclass(frozen=True)
class Probe:
    """An end-of-run check done with I/O (e.g. "each replica can take over"), as a value."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class FinalAttachment:
    pod: str
    provider: str
    uid: str
    workload_kind: str = ""
    workload_name: str = ""
    workload_uid: str = ""


@dataclass(frozen=True)
class FinalState:
    """The world after the quiet period: live pods, StatefulSets, the store, the audit."""

    at: float
    pods: Mapping[str, str]
    """Live pod UID -> ``ns/name``."""
    statefulsets: Mapping[str, tuple[str, int]]
    """``ns/name`` -> (uid, replicas)."""
    attachments: tuple[FinalAttachment, ...]
    audit: Mapping[str, Any] | None = None
    """``nicpoolctl audit --json`` as parsed; None when it could not run."""


@dataclass
class History:
    started: float = 0.0
    ended: float = 0.0
    leases: list[LeaseWrite] = field(default_factory=list)
    attachments: list[AttachmentWrite] = field(default_factory=list)
    elections: list[ElectionWrite] = field(default_factory=list)
    pods: list[PodSeen] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    cni: list[CniAdd] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)
    exits: list[ProcessExit] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    final: FinalState | None = None

    def operations(self) -> int:
        """Every recorded operation the checker looks at."""
        return sum(
            len(events)
            for events in (
                self.leases,
                self.attachments,
                self.elections,
                self.pods,
                self.intents,
                self.cni,
                self.exits,
                self.probes,
            )
        )
