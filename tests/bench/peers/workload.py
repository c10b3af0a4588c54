"""One workload, driven the same way for every system: pods created, ADDs, then DELs.

A workload is N pods x M NICs with C callers. Pods are created through the
apiserver by a fixed pool of creator threads (standing in for the
ReplicaSet controller; the same for every system, so creation costs the
same everywhere). Each created pod goes on a queue; C caller threads (the
kubelets) take pods off it and exec the system's IPAM plugin once per NIC,
in order, as Multus calls its delegates one after the other. After every
ADD returned, the same callers exec a DEL per NIC, and the pods are
deleted.

Per exec the driver records start and end (``time.monotonic``) and the
error, if any; a system that also announces allocations on the pod (nicpool,
the floor controller) is watched, and the moment each pod shows every
wanted annotation is recorded. Nothing here knows which system it drives:
a :class:`System` says how to prepare its networks, what to annotate a pod
with, how to run one CNI command, and which annotations mean "done".
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.kube.client import KubeClient
from reconciler.kube.errors import Gone
from reconciler.kube.resources import PODS

CREATORS = 16
"""Threads creating pods: fixed, so pod creation costs every system the same."""


@dataclass(frozen=True)
class Workload:
    pods: int
    nics: int
    callers: int

    @property
    def label(self) -> str:
        return f"{self.pods}x{self.nics} C={self.callers}"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    created_at: float
    """When the create call was issued (monotonic)."""

    @property
    def container_id(self) -> str:
        return f"{self.namespace}-{self.name}-infra"


class System(Protocol):
    name: str

    def start(self) -> None:
        """Start what must run during a workload (a controller); stopped by :meth:`stop`."""

    def stop(self) -> None: ...

    def prepare(self, namespace: str, index: int, nics: int) -> list[bytes]:
        """Create what the workload needs; returns the stdin config of each NIC."""

    def pod_annotations(self, namespace: str, nics: int) -> dict[str, str]:
        """Annotations of every pod (the networks annotation for nicpool and the floor)."""

    def done_keys(self, namespace: str, nics: int) -> list[str]:
        """Annotations that mark a pod as done (empty: nothing is watched)."""

    def cni(self, command: str, config: bytes, pod: Pod, ifname: str) -> str | None:
        """Run one CNI command for one NIC; None, or the error."""


@dataclass
class Exec:
    pod: str
    nic: int
    started: float
    ended: float
    error: str | None


@dataclass
class Outcome:
    """What one system did with one workload (times are monotonic seconds)."""

    system: str
    workload: Workload
    begin: float = 0.0
    adds: list[Exec] = field(default_factory=list)
    dels: list[Exec] = field(default_factory=list)
    created: dict[str, float] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    del_seconds: float = 0.0


class Watcher:
    """Records when each pod of ``namespace`` first carries every ``keys`` annotation."""

    def __init__(self, kube: KubeClient, namespace: str, keys: list[str]) -> None:
        self.kube = kube
        self.namespace = namespace
        self.keys = keys
        self.done: dict[str, float] = {}
        self.stop = threading.Event()
        self._version = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        _, self._version = self.kube.list(PODS)
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                for _, pod in self.kube.watch(PODS, self._version, timeout_seconds=60):
                    self._seen(pod)
                    if self.stop.is_set():
                        return
            except Gone:
                _, self._version = self.kube.list(PODS)
            except Exception as exc:  # a benchmark keeps watching through hiccups
                if not self.stop.is_set():
                    print(f"  watch restarted: {exc}", file=sys.stderr, flush=True)
                    time.sleep(0.2)

    def _seen(self, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata", {})
        self._version = meta.get("resourceVersion", self._version)
        if meta.get("namespace") != self.namespace:
            return
        annotations = meta.get("annotations") or {}
        if all(annotations.get(k) for k in self.keys):
            self.done.setdefault(meta.get("name", ""), time.monotonic())


def pod_body(namespace: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


Progress = Callable[[str], None]


def run(
    kube: KubeClient,
    system: System,
    workload: Workload,
    *,
    namespace: str,
    index: int,
    progress: Progress,
    exec_cni: bool = True,
    done_timeout: float = 600.0,
) -> Outcome:
    """Create, ADD (when ``exec_cni``), wait for ``done_keys``, DEL, delete; see the docstring."""
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    configs = system.prepare(namespace, index, workload.nics)
    keys = system.done_keys(namespace, workload.nics)
    watcher = Watcher(kube, namespace, keys) if keys else None
    if watcher is not None:
        watcher.start()
    outcome = Outcome(system.name, workload)
    names = [f"pod-{n:05d}" for n in range(workload.pods)]
    ready: queue.Queue[Pod | None] = queue.Queue()
    annotations = system.pod_annotations(namespace, workload.nics)
    stop = threading.Event()
    ticker = threading.Thread(
        target=_report, args=(outcome, watcher, workload, progress, stop), daemon=True
    )
    outcome.begin = time.monotonic()
    ticker.start()
    try:
        callers = _start_callers(
            system, configs, ready=ready, outcome=outcome, workload=workload, exec_cni=exec_cni
        )
        _create(kube, namespace, names=names, annotations=annotations, ready=ready, outcome=outcome)
        for _ in callers:
            ready.put(None)
        for caller in callers:
            caller.join()
        if watcher is not None:
            _wait_done(watcher, names, done_timeout)
            outcome.done = dict(watcher.done)
    finally:
        stop.set()
        if watcher is not None:
            watcher.stop.set()
    if exec_cni:
        _delete_all(system, configs, outcome, workload, progress)
    _delete_pods(kube, namespace, names)
    return outcome


def _start_callers(
    system: System,
    configs: list[bytes],
    *,
    ready: queue.Queue[Pod | None],
    outcome: Outcome,
    workload: Workload,
    exec_cni: bool,
) -> list[threading.Thread]:
    lock = threading.Lock()

    def caller() -> None:
        while (pod := ready.get()) is not None:
            if not exec_cni:
                continue
            for nic, config in enumerate(configs):
                started = time.monotonic()
                error = system.cni("ADD", config, pod, f"net{nic + 1}")
                with lock:
                    outcome.adds.append(Exec(pod.name, nic, started, time.monotonic(), error))

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(workload.callers)]
    for thread in threads:
        thread.start()
    return threads


def _create(
    kube: KubeClient,
    namespace: str,
    *,
    names: list[str],
    annotations: dict[str, str],
    ready: queue.Queue[Pod | None],
    outcome: Outcome,
) -> None:
    def create(name: str) -> None:
        started = time.monotonic()
        outcome.created[name] = started
        created = kube.create(PODS, namespace, pod_body(namespace, name, annotations))
        pod = Pod(namespace, name, created["metadata"]["uid"], started)
        outcome.pods[name] = pod
        ready.put(pod)

    with ThreadPoolExecutor(CREATORS) as pool:
        list(pool.map(create, names))


def _wait_done(watcher: Watcher, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(name in watcher.done for name in names) < len(names):
        if time.monotonic() > deadline:
            return  # the outcome shows which pods never got there
        time.sleep(0.05)


def _delete_all(
    system: System, configs: list[bytes], outcome: Outcome, workload: Workload, progress: Progress
) -> None:
    """DEL every NIC (last NIC first, as Multus does), from the same C callers."""
    pods = sorted({e.pod for e in outcome.adds})
    started = time.monotonic()
    lock = threading.Lock()

    def delete(name: str) -> None:
        pod = outcome.pods[name]
        for nic in reversed(range(len(configs))):
            begun = time.monotonic()
            error = system.cni("DEL", configs[nic], pod, f"net{nic + 1}")
            with lock:
                outcome.dels.append(Exec(name, nic, begun, time.monotonic(), error))

    with ThreadPoolExecutor(workload.callers) as pool:
        list(pool.map(delete, pods))
    outcome.del_seconds = time.monotonic() - started
    errors = sum(e.error is not None for e in outcome.dels)
    progress(f"    DEL: {len(outcome.dels)} in {outcome.del_seconds:.1f} s, {errors} errors")


def _delete_pods(kube: KubeClient, namespace: str, names: list[str]) -> None:
    with ThreadPoolExecutor(CREATORS) as pool:
        list(pool.map(lambda name: kube.delete(PODS, namespace, name), names))


def _report(
    outcome: Outcome,
    watcher: Watcher | None,
    workload: Workload,
    progress: Progress,
    stop: threading.Event,
) -> None:
    total = workload.pods * workload.nics
    while not stop.wait(2.0):
        errors = sum(e.error is not None for e in outcome.adds)
        line = (
            f"    {time.monotonic() - outcome.begin:6.1f} s: created {len(outcome.created)}"
            f"/{workload.pods}, ADDs {len(outcome.adds)}/{total} ({errors} errors)"
        )
        if watcher is not None:
            line += f", done {len(watcher.done)}/{workload.pods}"
        progress(line)
