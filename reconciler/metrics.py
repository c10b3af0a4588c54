"""The controller's Prometheus metrics (served with /healthz and /readyz by
``store.endpoints.ProbeServer``).

Names are fixed (dashboards are written against them).
``nicpool_retries_total`` is the store's (``store.retry``), shared.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from reconciler.core.errors import NAD_REFUSALS, refusal_reasons
from store.retry import RETRIES, STORE_OPERATIONS

SUBNET_ADDRESSES = Gauge(
    "nicpool_subnet_addresses",
    "Addresses per subnet and family, by state (total, used, available, excluded).",
    ["subnet", "family", "state"],
)
IPPOOL_ADDRESSES = Gauge(
    "nicpool_ippool_addresses",
    "Addresses per IPPool and family, by state (total, used, available).",
    ["ippool", "subnet", "family", "state"],
)
ALLOCATION_SECONDS = Histogram(
    "nicpool_allocation_seconds",
    "From the controller first seeing a pod to its annotations being written.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ALLOCATION_ERRORS = Counter(
    "nicpool_allocation_errors_total", "Pods refused, by reason (the Event reason).", ["reason"]
)
QUEUE_DEPTH = Gauge("nicpool_queue_depth", "Pods waiting in the work queue.")
LEADER = Gauge("nicpool_leader", "1 while this replica leads, else 0.")
LEADER_CHANGES = Counter(
    "nicpool_leader_changes_total", "Times this replica became leader or stopped leading."
)
WORKFLOW_RESUMES = Counter(
    "nicpool_workflow_resumes_total",
    "Pods whose leases existed but whose annotations were not yet written (finished here).",
)
SYNC_RETRIES = Counter(
    "nicpool_sync_retries_total",
    "Work items retried after a temporary failure, by reason (EtcdUnavailable, "
    "ApiServerUnavailable, IndexLoading, CacheBehind, ...).",
    ["reason"],
)
WORKER_ERRORS = Counter(
    "nicpool_worker_errors_total",
    "Unexpected failures a worker survived (a bug: see the log); the worker goes on.",
)
STUCK_PODS = Gauge(
    "nicpool_stuck_pods",
    "Pods whose deletion is stuck on a node NotReady beyond --node-not-ready-grace and "
    "that still hold addresses (leader only).",
)
STUCK_POD_RELEASES = Counter(
    "nicpool_stuck_pod_releases_total",
    "Pod NICs released because their pod was stuck on a NotReady node (--release-stuck-pods).",
)
NAD_ERRORS = Counter(
    "nicpool_nad_errors_total", "NetworkAttachmentDefinition problems, by reason.", ["reason"]
)

ANNOTATE_POD = "annotate_pod"
"""The controller's own retried operation (the pod annotation patch)."""
RETRY_OPERATIONS = (*STORE_OPERATIONS, ANNOTATE_POD)
"""``nicpool_retries_total{operation}`` values: the store's policies (``store.leases``,
``store.subnets``) and the controller's."""


def publish_zeroes() -> None:
    """Export every known label value at 0 from the start.

    A labelled series appears on its first increment, so ``rate()`` and
    ``increase()`` would never see that first error; with the series already
    at 0 they do.
    """
    for reason in refusal_reasons():
        ALLOCATION_ERRORS.labels(reason)
    for error in NAD_REFUSALS:
        NAD_ERRORS.labels(error.reason)
    for operation in RETRY_OPERATIONS:
        RETRIES.labels(operation)


__all__ = [
    "ALLOCATION_ERRORS",
    "ALLOCATION_SECONDS",
    "ANNOTATE_POD",
    "IPPOOL_ADDRESSES",
    "LEADER",
    "LEADER_CHANGES",
    "NAD_ERRORS",
    "QUEUE_DEPTH",
    "RETRIES",
    "RETRY_OPERATIONS",
    "STUCK_PODS",
    "STUCK_POD_RELEASES",
    "SUBNET_ADDRESSES",
    "SYNC_RETRIES",
    "WORKER_ERRORS",
    "WORKFLOW_RESUMES",
    "publish_zeroes",
]
