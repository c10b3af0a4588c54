"""nicpool at 10,000 and 100,000 leases: restart, index load, nicpoolctl, bytes, RSS.

The leases are made the way a cluster makes them: pods created through the
apiserver (16 creator threads), each attaching an IPv4 /16 NAD and an IPv6
/64 NAD, allocated by the running controller (annotations, IP objects,
store records). Reaching 100,000 means 50,000 pods and 100,000 IP objects
in the apiserver, so the steps are cumulative: fill to 10,000, measure,
fill on to 100,000, measure.

At each step: the bytes under nicpool's etcd prefix (keys + values) per
lease and etcd's own database size; the controller's resident set; then a
restart as an operator does it (SIGTERM, the leader resigns, a new process
starts) with a fresh pod created at once: the new process's start -> that
pod allocated is ``restart_to_first_allocation_s``, with the controller's
own log lines (leader ready, attachments indexed) beside it; then
``nicpoolctl usage``, ``audit`` (with the apiserver) and ``backup``, each
timed as a process with its exit code, and its error output kept when it
fails: a failure at 100,000 is a result, recorded as such.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ops.lab.controllers import ControllerProcess, wait_for
from reconciler.kube.client import KubeClient
from reconciler.kube.resources import PODS, SUBNETS
from tests.bench.peers.meters import rss_mib
from tests.bench.peers.plugins import network
from tests.bench.peers.systems import NicpoolStore, create_nads, networks_annotation
from tests.bench.peers.workload import CREATORS, Progress, Watcher, pod_body

NAMESPACE = "scale"
SUBNETS_SPEC = (("IPv4", "10.50.0.0/16"), ("IPv6", "fd00:50::/64"))
REPO = Path(__file__).resolve().parents[3]


class Scale:
    def __init__(self, kube: KubeClient, *, store: NicpoolStore, progress: Progress) -> None:
        self.kube = kube
        self.store = store
        self.progress = progress
        self.pods = 0
        self.controller: ControllerProcess | None = None
        self.watcher: Watcher | None = None

    def setup(self) -> None:
        self.kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        configs = []
        for nic, (protocol, cidr) in enumerate(SUBNETS_SPEC):
            provider = f"net{nic}.{NAMESPACE}"
            spec = {"provider": provider, "protocol": protocol, "cidrBlock": cidr}
            body = {"apiVersion": "kubeovn.io/v1", "kind": "Subnet"}
            name = f"scale-{protocol.lower()}"
            self.kube.create(SUBNETS, None, {**body, "metadata": {"name": name}, "spec": spec})
            configs.append(network(f"net{nic}", {"type": "kube-ovn", "provider": provider}))
        create_nads(self.kube, NAMESPACE, configs)
        self.controller = self._controller("scale-0")
        self.controller.wait_leader()
        keys = [f"net{nic}.{NAMESPACE}.kubernetes.io/allocated" for nic in range(2)]
        self.watcher = Watcher(self.kube, NAMESPACE, keys)
        self.watcher.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop.set()
        if self.controller is not None:
            self.controller.stop()

    def _controller(self, identity: str) -> ControllerProcess:
        return self.store.controller(identity).start()

    def fill(self, leases: int) -> dict[str, Any]:
        """Create pods until ``leases`` leases exist (2 per pod), all allocated."""
        assert self.watcher is not None
        names = [f"pod-{n:06d}" for n in range(self.pods, leases // 2)]
        annotations = networks_annotation(NAMESPACE, 2)
        started = time.monotonic()

        def create(name: str) -> None:
            for attempt in range(5):
                try:
                    self.kube.create(PODS, NAMESPACE, pod_body(NAMESPACE, name, annotations))
                    return
                except Exception as exc:
                    if attempt == 4:
                        raise
                    self.progress(f"    create {name}: {exc}; retrying")
                    time.sleep(1)

        with ThreadPoolExecutor(CREATORS) as pool:
            futures = [pool.submit(create, name) for name in names]
            while not all(f.done() for f in futures):
                time.sleep(5)
                done = sum(n in self.watcher.done for n in names)
                self.progress(f"    fill to {leases}: {done}/{len(names)} pods allocated")
            for future in futures:
                future.result()
        wait_for(
            f"{leases // 2} pods allocated",
            lambda: all(n in self.watcher.done for n in names),  # type: ignore[union-attr]
            3600,
            1.0,
        )
        seconds = time.monotonic() - started
        self.pods = leases // 2
        return {
            "fill_seconds": round(seconds, 1),
            "fill_pods_per_s": round(len(names) / seconds, 1),
        }

    def measure(self, leases: int) -> dict[str, Any]:
        assert self.controller is not None and self.watcher is not None
        result: dict[str, Any] = {"leases": leases}
        result.update(self.fill(leases))
        counted = self.store.etcd.count_prefix(f"{self.store.prefix}subnets/")
        result["etcd_keys_under_prefix_subnets"] = counted
        result.update(self.bytes_per_lease())
        result["controller_rss_mib_before_restart"] = rss_mib(self.controller.pid)
        result.update(self.restart(leases))
        for command in (["usage", "--json"], ["audit", "--json", "-n", NAMESPACE], ["backup"]):
            result[f"nicpoolctl_{command[0]}"] = self.nicpoolctl(command)
        return result

    def bytes_per_lease(self) -> dict[str, Any]:
        total = keys = 0
        for kv in self.store.etcd.iter_prefix(self.store.prefix):
            total += len(kv.key.encode()) + len(kv.value)
            keys += 1
        leases = self.store.etcd.count_prefix(f"{self.store.prefix}subnets/") and sum(
            self.store.etcd.count_prefix(f"{self.store.prefix}subnets/scale-{p.lower()}/leases/")
            for p, _ in SUBNETS_SPEC
        )
        db = self._etcd_db_bytes()
        return {
            "leases_counted": leases,
            "keys_under_prefix": keys,
            "bytes_under_prefix": total,
            "bytes_per_lease": round(total / leases, 1) if leases else None,
            "etcd_db_bytes": db,
        }

    def _etcd_db_bytes(self) -> int | None:
        try:
            with urllib.request.urlopen(
                f"{self.store.etcd_endpoint}/metrics", timeout=5
            ) as response:
                text = response.read().decode()
        except OSError:
            return None
        found = re.search(r"^etcd_mvcc_db_total_size_in_bytes ([0-9.e+]+)$", text, re.M)
        return int(float(found.group(1))) if found else None

    def restart(self, leases: int) -> dict[str, Any]:
        assert self.controller is not None and self.watcher is not None
        self.controller.stop()
        fresh = self.store.controller(f"scale-{leases}")
        start = time.monotonic()
        fresh.start()
        self.controller = fresh
        name = f"after-restart-{leases}"
        annotations = networks_annotation(NAMESPACE, 2)
        self.kube.create(PODS, NAMESPACE, pod_body(NAMESPACE, name, annotations))
        wait_for(f"{name} allocated", lambda: name in self.watcher.done, 600, 0.01)  # type: ignore[union-attr]
        ready = self.watcher.done[name] - start

        def logged(pattern: str) -> re.Match[str]:
            return wait_for(pattern, lambda: re.search(pattern, fresh.log_tail(400_000)), 600)

        leading = logged(r"ready to allocate ([\d.]+) s after start")
        indexed = logged(r"(\d+) attachments indexed in ([\d.]+) s \(([\d.]+) s after start\)")
        return {
            "restart_to_first_allocation_s": round(ready, 2),
            "restart_leader_ready_s": float(leading.group(1)),
            "index_attachments": int(indexed.group(1)),
            "index_load_s": float(indexed.group(2)),
            "index_loaded_after_start_s": float(indexed.group(3)),
            "controller_rss_mib_after_restart": rss_mib(fresh.pid),
        }

    def nicpoolctl(self, command: list[str]) -> dict[str, Any]:
        argv = [str(Path(sys.executable).parent / "nicpoolctl"), *command]
        argv += [
            f"--etcd-endpoints={self.store.etcd_endpoint}",
            f"--etcd-prefix={self.store.prefix}",
        ]
        argv += [f"--kubeconfig={self.store.kubeconfig}"]
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, cwd=REPO, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            return {"seconds": None, "exit": None, "error": "killed after 900 s"}
        seconds = round(time.monotonic() - started, 2)
        result: dict[str, Any] = {"seconds": seconds, "exit": done.returncode}
        result["output_bytes"] = len(done.stdout)
        if done.returncode not in (0, 1):
            result["error"] = done.stderr.decode(errors="replace").strip()[-600:]
        elif command[0] == "audit":
            result["findings"] = findings(done.stdout)
        self.progress(f"    nicpoolctl {command[0]}: {seconds} s, exit {done.returncode}")
        return result


def findings(stdout: bytes) -> dict[str, int]:
    """How many findings of each kind ``audit --json`` reported."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return {"unparsed_output": 1}
    return {k: len(v) for k, v in doc.items() if isinstance(v, list) and v}
