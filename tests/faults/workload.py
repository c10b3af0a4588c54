"""The workload: every kind of pod nicpool must serve, created and deleted at a steady rate.

The world (:func:`prepare`): three macvlan NADs with ``kube-ovn`` IPAM, a
Subnet for each (``net-a``, ``net-b`` dynamic; ``net-f`` for fixed
addresses and pools, so a dynamic pod never takes an address a fixed one
will ask for), a Deployment whose pods take ``ip_pool`` entries of
``net-f``, and a StatefulSet (``Parallel``: no kubelet ever makes a pod
Ready) with a dynamic ``net-a`` NIC and an ordinal ``ip_pool`` entry.

Every ``interval`` seconds :class:`Workload` does one thing, picked by its
own seeded RNG: create a bare pod, a two-NIC pod (two subnets) or a
fixed-IP pod; delete one; delete one and recreate it under the same name
at once; scale the Deployment or delete one of its pods; scale the
StatefulSet down or up or delete one of its pods (the controller manager
recreates it under the same name, and it keeps its addresses). Deletions
carry a UID precondition and are recorded as intents before they are
sent. A sample of the bare pods also gets real NICs (:mod:`.cnirunner`).

Every pod says which providers it expects (``EXPECT``) and which workload
made it (``WORKLOAD``), so the checker needs no knowledge of this module.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from ops.lab.netns import MASTER
from reconciler.kube.client import KubeClient
from reconciler.kube.resources import DEPLOYMENTS, NADS, PODS, STATEFULSETS, SUBNETS, Resource
from store.errors import NicpoolError
from tests.faults.cnirunner import CniRunner, Nic, Sandbox
from tests.faults.history import EXPECT, WORKLOAD, History, Intent
from tests.faults.system import Node

NAMESPACES = Resource("v1", "namespaces", False, "Namespace")
NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEPLOYMENT, STATEFULSET = "deployment-dep", "statefulset-sts"


@dataclass(frozen=True)
class Net:
    nad: str
    cidr: str
    gateway: str


NETS = (
    Net("net-a", "10.60.0.0/22", "10.60.0.1"),
    Net("net-b", "10.61.0.0/22", "10.61.0.1"),
    Net("net-f", "10.62.0.0/24", "10.62.0.1"),
)
DEPLOYMENT_POOL = ",".join(f"10.62.0.{n}" for n in range(100, 112))
STATEFULSET_POOL = ",".join(f"10.62.0.{n}" for n in range(150, 154))
FIXED = [f"10.62.0.{n}" for n in range(10, 60)]


def provider(nad: str, namespace: str) -> str:
    return f"{nad}.{namespace}"


def nad_config(nad: str, namespace: str) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": nad,
        "type": "macvlan",
        "master": MASTER,
        "mode": "bridge",
        "ipam": {
            "type": "kube-ovn",
            "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
            "provider": provider(nad, namespace),
        },
    }


def pod_metadata(
    namespace: str, nads: list[str], *, workload: str | None = None, **extra: str
) -> dict[str, Any]:
    annotations = {
        NETWORKS: ",".join(f"{namespace}/{nad}" for nad in nads),
        EXPECT: ",".join(provider(nad, namespace) for nad in nads),
        **{f"{provider('net-f', namespace)}.kubernetes.io/{k}": v for k, v in extra.items()},
    }
    labels = {"app": workload or "bare"} | ({WORKLOAD: workload} if workload else {})
    return {"annotations": annotations, "labels": labels}


def _template(namespace: str, nads: list[str], workload: str, **extra: str) -> dict[str, Any]:
    return {
        "metadata": pod_metadata(namespace, nads, workload=workload, **extra),
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def body(resource: Resource, metadata: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An object of ``resource`` as the apiserver wants it posted."""
    return {
        "apiVersion": resource.group_version,
        "kind": resource.kind,
        "metadata": metadata,
    } | fields


def prepare(kube: KubeClient, namespace: str) -> None:
    """The namespace, NADs, Subnets, Deployment and StatefulSet of a run."""
    kube.create(NAMESPACES, None, body(NAMESPACES, {"name": namespace}))
    for net in NETS:
        config = json.dumps(nad_config(net.nad, namespace))
        kube.create(NADS, namespace, body(NADS, {"name": net.nad}, spec={"config": config}))
        subnet = {"protocol": "IPv4", "provider": provider(net.nad, namespace)}
        subnet |= {"cidrBlock": net.cidr, "gateway": net.gateway}
        name = {"name": f"{namespace}-{net.nad}"}
        kube.create(SUBNETS, None, body(SUBNETS, name, spec=subnet))
    selector = {"matchLabels": {WORKLOAD: DEPLOYMENT}}
    template = _template(namespace, ["net-f"], DEPLOYMENT, ip_pool=DEPLOYMENT_POOL)
    spec = {"replicas": 2, "selector": selector, "template": template}
    kube.create(DEPLOYMENTS, namespace, body(DEPLOYMENTS, {"name": "dep"}, spec=spec))
    selector = {"matchLabels": {WORKLOAD: STATEFULSET}}
    template = _template(namespace, ["net-a", "net-f"], STATEFULSET, ip_pool=STATEFULSET_POOL)
    spec = {"replicas": 2, "selector": selector, "template": template, "serviceName": "sts"}
    spec["podManagementPolicy"] = "Parallel"
    kube.create(STATEFULSETS, namespace, body(STATEFULSETS, {"name": "sts"}, spec=spec))


@dataclass
class BarePod:
    uid: str
    nads: list[str]
    fixed: str | None
    sandbox: Sandbox | None = None


class Workload:
    """One pod operation every ``interval`` seconds on a thread, until stopped."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        history: History,
        rng: random.Random,
        *,
        cni: CniRunner,
        nodes: list[Node],
        interval: float = 1.0,
        sample: float = 0.3,
        population: int = 14,
    ) -> None:
        self.kube, self.ns, self.history, self.rng = kube, namespace, history, rng
        self.cni, self.nodes = cni, nodes
        self.interval, self.sample, self.population = interval, sample, population
        self.pods: dict[str, BarePod] = {}
        self.count = 0
        self.operations = 0
        self.failures = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="workload")

    def start(self) -> Workload:
        self._thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                action = self._choose()
                try:
                    action()
                    self.operations += 1
                except NicpoolError:
                    self.failures += 1  # the apiserver is down: the next step tries again

    def _choose(self) -> Any:
        grow = len(self.pods) < self.population
        weighted = [
            (self.create_bare, 4 if grow else 1),
            (self.create_two_nic, 2 if grow else 1),
            (self.create_fixed, 1),
            (self.delete_one, 1 if grow else 5),
            (self.recreate_one, 2),
            (self.scale_deployment, 1),
            (self.delete_workload_pod(DEPLOYMENT), 1),
            (self.scale_statefulset, 1),
            (self.delete_workload_pod(STATEFULSET), 2),
        ]
        actions, weights = zip(*weighted, strict=True)
        return self.rng.choices(actions, weights)[0]

    # -- bare pods ---------------------------------------------------------------

    def create_bare(self) -> None:
        self.create("bare", ["net-a"])

    def create_two_nic(self) -> None:
        self.create("two", ["net-a", "net-b"])

    def create_fixed(self) -> None:
        taken = {pod.fixed for pod in self.pods.values()}
        free = [ip for ip in FIXED if ip not in taken]
        if free:
            self.create("fixed", ["net-f"], fixed=self.rng.choice(free))

    def create(
        self,
        kind: str,
        nads: list[str],
        *,
        fixed: str | None = None,
        name: str | None = None,
        sandbox: Sandbox | None = None,
    ) -> str:
        """Create a bare pod; ``sandbox``: its NICs' ADD already started (before the pod)."""
        if name is None:
            self.count += 1
            name = f"{kind}-{self.count}"
        extra = {"ip_address": fixed} if fixed else {}
        pod_body = body(
            PODS,
            {"name": name, **pod_metadata(self.ns, nads, **extra)},
            spec={"containers": [{"name": "c", "image": "busybox"}]},
        )
        uid = str(self.kube.create(PODS, self.ns, pod_body)["metadata"]["uid"])
        pod = self.pods[name] = BarePod(uid, nads, fixed, sandbox)
        if sandbox is not None:
            sandbox.uid = uid
        elif self.nodes and self.rng.random() < self.sample:
            pod.sandbox = self.cni.attach(self.sandbox(name, uid, nads))
        return uid

    def sandbox(
        self, name: str, uid: str | None, nads: list[str], node: Node | None = None
    ) -> Sandbox:
        nics = [
            Nic(provider(nad, self.ns), f"net{n}", nad_config(nad, self.ns))
            for n, nad in enumerate(nads, start=1)
        ]
        return Sandbox(node or self.rng.choice(self.nodes), self.ns, name, nics, uid)

    def delete_one(self) -> None:
        if self.pods:
            self.delete(self.rng.choice(sorted(self.pods)))

    def delete(self, name: str) -> None:
        """Delete a bare pod; while the DELETE may not have happened, the pod stays known
        (its fixed address is not handed to a new pod)."""
        pod = self.pods[name]
        self._delete_pod(name, pod.uid)
        del self.pods[name]
        if pod.sandbox is not None:
            self.cni.detach(pod.sandbox)

    def recreate_one(self) -> None:
        if self.pods:
            name = self.rng.choice(sorted(self.pods))
            pod = self.pods[name]
            self.delete(name)
            self.create("", pod.nads, fixed=pod.fixed, name=name)

    def _delete_pod(self, name: str, uid: str) -> None:
        self.history.intents.append(Intent(time.time(), "delete-pod", self.ns, name, uid))
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            self.kube.request("DELETE", PODS.item(self.ns, name), body=options)
        except NicpoolError as exc:
            if getattr(exc, "reason", "") not in ("NotFound", "ApiConflict"):
                raise

    # -- workloads -----------------------------------------------------------------

    def scale_deployment(self) -> None:
        self._scale(DEPLOYMENTS, "dep", DEPLOYMENT, self.rng.randint(1, 4))

    def scale_statefulset(self) -> None:
        self._scale(STATEFULSETS, "sts", STATEFULSET, self.rng.randint(1, 4))

    def _scale(self, resource: Resource, name: str, workload: str, replicas: int) -> None:
        current = self.kube.get(resource, self.ns, name) or {}
        if replicas < int((current.get("spec") or {}).get("replicas", 0)):
            self.history.intents.append(Intent(time.time(), "scale-down", self.ns, workload))
        self.kube.merge_patch(resource, self.ns, name, {"spec": {"replicas": replicas}})

    def delete_workload_pod(self, workload: str) -> Any:
        def delete() -> None:
            query = {"labelSelector": f"{WORKLOAD}={workload}"}
            items = self.kube.request("GET", PODS.collection(self.ns), query=query)["items"]
            if items:
                meta = self.rng.choice(items)["metadata"]
                self._delete_pod(str(meta["name"]), str(meta["uid"]))

        delete.__name__ = f"delete_{workload}_pod"
        return delete
