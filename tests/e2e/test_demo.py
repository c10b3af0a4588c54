"""``make demo`` end to end: ``python -m ops.demo`` as a subprocess, judged by what it prints.

What a newcomer must see: every pod NIC of the seed (and the three pods made
after the failover) holds, inside its network namespace, an address of the
seed's Subnet that matches its lease; the leader changed after the kill; and
afterwards nothing the demo started is left: no process, no namespace, no
work directory. Interrupting it (SIGINT mid-run, SIGTERM during ``--keep``)
cleans up the same way, and a non-root user gets a clear refusal.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ops.lab import netns
from ops.lab.cni import REFERENCE_PLUGINS
from ops.lab.kube import find_assets
from tests.support.components import missing

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
SEED_SUBNET = yaml.safe_load((REPO / "ops/examples/03-subnet-macvlan.yaml").read_text())
CIDR = ipaddress.ip_network(SEED_SUBNET["spec"]["cidrBlock"])
GATEWAY = SEED_SUBNET["spec"]["gateway"]
ROW = re.compile(
    r"^ {4}(?P<pod>\S+)\s+(?P<ifname>net\d+|eth0)\s+(?P<ip>[\d.]+)/(?P<prefix>\d+)\s+"
    r"(?P<mac>[0-9a-f:]{17})\s+(?P<gw>\S+)\s+(?P<routes>.+?)\s{2,}"
    r"(?P<lease>(?:ok|MISMATCH|OUTSIDE)\b.*)$"
)


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    reason = netns.why_unavailable()
    if reason is not None:
        missing("network namespaces", reason)
    if not os.access(REFERENCE_PLUGINS / "macvlan", os.X_OK):
        missing("CNI macvlan plugin", f"install containernetworking-plugins ({REFERENCE_PLUGINS})")
    assets = find_assets()
    if assets is None:
        missing("kube-apiserver/etcd binaries", "run make test-binaries or set KUBEBUILDER_ASSETS")
    return {**os.environ, "KUBEBUILDER_ASSETS": str(assets), "NICPOOL_DEMO_KEEP": ""}


@dataclass
class Demo:
    """The demo as a child process; its stdout collected line by line."""

    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    popen: subprocess.Popen[str] | None = None
    reader: threading.Thread | None = None

    def start(self) -> Demo:
        argv = [sys.executable, "-m", "ops.demo", *self.args]
        self.popen = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()
        return self

    def _collect(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if needle in line), None)
            if found is not None:
                return found
            assert self.popen is not None
            if self.popen.poll() is not None:
                self._drain()
                found = next((line for line in self.lines if needle in line), None)
                if found is not None:
                    return found
                break
            time.sleep(0.1)
        raise AssertionError(f"demo never printed {needle!r}:\n{self.output}")

    def wait(self, timeout: float = 300) -> int:
        assert self.popen is not None
        code = self.popen.wait(timeout)
        self._drain()
        return code

    def _drain(self) -> None:
        """The demo has exited: the reader ends at EOF, with its last lines taken."""
        assert self.reader is not None
        self.reader.join(30)

    def stop(self) -> None:
        """SIGTERM (the demo cleans up), SIGKILL only if that hangs."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(120)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture
def demo(demo_env: dict[str, str]) -> Iterator[Demo]:
    started = Demo(demo_env)
    yield started
    started.stop()


def assert_nothing_left(output: str) -> None:
    """Every pid the demo printed is gone, its namespaces and its directory too."""
    assert re.search(r"; 0 left behind$", output, re.M), output
    pids = [int(p) for p in re.findall(r": pid (\d+)", output)]
    assert pids, output
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"pid {pid} still runs"
    tag = re.search(r"node netns (np-[0-9a-f]+)-host", output)
    if tag is not None:
        names = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout
        assert tag.group(1) not in names
    workdir = re.search(r"work directory (\S+)", output)
    assert workdir is not None and not Path(workdir.group(1)).exists()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_demo_wires_every_seed_pod_survives_the_leader_kill_and_cleans_up(demo: Demo) -> None:
    code = demo.start().wait()
    out = demo.output
    assert code == 0, out
    rows = {m["pod"]: m for m in (ROW.match(line) for line in demo.lines) if m}
    workload = sorted(p for p in rows if p.startswith("static-workload-"))
    expected = {"samplepod", "static-ip", "samplepod-route", "samplepod-macvlan"}
    expected |= {f"after-failover-{n}" for n in (1, 2, 3)}
    assert expected <= set(rows) and len(workload) == 2, out
    for pod, row in rows.items():
        assert ipaddress.ip_address(row["ip"]) in CIDR, f"{pod}: {row['ip']} outside {CIDR}"
        assert row["prefix"] == str(CIDR.prefixlen) and row["lease"].startswith("ok"), row.string
    assert len({row["ip"] for row in rows.values()}) == len(rows), "an address used twice"
    assert rows["static-ip"]["ip"] == "172.17.0.100"
    assert {rows[p]["ip"] for p in workload} <= {"172.17.0.200", "172.17.0.201", "172.17.0.202"}
    assert rows["samplepod-macvlan"]["ifname"] == "eth0"
    assert rows["samplepod-route"]["gw"] == GATEWAY and rows["samplepod"]["gw"] == "-"
    changed = re.search(r"new leader: (\S+) \(was (\S+)\)", out)
    assert changed is not None and changed.group(1) != changed.group(2), out
    assert re.search(r"macvlan\s+IPv4\s+172\.17\.0\.0/16\s+65524\s+9\s", out), out
    assert re.search(r"demo finished in [\d.]+ s end to end", out), out
    assert_nothing_left(out)


def test_sigint_in_the_middle_still_cleans_up(demo: Demo) -> None:
    demo.start().wait_for_line("replica-2: pid")
    assert demo.popen is not None
    demo.popen.send_signal(signal.SIGINT)
    assert demo.wait() == 130, demo.output
    assert "interrupted" in demo.output
    assert_nothing_left(demo.output)


def test_keep_leaves_metrics_up_until_sigterm(demo: Demo) -> None:
    demo.args = ["--keep"]
    demo.start().wait_for_line("--keep: everything stays up")
    leader = demo.wait_for_line("(leader): http://")
    url = leader.split()[-1]
    with urllib.request.urlopen(url, timeout=5) as response:
        assert "nicpool_leader 1.0" in response.read().decode()
    assert demo.popen is not None
    demo.popen.send_signal(signal.SIGTERM)
    assert demo.wait() == 0, demo.output
    assert_nothing_left(demo.output)


def test_non_root_is_told_to_use_root() -> None:
    """Wherever the clone lives (a private home, ``mktemp -d``): the user the demo
    runs as here cannot read it, nor the virtualenv's interpreter, so the entry
    point is copied where it can, and run by the system's ``python3``. The root
    check needs nothing else (it comes before every other import)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        missing("a system python3", "install python3 (Debian: python3)")
        raise AssertionError("unreachable")
    with tempfile.TemporaryDirectory(dir="/tmp") as top:
        readable = Path(top)
        (readable / "ops" / "demo").mkdir(parents=True)
        for part in ("ops/__init__.py", "ops/demo/__init__.py", "ops/demo/__main__.py"):
            shutil.copy(REPO / part, readable / part)
        for directory in (readable, readable / "ops", readable / "ops" / "demo"):
            directory.chmod(0o755)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        argv += [python, "-s", "-E", "-m", "ops.demo"]
        done = subprocess.run(
            argv, cwd=readable, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "must run as root" in done.stderr
