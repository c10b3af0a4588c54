"""The agent's Prometheus metrics (names are part of the operator contract)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "nicpool_cni_request_seconds",
    "Time the agent took to answer a plugin request, by verb (add, del, gc, status).",
    ["verb"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
)
WAIT_SECONDS = Histogram(
    "nicpool_cni_wait_seconds",
    "Time ADD spent reading or waiting for the lease in etcd.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20),
)
ERRORS = Counter(
    "nicpool_cni_errors_total",
    "Plugin requests answered with an error, by reason.",
    ["reason"],
)
UNKNOWN_ATTACHMENTS = Counter(
    "nicpool_cni_unknown_attachments_total",
    "Attachments this agent served that a CNI GC no longer listed as valid.",
)

VERBS = ("add", "del", "gc", "status", "other")
REASONS = (
    "BadRequest",
    "NotFound",
    "Internal",
    "ClientGone",
    "EtcdUnavailable",
    "UnreadableRecord",
    "NoLease",
    "LeaseTimeout",
    "UidMismatch",
    "BridgeNotAllowed",
)


def publish_zeroes() -> None:
    """Export every known label at 0 from the start.

    A labelled series appears on its first increment, so ``rate()`` and
    ``increase()`` would never see that first error; with the series already
    at 0 they do.
    """
    for verb in VERBS:
        REQUEST_SECONDS.labels(verb=verb)
    for reason in REASONS:
        ERRORS.labels(reason=reason)
