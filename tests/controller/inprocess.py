"""A real ``Controller`` run inside the test process, against the real apiserver and etcd.

Most controller-tier tests run ``nicpool-controller`` as a process, black
box. A few defects live between the controller and its connections (a watch
broken mid-stream, a pod watch that lags the apiserver), and the way to pin
them on the real apiserver is to hand the controller a real ``KubeClient``
whose watch the test can break or hold: :class:`UnreliableKube`. Everything
else is the production code path: the same informers, workers, election and
store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler import workers
from reconciler.controller import Controller
from reconciler.kube.client import JSON, KubeClient
from reconciler.kube.config import load_endpoint
from reconciler.kube.errors import KubeUnavailable
from reconciler.kube.informer import object_key
from reconciler.kube.resources import IPS, PODS, Resource
from reconciler.runtime import Runtime, Settings
from store.config import EtcdSettings
from store.etcd import EtcdClient, connect


class UnreliableKube(KubeClient):
    """The real client; the test can break the pod watch mid-stream or hold it.

    ``break_pod_watch()``: the next pod event raises a connection error after
    it is read (as a reset connection does), so the informer must resume.
    ``hold_pod_watch()`` / ``release_pod_watch()``: pod events stop reaching
    the controller (its cache lags the apiserver) until released.
    ``fail_next_delete(resource)``: the next DELETE of that resource fails as
    a reset connection does, before it reaches the apiserver.
    ``hold_lists_after(resource, key)``: a list of that resource stops after
    the page holding ``key`` until :meth:`release_lists_after` (the rest of a
    huge list still on its way); ``page`` (constructor) makes every page that
    small.
    """

    def __init__(self, endpoint: Any, *, page: int | None = None) -> None:
        super().__init__(endpoint)
        self.page = page
        self._break = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self.pod_watch_breaks = 0
        self._fail_delete: set[str] = set()
        self.failed_deletes = 0
        self._held_lists: dict[str, threading.Event] = {}
        self._held_after: dict[tuple[str, str], threading.Event] = {}

    def hold_lists(self, resource: Resource) -> None:
        """``resource``'s lists wait until :meth:`release_lists` (a slow, huge list)."""
        self._held_lists[resource.plural] = threading.Event()

    def hold_lists_after(self, resource: Resource, key: str) -> None:
        """``resource``'s lists stop after the page holding ``key`` until released."""
        self._held_after[(resource.plural, key)] = threading.Event()

    def release_lists_after(self, resource: Resource, key: str) -> None:
        self._held_after.pop((resource.plural, key)).set()

    def release_lists(self, resource: Resource) -> None:
        self._held_lists.pop(resource.plural).set()

    def release_every_list(self) -> None:
        """Let every held list go on (a test's cleanup)."""
        for held in [*self._held_lists.values(), *self._held_after.values()]:
            held.set()
        self._held_lists.clear()
        self._held_after.clear()

    def list_pages(
        self, resource: Resource, *, page: int = 500
    ) -> Iterator[tuple[list[JSON], str]]:
        held = self._held_lists.get(resource.plural)
        if held is not None:
            held.wait()
        for items, version in super().list_pages(resource, page=self.page or page):
            yield items, version
            for obj in items:
                held = self._held_after.get((resource.plural, object_key(obj)))
                if held is not None:
                    held.wait()

    def break_pod_watch(self) -> None:
        self._break.set()

    def fail_next_delete(self, resource: Resource) -> None:
        self._fail_delete.add(resource.plural)

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        if resource.plural in self._fail_delete:
            self._fail_delete.discard(resource.plural)
            self.failed_deletes += 1
            raise KubeUnavailable(f"DELETE {resource.plural}/{name}: connection reset (injected)")
        return super().delete(resource, namespace, name)

    def hold_pod_watch(self) -> None:
        self._flowing.clear()

    def release_pod_watch(self) -> None:
        self._flowing.set()

    def watch(
        self, resource: Resource, resource_version: str, *, timeout_seconds: int = 300
    ) -> Iterator[tuple[str, JSON]]:
        if resource is PODS:
            self._flowing.wait()  # held: as silent as a black-holed connection
        events = super().watch(resource, resource_version, timeout_seconds=timeout_seconds)
        for kind, obj in events:
            if resource is PODS:
                self._flowing.wait()
                if self._break.is_set():
                    self._break.clear()
                    self.pod_watch_breaks += 1
                    raise KubeUnavailable("watch pods: connection reset (injected by the test)")
            yield kind, obj


@dataclass
class InProcessController:
    controller: Controller
    kube: UnreliableKube
    etcd: EtcdClient
    prefix: str
    runner: threading.Thread | None = None
    identity: str = field(default_factory=lambda: f"inproc-{uuid.uuid4().hex[:6]}")

    @property
    def rt(self) -> Any:
        return self.controller.rt

    def wait_leading(self) -> None:
        wait_for(
            f"{self.identity} to lead and be ready to allocate",
            lambda: self.rt.leading and self.controller.ready_to_allocate.is_set(),
            60,
        )

    def wait_index_loaded(self) -> None:
        wait_for("the attachment index to load", lambda: self.rt.index.loaded, 60)

    def idle(self) -> bool:
        """Nothing queued or running (refused keys may wait in the backoff heap)."""
        queue = self.controller.rt.queue
        return queue.depth() == 0 and queue.urgent() == 0

    def wait_idle(self) -> None:
        wait_for("the workers to be idle", self.idle, 60)

    def wait_settled(self) -> None:
        """The takeover is over: every pod revisited, IP objects listed, nothing queued
        or running. A pod created after this is visited for its own events only."""

        def settled() -> bool:
            return (
                self.controller.took_over.is_set()
                and self.rt.informer(IPS).synced.is_set()
                and self.idle()
                and self.controller.ready()
            )

        wait_for("the takeover to settle", settled, 60)

    def stop(self) -> None:
        self.controller.shutdown()
        if self.runner is not None:
            self.runner.join(30)
        self.etcd.close()


def watch_syncs(
    monkeypatch: pytest.MonkeyPatch, kind: str, seen: Callable[[Runtime, str], object]
) -> None:
    """``seen(rt, name)`` runs before every sync of a ``kind`` key; the real sync after."""
    real = workers.SYNCS[kind]

    def watched(rt: Runtime, name: str) -> bool:
        seen(rt, name)
        return real(rt, name)

    monkeypatch.setitem(workers.SYNCS, kind, watched)


def network_and_controller(
    plane: ControlPlane, namespace: str, cidr: str, **settings: Any
) -> Iterator[tuple[Cluster, str, InProcessController]]:
    """A kube-ovn IPAM network in ``namespace`` (NAD ``net``, Subnet ``<ns>-net``) and a
    leading in-process controller; the Subnet is deleted and the controller stopped after."""
    cluster = Cluster(plane.api_client())
    provider = cluster.ipam_network(namespace, f"{namespace}-net", cidr)
    controller = start_controller(plane, **settings)
    try:
        yield cluster, provider, controller
    finally:
        controller.stop()
        cluster.delete_cluster_object("subnets", f"{namespace}-net")


def start_controller(
    plane: ControlPlane,
    *,
    prefix: str | None = None,
    kube: UnreliableKube | None = None,
    **settings: Any,
) -> InProcessController:
    """A leading in-process controller on ``plane`` with its own etcd prefix."""
    assert plane.etcd is not None
    kube = kube or UnreliableKube(load_endpoint(str(plane.kubeconfig)))
    etcd = connect(EtcdSettings(endpoints=(plane.etcd.endpoint,)))
    prefix = prefix or f"/nicpool-inproc-{uuid.uuid4().hex[:8]}/v1/"
    # The default election TTL (10 s): a loaded machine does not starve its
    # keep-alives, and a stopped controller resigns, so no successor waits for it.
    options: dict[str, Any] = {"workers": 4, **settings}
    identity = f"inproc-{uuid.uuid4().hex[:6]}"
    controller = Controller(
        kube=kube, etcd=etcd, prefix=prefix, settings=Settings(identity=identity, **options)
    )
    handle = InProcessController(controller, kube, etcd, prefix, identity=identity)
    controller.start()
    handle.runner = controller.run_in_thread()
    handle.wait_leading()
    return handle
