"""The controller's Prometheus metrics and its /metrics, /healthz, /readyz server.

Names are fixed (dashboards are written against them).
``nicpool_retries_total`` is the store's (``store.retry``), shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from reconciler.core.errors import NAD_REFUSALS, refusal_reasons
from store.retry import RETRIES, STORE_OPERATIONS

SUBNET_ADDRESSES = Gauge(
    "nicpool_subnet_addresses",
    "Addresses per subnet and family, by state (total, used, available, excluded).",
    ["subnet", "family", "state"],
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
    "LEADER",
    "LEADER_CHANGES",
    "NAD_ERRORS",
    "QUEUE_DEPTH",
    "RETRIES",
    "RETRY_OPERATIONS",
    "SUBNET_ADDRESSES",
    "SYNC_RETRIES",
    "WORKER_ERRORS",
    "WORKFLOW_RESUMES",
    "MetricsServer",
    "publish_zeroes",
]


class MetricsServer:
    """``/metrics`` (Prometheus), ``/healthz`` (process alive), ``/readyz`` (every loop working:
    informers synced and recently heard from, workers and the leadership loop alive)."""

    def __init__(self, address: str, *, ready: Callable[[], bool]) -> None:
        host, _, port = address.rpartition(":")
        ready_check = ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    self._answer(200, b"ok\n", "text/plain")
                elif self.path.startswith("/readyz"):
                    ok = ready_check()
                    self._answer(
                        200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain"
                    )
                else:
                    self._answer(404, b"not found\n", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer((host.strip("[]"), int(port or 10665)), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll: ``stop`` waits for the loop to notice (0.5 s by default).
            target=lambda: self.server.serve_forever(poll_interval=0.05),
            name="metrics",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
