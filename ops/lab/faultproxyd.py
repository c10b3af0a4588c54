"""The fault proxies as a process of their own, driven over a unix socket.

Why a process: the proxies carry every byte between nicpool and its
servers, so they must not stall when the test that drives them is busy
(recording histories, checking them, running CNI plugins). Run as
``python -m ops.lab.faultproxyd --control PATH``; :class:`ProxyDaemon`
starts it and sends it one JSON request per connection:

``{"op": "add", "name": n, "host": h, "port": p}`` -> ``{"port": local}``;
``{"op": "set", "names": [...], "blackhole": b, "latency": s, "bandwidth": n}``;
``{"op": "reset", "names": [...]}`` -> ``{"reset": count}``;
``{"op": "stats"}`` -> per proxy counters and current faults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.lab.faultproxy import ProxyEngine
from ops.lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]


def _handle(engine: ProxyEngine, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "add":
        return {"port": engine.add(request["name"], (request["host"], int(request["port"])))}
    if op == "set":
        engine.set(
            list(request["names"]),
            blackhole=bool(request.get("blackhole", False)),
            latency=float(request.get("latency", 0.0)),
            bandwidth=int(request.get("bandwidth", 0)),
        )
        return {}
    if op == "reset":
        return {"reset": engine.reset(list(request["names"]))}
    if op == "stats":
        return {"stats": engine.stats()}
    raise ValueError(f"unknown op {op!r}")


def serve(control: Path) -> None:
    engine = ProxyEngine().start()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                reply = _handle(engine, json.loads(self.rfile.readline()))
            except Exception as exc:  # the caller gets every failure as an answer
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    with Server(str(control), Handler) as server:
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            engine.close()


@dataclass
class ProxyDaemon:
    """The proxy process and a client for it."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-proxy-")))
    popen: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def control(self) -> Path:
        return self.workdir / "control.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "faultproxyd.log"

    def start(self, timeout: float = 30.0) -> ProxyDaemon:
        argv = [sys.executable, "-m", "ops.lab.faultproxyd", "--control", str(self.control)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not self.control.exists():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"faultproxyd did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        terminate(self.popen, grace=5)
        self.popen = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def request(self, **request: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        if "error" in reply:
            raise RuntimeError(f"faultproxyd {request.get('op')}: {reply['error']}")
        return reply

    def add(self, name: str, host: str, port: int) -> int:
        """A proxy to ``host:port``; returns the loopback port to connect to instead."""
        local = int(self.request(op="add", name=name, host=host, port=port)["port"])
        self.ports[name] = local
        return local

    def set(
        self, names: list[str], *, blackhole: bool = False, latency: float = 0.0, bandwidth: int = 0
    ) -> None:
        """Set the faults of ``names`` (everything off by default: heal)."""
        self.request(
            op="set", names=names, blackhole=blackhole, latency=latency, bandwidth=bandwidth
        )

    def heal(self, names: list[str]) -> None:
        self.set(names)

    def reset(self, names: list[str]) -> int:
        return int(self.request(op="reset", names=names)["reset"])

    def stats(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.request(op="stats")["stats"]
        return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="faultproxyd", description=__doc__)
    parser.add_argument("--control", required=True, type=Path, help="unix socket to listen on")
    serve(parser.parse_args().control)


if __name__ == "__main__":
    main()
