"""The floor: a controller that does no IPAM, only what every pod controller must do.

``python -m tests.bench.peers.floor --kubeconfig K`` lists and watches pods
(all namespaces, as nicpool's controller does) and, for every pod carrying
the Multus networks annotation but not yet ``bench.nicpool.io/floor``, sends
one merge patch adding that annotation, from ``--workers`` threads (32,
nicpool's default). It runs as its own process with the same Kubernetes
client nicpool's controller uses, so it pays for the same watch decoding
and HTTP round trips and for nothing else: no store, no allocation, no IP
objects. The time from the first pod creation to the last pod observed
patched is what the control plane alone costs; nicpool's time over it is
``ratio_to_floor``.

:class:`Floor` is the benchmark's side: it starts and stops that process
and describes the workload (the same NADs and pods as nicpool's; no CNI
calls).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ops.lab.processes import terminate
from reconciler.kube.client import KubeClient
from reconciler.kube.config import load_endpoint
from reconciler.kube.errors import Gone
from reconciler.kube.resources import PODS
from tests.bench.peers.plugins import network
from tests.bench.peers.systems import NETWORKS, create_nads, networks_annotation
from tests.bench.peers.workload import Pod

DONE = "bench.nicpool.io/floor"
REPO = Path(__file__).resolve().parents[3]


class FloorController:
    """List, watch, one patch per pod; nothing else."""

    def __init__(self, kube: KubeClient, workers: int) -> None:
        self.kube = kube
        self.pool = ThreadPoolExecutor(workers)
        self.pending: set[str] = set()
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            pods, version = self.kube.list(PODS)
            for pod in pods:
                self.seen(pod)
            try:
                for _, pod in self.kube.watch(PODS, version, timeout_seconds=300):
                    self.seen(pod)
                    version = pod.get("metadata", {}).get("resourceVersion", version)
            except Gone:
                continue

    def seen(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata", {})
        annotations = meta.get("annotations") or {}
        if NETWORKS not in annotations or DONE in annotations:
            return
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        with self.lock:
            if key in self.pending:
                return
            self.pending.add(key)
        self.pool.submit(self.patch, key)

    def patch(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        body = {"metadata": {"annotations": {DONE: "patched"}}}
        try:
            self.kube.merge_patch(PODS, namespace, name, body)
        except Exception as exc:  # a deleted pod, a hiccup: the floor keeps going
            print(f"patch {key}: {exc}", file=sys.stderr, flush=True)
        finally:
            with self.lock:
                self.pending.discard(key)


class Floor:
    """The benchmark's handle on the floor controller process."""

    name = "floor"

    def __init__(self, kube: KubeClient, kubeconfig: Path, workdir: Path) -> None:
        self.kube = kube
        self.kubeconfig = kubeconfig
        self.log = workdir / "floor.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "tests.bench.peers.floor"]
        argv += ["--kubeconfig", str(self.kubeconfig)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        time.sleep(1.0)  # its first list is done long before the first pod is created

    def stop(self) -> None:
        terminate(self.process, grace=5)
        self.process = None

    def prepare(self, namespace: str, index: int, nics: int) -> list[bytes]:
        configs = [
            network(f"net{nic}", {"type": "kube-ovn", "provider": f"net{nic}.{namespace}"})
            for nic in range(nics)
        ]
        create_nads(self.kube, namespace, configs)
        return configs

    def pod_annotations(self, namespace: str, nics: int) -> dict[str, str]:
        return networks_annotation(namespace, nics)

    def done_keys(self, namespace: str, nics: int) -> list[str]:
        return [DONE]

    def cni(self, command: str, config: bytes, pod: Pod, ifname: str) -> str | None:
        raise NotImplementedError("the floor makes no CNI calls")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.peers.floor", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args(argv)
    kube = KubeClient(load_endpoint(args.kubeconfig), pool_size=64)
    print(json.dumps({"floor": "started", "workers": args.workers}), flush=True)
    FloorController(kube, args.workers).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
