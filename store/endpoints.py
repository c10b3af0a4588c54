"""The HTTP endpoints every nicpool process serves: ``/metrics``, ``/healthz``, ``/readyz``.

Shared process plumbing (like :mod:`store.config` and the retry metrics),
used by the controller and the node agent alike, so both answer each path
for itself (prometheus_client's own server answers every path with the
metrics page, which made probes meaningless):

* ``/metrics``: the Prometheus text format;
* ``/healthz`` (liveness): 200 while the process serves HTTP;
* ``/readyz`` (readiness): what the process's ``ready`` callable says, 200
  or 503, with the reason in the body;
* anything else: 404.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Readiness = Callable[[], tuple[bool, str]]
"""``(ready, why)``; ``why`` is the body of ``/readyz``."""


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def parse_address(value: str, default_port: int) -> tuple[str, int]:
    """``:10666`` -> ("0.0.0.0", 10666), ``[::1]:9`` -> ("::1", 9); SystemExit when malformed."""
    host, _, port = value.rpartition(":")
    if port and not port.isdigit():
        raise SystemExit(f"metrics address {value!r}: expected host:port")
    return host.strip("[]") or "0.0.0.0", int(port or default_port)


class ProbeServer:
    """The three endpoints on ``(host, port)``, served on a daemon thread."""

    def __init__(self, address: tuple[str, int], *, ready: Readiness) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._answer(200, b"ok\n", "text/plain")
                elif path == "/readyz":
                    ok, why = ready()
                    self._answer(200 if ok else 503, f"{why}\n".encode(), "text/plain")
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
            # A short poll: ``stop`` waits for the loop to notice.
            target=lambda: self.server.serve_forever(poll_interval=0.05),
            name="probes",
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
