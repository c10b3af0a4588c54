"""After the last fault: let the system settle, probe every replica, take the final state.

* **settle**: wait until every live pod is allocated (at most the bound);
* **readiness**: every replica's ``/readyz`` answers 200 again (a replica
  that healed with a dead watch or a dead etcd channel would say so here);
* **handover probes**: each replica in turn is left alone (the others
  SIGSTOPped past the election TTL) and must take over and allocate a new
  pod: a replica that healed blind (a dead watch, a dead etcd connection)
  and could never lead again fails here, before a real outage finds it;
* **quiet**: GC grace and two sweeps, so orphans would have been freed;
* **final state**: live pods and StatefulSets from the apiserver, every
  attachment from etcd, and ``nicpoolctl audit --json``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from functools import partial
from typing import Any

from ops.lab.controllers import ControllerProcess, wait_for
from reconciler.kube.client import KubeClient
from reconciler.kube.resources import PODS, STATEFULSETS
from store.config import EtcdSettings
from store.etcd import connect
from store.inventory import Inventory
from tests.faults.history import FaultWindow, FinalAttachment, FinalState, History, Probe
from tests.faults.lifetimes import allocated
from tests.faults.recorders import PodRecorder
from tests.faults.system import PREFIX, System
from tests.faults.workload import Workload


def settle(recorder: PodRecorder, history: History, timeout: float) -> None:
    """Wait (bounded) until the newest sighting of every live pod is allocated."""

    def all_allocated() -> bool:
        alive = recorder.alive()
        latest = {s.uid: s for s in list(history.pods) if s.uid in alive}
        return all(allocated(seen) for seen in latest.values())

    with contextlib.suppress(AssertionError):  # the checker reports which pods, how late
        wait_for("every live pod allocated", all_allocated, timeout, every=0.5)


def readiness_probes(system: System, history: History, *, timeout: float) -> None:
    """Every replica's /readyz is green again within ``timeout`` of the last fault."""
    for replica in system.replicas:
        ready = partial(_ready, replica.process)
        try:
            wait_for(f"{replica.identity} /readyz", ready, timeout)
        except AssertionError:
            status, body = replica.process.http("/readyz")
            history.probes.append(
                Probe(f"{replica.identity} ready", False, f"{status}: {body[:300]}")
            )
        else:
            history.probes.append(Probe(f"{replica.identity} ready", True))


def _ready(process: ControllerProcess) -> bool:
    return process.http("/readyz")[0] == 200


def handover_probes(
    system: System, workload: Workload, history: History, *, timeout: float
) -> None:
    """Each replica alone must lead and allocate a new pod."""
    for replica in system.replicas:
        others = [r for r in system.replicas if r is not replica and r.process.alive()]
        start = time.time()
        for other in others:
            _signal(other.process.popen, signal.SIGSTOP)
        try:
            history.probes.append(_probe(replica.identity, replica.leads, workload, timeout))
        finally:
            for other in others:
                _signal(other.process.popen, signal.SIGCONT)
            history.faults.append(
                FaultWindow("handover-probe", start, time.time(), replica.identity)
            )


def _signal(popen: subprocess.Popen[bytes] | None, sig: int) -> None:
    if popen is not None and popen.poll() is None:
        popen.send_signal(sig)


def _probe(identity: str, leads: Any, workload: Workload, timeout: float) -> Probe:
    name = f"probe-{identity}"
    began = time.monotonic()
    try:
        wait_for(f"{identity} to lead alone", leads, timeout)
        with workload.lock:
            uid = workload.create("", ["net-a"], name=name)
        provider = f"net-a.{workload.ns}"

        def done() -> bool:
            pod = workload.kube.get(PODS, workload.ns, name) or {}
            notes = (pod.get("metadata") or {}).get("annotations") or {}
            return notes.get(f"{provider}.kubernetes.io/allocated") == "true"

        wait_for(f"{identity} to allocate {name}", done, timeout)
        with workload.lock:
            workload.delete(name)
    except AssertionError as exc:
        return Probe(f"{identity} takes over alone", False, str(exc))
    return Probe(f"{identity} takes over alone", True, f"{uid} in {time.monotonic() - began:.1f} s")


def final_state(system: System, kube: KubeClient, namespace: str) -> FinalState:
    pods, _ = kube.list(PODS)
    live = {
        p["metadata"]["uid"]: f"{namespace}/{p['metadata']['name']}"
        for p in pods
        if p["metadata"].get("namespace") == namespace
    }
    sets, _ = kube.list(STATEFULSETS)
    statefulsets = {
        f"{namespace}/{s['metadata']['name']}": (
            str(s["metadata"]["uid"]),
            int((s.get("spec") or {}).get("replicas", 1)),
        )
        for s in sets
        if s["metadata"].get("namespace") == namespace
    }
    return FinalState(
        at=time.time(),
        pods=live,
        statefulsets=statefulsets,
        attachments=_attachments(system),
        audit=audit(system),
    )


def _settings(system: System) -> EtcdSettings:
    assert system.etcd is not None
    pair = system.etcd.client_pair("root")
    return EtcdSettings(
        endpoints=tuple(system.etcd.endpoints),
        prefix=PREFIX,
        cacert=str(system.etcd.ca.cert),
        cert=str(pair.cert),
        key=str(pair.key),
    )


def _attachments(system: System) -> tuple[FinalAttachment, ...]:
    client = connect(_settings(system))
    try:
        found = Inventory(client, PREFIX).attachments()
    finally:
        client.close()
    return tuple(
        FinalAttachment(
            str(att.ref.pod),
            str(att.ref.provider),
            str(att.uid),
            att.workload.kind if att.workload else "",
            att.workload.name if att.workload else "",
            att.workload.uid if att.workload else "",
        )
        for att in found
    )


def audit(system: System) -> dict[str, Any] | None:
    """``nicpoolctl audit --json`` run as an operator would, against the etcd cluster."""
    assert system.etcd is not None and system.plane is not None
    argv = [sys.executable, "-m", "reconciler.ctl.main"]
    argv += [f"--etcd-endpoints={','.join(system.etcd.endpoints)}", f"--etcd-prefix={PREFIX}"]
    argv += system.etcd.client_flags("nicpool-admin")
    argv += [f"--kubeconfig={system.plane.kubeconfig}", "audit", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return None
    return report
