"""Who owns a pod, a StatefulSet pod's ordinal, and whether its addresses outlive it.

Release rules (DESIGN.md): addresses are freed when the pod is deleted,
except that a StatefulSet pod keeps its addresses for its successor until
the StatefulSet is deleted (or being deleted), its UID changes (deleted and
recreated under the same name), or the pod's ordinal falls outside
``replicas`` (scaled down). Decisions are pure; the controller feeds them
what its caches say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from store.core.records import WorkloadRef

STATEFULSET = "StatefulSet"
DEPLOYMENT = "Deployment"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def statefulset_ordinal(pod_name: str, labels: Mapping[str, str] | None = None) -> int | None:
    """The pod's ordinal: the pod-index label (Kubernetes >= 1.28), else the name's suffix."""
    label = (labels or {}).get(POD_INDEX_LABEL)
    if label is not None and label.isdigit():
        return int(label)
    _, sep, suffix = pod_name.rpartition("-")
    if sep and suffix.isdigit():
        return int(suffix)
    return None


@dataclass(frozen=True)
class StatefulSetState:
    """What the controller's cache says about a StatefulSet now."""

    uid: str
    replicas: int
    deleting: bool = False


class Retention(Enum):
    KEEP = "keep"
    RELEASE = "release"


@dataclass(frozen=True)
class RetentionDecision:
    verdict: Retention
    why: str

    @property
    def keep(self) -> bool:
        return self.verdict is Retention.KEEP


def retention_on_pod_deletion(
    workload: WorkloadRef | None, ordinal: int | None, current: StatefulSetState | None
) -> RetentionDecision:
    """Whether a deleted pod's addresses are kept for its successor."""
    if workload is None or workload.kind != STATEFULSET:
        return RetentionDecision(Retention.RELEASE, "not a StatefulSet pod")
    if current is None:
        return RetentionDecision(Retention.RELEASE, f"StatefulSet {workload.name} is gone")
    if current.deleting:
        return RetentionDecision(Retention.RELEASE, f"StatefulSet {workload.name} is being deleted")
    if current.uid != workload.uid:
        return RetentionDecision(
            Retention.RELEASE, f"StatefulSet {workload.name} was recreated (UID changed)"
        )
    if ordinal is None:
        return RetentionDecision(Retention.RELEASE, "pod name carries no ordinal")
    if ordinal >= current.replicas:
        return RetentionDecision(
            Retention.RELEASE,
            f"ordinal {ordinal} is outside replicas={current.replicas} (scaled down)",
        )
    return RetentionDecision(Retention.KEEP, f"StatefulSet {workload.name} keeps ordinal {ordinal}")
