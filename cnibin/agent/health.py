"""The agent's HTTP endpoint for Prometheus and kubelet: ``/metrics``, ``/healthz``, ``/readyz``.

prometheus_client's ``start_http_server`` answers every path with the
metrics page, so probes on ``/healthz`` and ``/readyz`` used to get 200
whatever the agent's state. This server answers each path for itself:

* ``/metrics``: the Prometheus text format;
* ``/healthz`` (liveness): 200 while the process serves HTTP. It does not
  look at etcd: restarting the agent would not bring etcd back, and kubelet
  would only kill an agent that answers the plugin with a clean 503;
* ``/readyz`` (readiness): 200 only while :class:`EtcdCheck`'s latest read
  succeeded and is recent, else 503 with the reason. The check is a cheap
  read of one key every :data:`CHECK_INTERVAL` seconds, on its own thread,
  so readiness follows etcd even when no CNI request arrives (the outcome of
  the last request alone would say nothing on a quiet node);
* anything else: 404.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0
"""Seconds between two etcd reads (each bounded by the client's request deadline)."""
STALE_AFTER = 3 * CHECK_INTERVAL
"""A success older than this (say, a read stuck past its deadline) is not ready."""


class EtcdCheck:
    """Reads etcd every ``interval`` s; :meth:`status` says whether the latest read worked."""

    def __init__(self, read: Callable[[], object], *, interval: float = CHECK_INTERVAL) -> None:
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self._ok_at: float | None = None
        self._error = "no etcd read yet"
        self._healthy: bool | None = None
        """The latest outcome, to log transitions only."""
        self._thread = threading.Thread(target=self._run, name="etcd-check", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> tuple[bool, str]:
        ok_at = self._ok_at
        if ok_at is not None and time.monotonic() - ok_at <= max(STALE_AFTER, 3 * self._interval):
            return True, "ok"
        return False, f"etcd: {self._error}"

    def check_once(self) -> None:
        try:
            self._read()
        except Exception as error:  # any failure means "not ready"; the reason is reported
            if self._healthy is not False:
                log.warning("not ready: etcd read failed: %s", error)
            self._healthy, self._ok_at = False, None
            self._error = str(error) or type(error).__name__
            return
        if self._healthy is not True:
            log.info("ready: etcd answers")
        self._healthy, self._ok_at = True, time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self._interval)


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``(host, port)``, served on a thread."""

    def __init__(self, address: tuple[str, int], check: EtcdCheck) -> None:
        self.check = check

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._answer(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok, reason = check.status()
                    self._answer(200 if ok else 503, f"{reason}\n".encode(), "text/plain")
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

        server_class = _IPv6Server if ":" in address[0] else ThreadingHTTPServer
        self.server = server_class(address, Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=lambda: self.server.serve_forever(poll_interval=0.2), name="health", daemon=True
        )

    def start(self) -> None:
        self.check.start()
        self._thread.start()

    def stop(self) -> None:
        self.check.stop()
        self.server.shutdown()
        self.server.server_close()
