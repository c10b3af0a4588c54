"""HTTP/1.1 on a unix socket, from the standard library (``http.server``).

One thread per connection (``ThreadingMixIn``): an ADD may wait up to the
lease-wait budget for the controller, and must not hold up other pods. The
handler only translates: body -> ``protocol`` parse -> ``AgentService`` ->
JSON, and counts each answer in the metrics. Nothing a client sends can
raise out of a handler: a malformed request is a 400 with the reason, and an
unexpected failure is a 500 that is logged and counted.

The socket is created with mode 0600 (umask during bind, so there is no
window where another user could connect) in a parent directory created if
missing; a stale socket file from a previous run is replaced.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import stat
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cnibin.agent import metrics
from cnibin.agent.protocol import (
    MAX_BODY,
    RequestError,
    error_body,
    parse_add_request,
    parse_valid_attachments,
)
from cnibin.agent.service import AgentService, Answer

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0


def _route(service: AgentService, verb: str, body: bytes) -> Answer:
    try:
        if verb == "add":
            return service.add(parse_add_request(body))
        if verb == "del":
            return service.delete(parse_add_request(body))
        return service.gc(parse_valid_attachments(body))
    except RequestError as exc:
        return Answer(400, error_body(str(exc)), "BadRequest")


POST_VERBS = {"/api/v1/add": "add", "/api/v1/del": "del", "/api/v1/gc": "gc"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # answer garbage with a status line, not HTTP/0.9
    server: AgentServer
    timeout = READ_TIMEOUT
    """Seconds a read may wait: a client that connects and stops talking is dropped
    instead of holding a thread forever. The lease wait is not a read."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, headers) as JSON like the rest."""
        self.close_connection = True
        reason = message or explain or "malformed HTTP request"
        self._send("other", Answer(code, error_body(reason), "BadRequest"))

    def do_POST(self) -> None:
        verb = POST_VERBS.get(self.path)
        if verb is None:
            self._send("other", Answer(404, error_body(f"no such path {self.path}"), "NotFound"))
            return
        started = time.monotonic()
        body = self._body()
        if body is None:
            answer = Answer(400, error_body("a body with Content-Length is required"), "BadRequest")
        else:
            answer = self._guarded(lambda: _route(self.server.service, verb, body))
        self._send(verb, answer, started)

    def do_GET(self) -> None:
        if self.path in ("/healthz", "/api/v1/status"):
            self._send("status", self._guarded(self.server.service.health), time.monotonic())
        else:
            self._send("other", Answer(404, error_body(f"no such path {self.path}"), "NotFound"))

    def _guarded(self, call: Callable[[], Answer]) -> Answer:
        try:
            return call()
        except Exception:
            log.exception("unexpected failure answering %s", self.path)
            return Answer(500, error_body("internal error; see the agent log"), "Internal")

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            return None
        try:
            return self.rfile.read(int(length))
        except TimeoutError:  # the client stopped sending: drop it (see READ_TIMEOUT)
            self.close_connection = True
            return None

    def _send(self, verb: str, answer: Answer, started: float | None = None) -> None:
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The plugin gave up (its own timeout, or kubelet killed it): not our failure.
            self.close_connection = True
            log.info("%s %s: the client left before the %d answer", verb, self.path, answer.status)
            metrics.ERRORS.labels(reason="ClientGone").inc()
        if started is not None:
            metrics.REQUEST_SECONDS.labels(verb=verb).observe(time.monotonic() - started)
        if verb == "add" and answer.status in (200, 504):
            metrics.WAIT_SECONDS.observe(answer.waited)
        if answer.reason:
            metrics.ERRORS.labels(reason=answer.reason).inc()
            log.info("%s %s -> %d %s", verb, self.path, answer.status, answer.body)
        if verb == "gc" and answer.body:
            metrics.UNKNOWN_ATTACHMENTS.inc(len(answer.body.get("unknown", [])))

    def address_string(self) -> str:
        return "unix"  # client_address is '' on a unix socket

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class AgentServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = False
    request_queue_size = 128

    def __init__(self, path: Path, service: AgentService) -> None:
        self.service = service
        self.path = path
        _prepare(path)
        old = os.umask(0o177)
        try:
            super().__init__(str(path), Handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def server_close(self) -> None:
        super().server_close()
        self.path.unlink(missing_ok=True)


def _prepare(path: Path) -> None:
    """Create the parent; replace a stale socket, never a live one or a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.exists() or path.is_symlink()):
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: left over from a previous run
    else:
        raise FileExistsError(f"another process is serving {path}")
    finally:
        probe.close()
