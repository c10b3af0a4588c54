"""The running node as the node tests and ``make demo-node`` use it.

:class:`NodeCluster` attaches to a node brought up by ``make cluster`` (or by
:func:`start`) through ``state.json``, and offers what a user at this
machine has: ``kubectl`` as admin, ``kubectl exec`` into containers, the
apiserver's pod proxy (to scrape a pod's metrics port), ``nicpoolctl``
against nicpool's etcd through the forwarded port, and the node's own
processes (nicpool's etcd, containerd's tasks) for fault injection.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.lab.binaries import REPO
from ops.lab.controllers import wait_for
from ops.node import control, deploy, network, probes, runtime
from ops.node.daemons import spawn, stop
from ops.node.kubectl import kubectl
from ops.node.layout import Layout, default_root
from ops.node.node import Inputs, up
from ops.node.state import State
from store.config import EtcdSettings

NICPOOL = deploy.NAMESPACE
CONTROLLER_SELECTOR = "app.kubernetes.io/name=nicpool-controller"
AGENT_SELECTOR = "app.kubernetes.io/name=nicpool-agent"


@dataclass
class NodeCluster:
    layout: Layout
    state: State

    @classmethod
    def attach(cls, root: Path | None = None) -> NodeCluster | None:
        """The node recorded under ``root`` if its apiserver answers, else None."""
        layout = Layout(root or default_root())
        state = State.load(layout.state_file)
        if state is None or not state.ports or not probes.apiserver_ready(layout, state):
            return None
        return cls(layout, state)

    # -- access ---------------------------------------------------------------

    def kubectl(self, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        return kubectl(self.layout, *args, timeout=timeout, stdin=stdin)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def api_client(self) -> Any:
        from kubernetes import config

        path = str(self.layout.admin_kubeconfig)
        return config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]

    def etcd_settings(self, prefix: str = "/nicpool/v1/") -> EtcdSettings:
        """nicpool's etcd from this machine (forwarded port, nicpoolctl's own identity)."""
        pki = self.layout.pki
        return EtcdSettings(
            endpoints=(f"https://127.0.0.1:{self.state.ports['nicpool-etcd']}",),
            prefix=prefix,
            cacert=str(pki / "etcd-ca.crt"),
            cert=str(pki / "nicpool-admin.crt"),
            key=str(pki / "nicpool-admin.key"),
        )

    def nicpoolctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        settings = self.etcd_settings()
        assert settings.cacert and settings.cert and settings.key
        argv = [
            sys.executable, "-m", "reconciler.ctl.main",
            f"--etcd-endpoints={settings.endpoints[0]}", f"--etcd-cacert={settings.cacert}",
            f"--etcd-cert={settings.cert}", f"--etcd-key={settings.key}",
            f"--kubeconfig={self.layout.admin_kubeconfig}", *args,
        ]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)

    # -- pods -----------------------------------------------------------------

    def pod(self, name: str, namespace: str = "default") -> Any:
        return self.json("-n", namespace, "get", "pod", name)

    def pods(self, namespace: str, selector: str = "") -> list[Any]:
        args = ["-n", namespace, "get", "pods"] + (["-l", selector] if selector else [])
        return list(self.json(*args)["items"])

    def exec(self, pod: str, *command: str, namespace: str = "default") -> str:
        return self.kubectl("-n", namespace, "exec", pod, "--", *command, timeout=60)

    def addresses(self, pod: str, ifname: str, namespace: str = "default") -> list[str]:
        """IPv4 ``address/prefix`` on ``ifname``, as ``ip`` inside the container shows them."""
        text = self.exec(pod, "ip", "-o", "-4", "addr", "show", "dev", ifname, namespace=namespace)
        return re.findall(r"inet (\S+)", text)

    def wait_running(
        self, names: list[str], namespace: str = "default", timeout: float = 120
    ) -> None:
        def running() -> bool:
            phases = {p["metadata"]["name"]: p["status"].get("phase") for p in self.pods(namespace)}
            return all(phases.get(name) == "Running" for name in names)

        wait_for(f"pods {names} Running", running, timeout=timeout, every=0.5)

    def wait_gone(self, name: str, namespace: str = "default", timeout: float = 120) -> None:
        def gone() -> bool:
            return name not in {p["metadata"]["name"] for p in self.pods(namespace)}

        wait_for(f"pod {namespace}/{name} gone", gone, timeout=timeout, every=0.5)

    def proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str:
        """GET through the apiserver's pod proxy (the pod's port, from inside the node)."""
        raw = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}"
        return self.kubectl("get", "--raw", raw, timeout=15)

    def metric(self, namespace: str, pod: str, port: int, name: str) -> float | None:
        try:
            text = self.proxy_get(namespace, pod, port, "/metrics")
        except (RuntimeError, subprocess.TimeoutExpired):
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def leader(self) -> str | None:
        """The controller pod that exports ``nicpool_leader 1``."""
        for pod in self.pods(NICPOOL, CONTROLLER_SELECTOR):
            name = pod["metadata"]["name"]
            if pod["status"].get("phase") == "Running" and self.metric(
                NICPOOL, name, 10665, "nicpool_leader"
            ) == 1.0:  # fmt: skip
                return str(name)
        return None

    def ready(self, pod: Any) -> bool:
        conditions = pod.get("status", {}).get("conditions", []) or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # -- the node's own processes -------------------------------------------------

    def container_pid(self, namespace: str, pod: str, container: str) -> int:
        statuses = self.pod(pod, namespace)["status"]["containerStatuses"]
        (found,) = [s for s in statuses if s["name"] == container]
        container_id = found["containerID"].split("://", 1)[1]
        return runtime.tasks(self.layout)[container_id]

    def kill_container(self, namespace: str, pod: str, container: str) -> int:
        """``kill -9`` of the container's main process; returns its pid."""
        pid = self.container_pid(namespace, pod, container)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop_nicpool_etcd(self) -> None:
        pid = self.state.pid("nicpool-etcd")
        if pid is not None:
            stop(pid)

    def start_nicpool_etcd(self) -> None:
        argv = control.nicpool_etcd(Path(self.state.kube_bin) / "etcd", self.layout)
        pid = spawn("nicpool-etcd", argv, log_dir=self.layout.logs, netns=network.netns_path())
        self.state.daemons["nicpool-etcd"] = pid.to_json()
        self.state.save(self.layout.state_file)
        wait_for("nicpool's etcd", lambda: probes.nicpool_etcd_ok(self.layout, self.state), 30)

    def tag_image(self, source: str, target: str) -> None:
        runtime.tag_image(self.layout, source, target)


def start(inputs: Inputs, root: Path | None = None) -> NodeCluster:
    """Bring a node up and deploy nicpool on it (what ``make cluster`` does)."""
    layout = Layout(root or default_root())
    state = up(layout, inputs)
    started = time.monotonic()
    deploy.install(layout)
    state.timings["nicpool deployed"] = round(
        state.timings["node ready"] + time.monotonic() - started, 2
    )
    state.save(layout.state_file)
    return NodeCluster(layout, state)
