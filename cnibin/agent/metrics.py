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
