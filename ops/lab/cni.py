"""Run CNI plugins the way a runtime does, and the nicpool agent as a process.

:func:`exec_plugin` sets the CNI environment, writes the config on stdin and
parses stdout as JSON (a plugin's stdout must always be JSON, errors
included). ``netns=`` runs the plugin inside a test "host" namespace with
``ip netns exec`` (which also remounts /sys for that namespace), so the
plugins never see the machine's own links.

:class:`AgentProcess` is ``python -m cnibin.agent.main`` as a real subprocess
on a socket in a temporary directory. :class:`MultusHarness` plays the part
of Multus when the real thin plugin cannot run: it reads the pod's networks
annotation and the NAD configs and execs each delegate with the CNI_ARGS and
interface names Multus would use.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.lab.ports import free_port
from ops.lab.processes import terminate

REFERENCE_PLUGINS = Path(os.environ.get("NICPOOL_CNI_PLUGINS", "/usr/lib/cni"))
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CniOutcome:
    returncode: int
    stdout: str
    stderr: str
    doc: Any = None
    """stdout parsed as JSON (None when stdout was empty)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def exec_plugin(
    binary: Path,
    command: str,
    config: dict[str, Any] | bytes | None,
    *,
    cni_path: list[Path],
    container_id: str = "",
    ifname: str = "",
    netns_path: str = "",
    cni_args: dict[str, str] | None = None,
    netns: str | None = None,
    openvswitch_dir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> CniOutcome:
    """Exec ``binary`` for ``command``; stdout must be empty or JSON."""
    variables = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_PATH": os.pathsep.join(str(p) for p in cni_path),
    }
    for key, value in (
        ("CNI_CONTAINERID", container_id),
        ("CNI_IFNAME", ifname),
        ("CNI_NETNS", netns_path),
        ("CNI_ARGS", ";".join(f"{k}={v}" for k, v in (cni_args or {}).items())),
    ):
        if value:
            variables[key] = value
    variables.update(env or {})
    stdin = config if isinstance(config, bytes) else json.dumps(config or {}).encode()
    argv = [str(binary)]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    if openvswitch_dir is not None:
        argv = seed_socket_view(openvswitch_dir, argv)
    done = subprocess.run(
        argv, input=stdin, env=variables, capture_output=True, timeout=timeout, check=False
    )
    out = done.stdout.decode()
    doc = json.loads(out) if out.strip() else None
    return CniOutcome(done.returncode, out, done.stderr.decode(), doc)


_SEED_VIEW = """
dir=$1; keep=$2; shift 2
mkdir -p "$keep"
mount --rbind /run/netns "$keep"
mount -t tmpfs nicpool-run /run
mkdir -p /run/netns /run/openvswitch
mount --rbind "$keep" /run/netns
mount --bind "$dir" /run/openvswitch
exec "$@"
"""


def seed_socket_view(openvswitch_dir: Path, argv: list[str]) -> list[str]:
    """Run ``argv`` seeing ``openvswitch_dir`` at /run/openvswitch.

    The seed's configs name ``/run/openvswitch/kube-ovn-daemon.sock``; tests
    keep them verbatim without touching the machine's /run: the command runs
    in a private mount namespace with a tmpfs over /run, the netns mounts
    carried over, and the test agent's socket directory bound at
    /run/openvswitch.
    """
    keep = openvswitch_dir.parent / "netns-view"
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-ec",
        _SEED_VIEW,
        "sh",
        str(openvswitch_dir),
        str(keep),
        *argv,
    ]


def pod_args(namespace: str, name: str, uid: str | None = None) -> dict[str, str]:
    """CNI_ARGS as kubelet passes them."""
    args = {"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": namespace, "K8S_POD_NAME": name}
    args["K8S_POD_INFRA_CONTAINER_ID"] = f"infra-{name}"
    if uid:
        args["K8S_POD_UID"] = uid
    return args


@dataclass
class AgentProcess:
    """``nicpool-agent`` as a subprocess against a real etcd."""

    etcd_endpoint: str
    prefix: str
    lease_wait: float = 20.0
    bridges: tuple[str, ...] = ()
    """Bridges main-plugin NICs may join (the agent's ``--bridges``)."""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-agent-")))
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    node_name: str = "test-node"
    extra_args: list[str] = field(default_factory=list)
    """More flags (the etcd TLS files, say)."""

    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "kube-ovn-daemon.sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "agent.log"

    def start(self, timeout: float = 30.0) -> AgentProcess:
        argv = [sys.executable, "-m", "cnibin.agent.main", "--socket", str(self.socket)]
        argv += ["--etcd-endpoints", self.etcd_endpoint, "--etcd-prefix", self.prefix]
        argv += ["--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        argv += ["--lease-wait", str(self.lease_wait), "--node-name", self.node_name]
        argv += ["--bridges", ",".join(self.bridges)]
        argv += self.extra_args
        # A socket file left by a killed agent must not pass for the new one's.
        self.socket.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        # Started means accepting connections: the socket file appears at bind(),
        # a moment before listen(), and metrics come up after that.
        while not (self._accepting() and self.http("/metrics")[0] == 200):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nicpool-agent did not start: {self.log_text()}")
            time.sleep(0.05)
        return self

    def _accepting(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def metrics(self) -> str:
        import urllib.request

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def http(self, path: str) -> tuple[int, str]:
        """GET ``path`` on the metrics port: (status, body); (0, "") when nothing answers."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, str(resp.read().decode())
        except urllib.error.HTTPError as error:
            return error.code, str(error.read().decode())
        except OSError:
            return 0, ""

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def install_plugin(bin_dir: Path) -> Path:
    """The plugin as a single file with the isolated-mode shebang."""
    from cnibin.install import install_plugin as install

    return install(bin_dir)


def multus_binary() -> Path | None:
    """The real Multus thin plugin, built once into the cache (see build_multus.sh)."""
    script = REPO / "ops" / "tools" / "build-multus.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    path = (
        Path(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout else None
    )
    return path if path is not None and os.access(path, os.X_OK) else None


def multus_config(
    *, kubeconfig: Path, cache_dir: Path, bin_dir: Path, cluster_network: dict[str, Any]
) -> dict[str, Any]:
    """The thin plugin's own network config, as its daemonset would write it."""
    return {
        "cniVersion": "0.3.1",
        "name": "multus-cni-network",
        "type": "multus",
        "kubeconfig": str(kubeconfig),
        "cniDir": str(cache_dir),
        "binDir": str(bin_dir),
        "logLevel": "verbose",
        "logFile": str(cache_dir / "multus.log"),
        "delegates": [cluster_network],
    }


def netns_shims(shim_dir: Path, host_netns: str, names: tuple[str, ...]) -> Path:
    """Wrappers that run the real reference plugins inside the test host netns.

    Multus must reach the test kube-apiserver on the machine's loopback, so
    it runs in the machine's namespace; the links its delegates create must
    not. Each wrapper execs ``ip netns exec <host> /usr/lib/cni/<name>``
    with the environment and stdin untouched, so the delegate is the real
    plugin seeing the test host namespace. Put ``shim_dir`` first in CNI_PATH.
    """
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shim = shim_dir / name
        real = REFERENCE_PLUGINS / name
        shim.write_text(f'#!/bin/sh\nexec ip netns exec {host_netns} "{real}" "$@"\n')
        shim.chmod(0o755)
    return shim_dir
