"""End-to-end benchmark: pods x 2 attachment NICs through a real kube-apiserver.

``python -m tests.bench.e2e`` (``make bench-e2e``) starts etcd +
kube-apiserver (the envtest-style binaries), a separate etcd for nicpool
(fsync on, as in production), and one ``nicpool-controller`` process. It
creates ``--pods`` pods (default 1000), each attaching two NADs backed by
two Subnets, from ``--clients`` threads, and watches the pods: a pod counts
as allocated when both providers carry ``allocated: "true"``.

Reported (``tests/bench/results/e2e.json``): ``seconds_to_all_allocated``
(first create call -> last pod allocated), ``p50_ms``/``p99_ms`` (each
pod's create call -> its annotations observed), and ``restart_ready_s``:
the cluster is filled up to ``--restart-leases`` leases (10,000 = 5,000
pods x 2 NICs), the controller is killed and started again, and a fresh pod
is created at once; the number is the time from the new process's start to
that pod being allocated (the honest "ready to allocate"), with the
controller's own log line (index loaded, subnets registered) alongside.

Progress is printed every second while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.etcd import EtcdServer
from ops.lab.kube import ControlPlane, find_assets
from reconciler.kube.client import KubeClient
from reconciler.kube.config import load_endpoint
from reconciler.kube.resources import NADS, PODS, SUBNETS

RESULTS = Path(__file__).resolve().parent / "results"
NS = "bench"
NETWORKS = "k8s.v1.cni.cncf.io/networks"


class Watcher:
    """Records when each pod first shows both providers allocated."""

    def __init__(self, kube: KubeClient, providers: tuple[str, ...]) -> None:
        self.kube = kube
        self.keys = [f"{p}.kubernetes.io/allocated" for p in providers]
        self.done: dict[str, float] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        _, version = self.kube.list(PODS)
        self._version = version
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                for _, pod in self.kube.watch(PODS, self._version, timeout_seconds=60):
                    meta = pod.get("metadata", {})
                    self._version = meta.get("resourceVersion", self._version)
                    annotations = meta.get("annotations") or {}
                    if all(annotations.get(k) == "true" for k in self.keys):
                        self.done.setdefault(meta.get("name", ""), time.monotonic())
                    if self.stop.is_set():
                        return
            except Exception as exc:  # a benchmark keeps watching through hiccups
                if self.stop.is_set():
                    return
                print(f"  watch restarted: {exc}", file=sys.stderr)
                time.sleep(0.2)
                try:
                    _, self._version = self.kube.list(PODS)
                except Exception:
                    continue


def setup_networks(kube: KubeClient) -> tuple[str, str]:
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": NS}})
    providers = []
    for index, name in enumerate(("red", "blue")):
        provider = f"{name}.{NS}"
        config = {
            "cniVersion": "1.0.0",
            "type": "macvlan",
            "master": "eth0",
            "ipam": {"type": "kube-ovn", "provider": provider},
        }
        kube.create(
            NADS,
            NS,
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"config": json.dumps(config)},
            },
        )
        kube.create(
            SUBNETS,
            None,
            {
                "apiVersion": "kubeovn.io/v1",
                "kind": "Subnet",
                "metadata": {"name": f"bench-{name}"},
                "spec": {
                    "provider": provider,
                    "protocol": "IPv4",
                    "cidrBlock": f"10.{100 + index}.0.0/16",
                },
            },
        )
        providers.append(provider)
    return providers[0], providers[1]


def create_pods(kube: KubeClient, names: list[str], clients: int) -> dict[str, float]:
    started: dict[str, float] = {}

    def create(name: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NS,
                "annotations": {NETWORKS: f"{NS}/red,{NS}/blue"},
            },
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
        started[name] = time.monotonic()
        kube.create(PODS, NS, body)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(create, names))
    return started


def wait_all(watcher: Watcher, names: list[str], label: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    total = len(names)
    while True:
        count = sum(name in watcher.done for name in names)
        print(f"  {label}: {count}/{total} allocated", flush=True)
        if count == total:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{label}: only {count}/{total} pods allocated after {timeout}s")
        time.sleep(1.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.e2e", description=__doc__)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--restart-leases", type=int, default=10_000)
    parser.add_argument("--output", type=Path, default=RESULTS / "e2e.json")
    args = parser.parse_args(argv)
    assets = find_assets(build=True)
    if assets is None:
        raise SystemExit("no kube-apiserver binaries: run bash ops/tools/build-test-binaries.sh")
    nicpool_etcd = EtcdServer(binary=assets / "etcd", fsync=True)
    nicpool_etcd.start()
    plane = ControlPlane(assets=assets, controller_manager=False)
    plane.start()
    controller: ControllerProcess | None = None
    try:
        plane.install_crds()
        kube = KubeClient(load_endpoint(str(plane.kubeconfig)), pool_size=64)
        providers = setup_networks(kube)
        prefix = f"/nicpool-bench-{uuid.uuid4().hex[:6]}/v1/"
        controller = ControllerProcess(
            plane.kubeconfig,
            nicpool_etcd.endpoint,
            prefix,
            identity="bench",
            extra_args=[f"--workers={args.workers}"],
        )
        controller.start()
        controller.wait_leader()
        time.sleep(1.0)  # subnets registered
        watcher = Watcher(kube, providers)
        watcher.start()
        names = [f"pod-{n:05d}" for n in range(args.pods)]
        print(f"creating {args.pods} pods x 2 NICs", flush=True)
        begin = time.monotonic()
        progress = threading.Thread(
            target=wait_all, args=(watcher, names, "allocation", 600), daemon=True
        )
        progress.start()
        started = create_pods(kube, names, args.clients)
        progress.join()
        latencies = [(watcher.done[n] - started[n]) * 1000 for n in names]
        result: dict[str, Any] = {
            "pods": args.pods,
            "nics_per_pod": 2,
            "seconds_to_all_allocated": round(max(watcher.done[n] for n in names) - begin, 2),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "client_threads": args.clients,
            "controller_workers": args.workers,
        }
        print(json.dumps(result), flush=True)
        result.update(measure_restart(args, kube, watcher, controller, plane, nicpool_etcd, prefix))
        controller = result.pop("_controller")
        result.update(
            {
                "goal_seconds_for_1000_pods": 60,
                "goal_met": result["seconds_to_all_allocated"] < 60 * args.pods / 1000,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    finally:
        if "watcher" in locals():
            watcher.stop.set()
        if controller is not None:
            controller.stop()
        plane.stop()
        nicpool_etcd.stop()


def measure_restart(  # noqa: PLR0917 (one call site, all of the run's state)
    args: argparse.Namespace,
    kube: KubeClient,
    watcher: Watcher,
    controller: ControllerProcess,
    plane: ControlPlane,
    nicpool_etcd: EtcdServer,
    prefix: str,
) -> dict[str, Any]:
    pods_needed = args.restart_leases // 2
    extra = [f"pod-{n:05d}" for n in range(args.pods, pods_needed)]
    if extra:
        print(f"filling up to {args.restart_leases} leases ({len(extra)} more pods)", flush=True)
        progress = threading.Thread(
            target=wait_all, args=(watcher, extra, "fill", 1800), daemon=True
        )
        progress.start()
        create_pods(kube, extra, args.clients)
        progress.join()
    # A restart as an operator does it (rolling update): SIGTERM, the leader resigns,
    # the new process takes over without waiting out the election TTL.
    controller.stop()
    fresh = ControllerProcess(
        plane.kubeconfig,
        nicpool_etcd.endpoint,
        prefix,
        identity="bench-2",
        extra_args=[f"--workers={args.workers}"],
    )
    start = time.monotonic()
    fresh.start()
    started = create_pods(kube, ["after-restart"], 1)
    wait_for(
        "the pod created after the restart", lambda: "after-restart" in watcher.done, 300, 0.01
    )
    ready = watcher.done["after-restart"] - start

    def logged(pattern: str) -> re.Match[str]:
        return wait_for(pattern, lambda: re.search(pattern, fresh.log_tail(200_000)))

    leading = logged(r"ready to allocate ([\d.]+) s after start")
    indexed = logged(r"(\d+) attachments indexed in ([\d.]+) s \(([\d.]+) s after start\)")
    return {
        "restart_leases": args.restart_leases,
        "restart_leases_indexed": int(indexed.group(1)),
        "restart_ready_s": round(ready, 2),
        "restart_leader_ready_s": float(leading.group(1)),
        "restart_index_loaded_s": float(indexed.group(3)),
        "restart_pod_latency_ms": round(
            (watcher.done["after-restart"] - started["after-restart"]) * 1000, 1
        ),
        "_controller": fresh,
    }


if __name__ == "__main__":
    sys.exit(main())
