"""nicpool-controller as real processes, for the controller, e2e and bench tiers.

Black-box, as users run it: ``python -m reconciler.main`` with flags, the
test cluster's kubeconfig, an etcd prefix of the test's own, metrics on a
loopback port. Helpers wait for observable states (``/readyz``, the
``nicpool_leader`` gauge, pod annotations) by polling with a generous
deadline; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ops.lab.ports import free_port
from ops.lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class ControllerProcess:
    kubeconfig: Path
    etcd_endpoint: str
    prefix: str
    identity: str = "c0"
    extra_args: list[str] = field(default_factory=list)
    metrics_port: int = field(default_factory=free_port)
    log_path: Path = field(
        default_factory=lambda: Path(
            tempfile.mkstemp(prefix="nicpool-controller-", suffix=".log")[1]
        )
    )
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        args = [
            sys.executable,
            "-m",
            "reconciler.main",
            f"--kubeconfig={self.kubeconfig}",
            f"--etcd-endpoints={self.etcd_endpoint}",
            f"--etcd-prefix={self.prefix}",
            f"--metrics-addr=127.0.0.1:{self.metrics_port}",
            f"--identity={self.identity}",
            *self.extra_args,
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(sig)
            self.popen.wait(30)

    def stop(self) -> None:
        terminate(self.popen, grace=20)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name: str, labels: str = "") -> float | None:
        _, text = self.http("/metrics")
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return None

    def is_leader(self) -> bool:
        return self.metric("nicpool_leader") == 1.0

    def wait_leader(self, timeout: float = 60.0) -> None:
        def probe() -> bool:
            if not self.alive():
                raise AssertionError(f"controller exited:\n{self.log_tail()}")
            return self.is_leader()

        wait_for(f"{self.identity} to lead", probe, timeout)


def pod_annotations(core: Any, namespace: str, name: str) -> dict[str, str]:
    pod = core.read_namespaced_pod(name, namespace)
    return dict(pod.metadata.annotations or {})
