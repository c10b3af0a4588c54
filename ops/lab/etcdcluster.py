"""A three-member etcd cluster with TLS everywhere, as operators should run nicpool's state.

Each member listens on two loopback ports (clients, peers), serves TLS on
both and requires a certificate from the cluster's CA on both
(``--client-cert-auth``, ``--peer-client-cert-auth``). The certificates are
made by :mod:`ops.lab.tls` in the cluster's work directory: one per member
(server and peer, since members dial each other) and one client certificate
per identity in :data:`IDENTITIES`, whose CN etcd takes as the user name
once auth is on.

Members can be killed, stopped and restarted one by one (the fault tier's
"member killed", "leader killed", "quorum lost"): a member restarts from its
own data directory and rejoins; the initial-cluster flags only matter the
first time. ``--unsafe-no-fsync`` by default: a killed *process* loses
nothing the page cache holds, and only a machine crash would need the fsync.

Auth is a switch (``auth_setup``): a callable run once the cluster is up,
given the cluster, that creates users and roles and enables auth
(:func:`nicpool_access` runs ``nicpoolctl access setup`` as root: the
controller reads and writes nicpool's prefix, the agent only reads it).
Without it every client certificate may do anything.

The class is free of pytest, so the demo and the benchmarks can use it::

    with EtcdCluster(binary=etcd_binary()) as cluster:
        flags = cluster.client_flags("nicpool-controller")
        endpoints = ",".join(cluster.endpoints)
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ops.lab.ports import free_port
from ops.lab.processes import LoggedProcess
from ops.lab.tls import LOOPBACK_SANS, CertificateAuthority, KeyPair

REPO = Path(__file__).resolve().parents[2]
IDENTITIES = ("root", "nicpool-controller", "nicpool-agent", "nicpool-admin")
"""Client certificates made for every cluster by default (their CN is the etcd user)."""


@dataclass
class Member:
    name: str
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: LoggedProcess | None = None

    @property
    def client_url(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"

    def running(self) -> bool:
        return (
            self.process is not None
            and self.process.popen is not None
            and (self.process.popen.poll() is None)
        )


@dataclass
class EtcdCluster:
    binary: Path
    size: int = 3
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-etcdc-")))
    fsync: bool = False
    heartbeat_ms: int = 100
    election_ms: int = 1000
    auth_setup: Callable[[EtcdCluster], None] | None = None
    """Creates users and roles and enables auth once the cluster is up (None: no auth)."""
    identities: tuple[str, ...] = IDENTITIES
    """Client certificates to make (CN = the name)."""
    members: list[Member] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def ca(self) -> CertificateAuthority:
        return CertificateAuthority(self.workdir / "pki")

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def client_pair(self, identity: str) -> KeyPair:
        return KeyPair(self.ca.directory / f"{identity}.crt", self.ca.directory / f"{identity}.key")

    def client_flags(self, identity: str) -> list[str]:
        """nicpool's TLS flags for ``identity`` (every nicpool process takes these)."""
        pair = self.client_pair(identity)
        return [
            f"--etcd-cacert={self.ca.cert}",
            f"--etcd-cert={pair.cert}",
            f"--etcd-key={pair.key}",
        ]

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def start(self, timeout: float = 60.0) -> None:
        try:
            self._certificates()
            self.members = [Member(f"m{n}", self.workdir / f"m{n}") for n in range(self.size)]
            for index in range(self.size):
                self.start_member(index, wait=False)
            self.wait_healthy(timeout)
            if self.auth_setup is not None:
                self.auth_setup(self)
        except BaseException:
            self.destroy()
            raise

    def _certificates(self) -> None:
        ca = self.ca.create("nicpool-etcd-ca")
        for n in range(self.size):
            ca.issue(f"m{n}", common_name=f"m{n}", sans=LOOPBACK_SANS, server=True, client=True)
        for identity in self.identities:
            ca.issue(identity, common_name=identity, client=True)

    def destroy(self) -> None:
        for member in self.members:
            if member.process is not None:
                member.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- one member ------------------------------------------------------------

    def start_member(self, index: int, *, wait: bool = True, timeout: float = 60.0) -> None:
        member = self.members[index]
        member.process = LoggedProcess(
            member.name, self._args(member), self.workdir / f"{member.name}.log"
        )
        member.process.start()
        if wait:
            self.wait_healthy(timeout, only=[index])

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Signal a member (SIGKILL: a crash) and reap it."""
        process = self.members[index].process
        if process is not None and process.popen is not None and process.popen.poll() is None:
            process.popen.send_signal(sig)
            process.popen.wait(30)

    def stop_member(self, index: int) -> None:
        process = self.members[index].process
        if process is not None:
            process.stop()

    def exited(self) -> dict[str, int]:
        """Members whose process has exited, with their exit codes."""
        found: dict[str, int] = {}
        for member in self.members:
            popen = member.process.popen if member.process is not None else None
            if popen is not None and popen.poll() is not None:
                found[member.name] = int(popen.returncode)
        return found

    def pids(self) -> list[int]:
        return [
            m.process.popen.pid
            for m in self.members
            if m.process is not None and m.process.popen is not None
        ]

    def _args(self, member: Member) -> list[str]:
        pki = self.ca.directory
        cert, key = pki / f"{member.name}.crt", pki / f"{member.name}.key"
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        args = [
            str(self.binary),
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token=nicpool-{self.token}",
            f"--cert-file={cert}",
            f"--key-file={key}",
            f"--trusted-ca-file={self.ca.cert}",
            "--client-cert-auth",
            f"--peer-cert-file={cert}",
            f"--peer-key-file={key}",
            f"--peer-trusted-ca-file={self.ca.cert}",
            "--peer-client-cert-auth",
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
            "--log-level=warn",
        ]
        return args if self.fsync else [*args, "--unsafe-no-fsync"]

    # -- observing -------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert))
        pair = self.client_pair("root")
        context.load_cert_chain(str(pair.cert), str(pair.key))
        return context

    def metric(self, index: int, name: str) -> float | None:
        """A gauge from the member's /metrics (served without auth, unlike the gRPC gateway)."""
        url = f"{self.members[index].client_url}/metrics"
        try:
            with urllib.request.urlopen(url, context=self._tls(), timeout=2) as response:
                text = response.read().decode()
        except (OSError, urllib.error.HTTPError):
            return None
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    def healthy(self, index: int) -> bool:
        """The member answers and reports a leader (a member without quorum does not)."""
        url = f"{self.members[index].client_url}/health"
        try:
            with urllib.request.urlopen(url, context=self._tls(), timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError, urllib.error.HTTPError):
            return False

    def leader(self) -> int | None:
        """Index of the member that reports itself leader, if any answers so."""
        for index, member in enumerate(self.members):
            if member.running() and self.metric(index, "etcd_server_is_leader") == 1.0:
                return index
        return None

    def wait_healthy(self, timeout: float, only: list[int] | None = None) -> None:
        indices = list(range(len(self.members))) if only is None else only
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in indices:
                if self.members[index].process is not None and not self.members[index].running():
                    raise RuntimeError(
                        f"{self.members[index].name} exited: {self._log_tail(index)}"
                    )
            if all(self.healthy(index) for index in indices):
                return
            time.sleep(0.1)
        tails = {self.members[i].name: self._log_tail(i) for i in indices}
        raise RuntimeError(f"etcd members {indices} not healthy after {timeout}s: {tails}")

    def _log_tail(self, index: int) -> str:
        process = self.members[index].process
        return process.log_tail(1500) if process is not None else ""


def nicpool_access(prefix: str = "/nicpool/v1/") -> Callable[[EtcdCluster], None]:
    """An ``auth_setup``: ``nicpoolctl access setup`` as root, nicpool's users and roles."""

    def setup(cluster: EtcdCluster) -> None:
        argv = [sys.executable, "-m", "reconciler.ctl.main"]
        argv += [f"--etcd-endpoints={','.join(cluster.endpoints)}", f"--etcd-prefix={prefix}"]
        argv += [*cluster.client_flags("root"), "access", "setup"]
        done = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"nicpoolctl access setup failed: {done.stdout}{done.stderr}")

    return setup
