"""The controller process: informers for every replica, work for the leader only.

Every replica lists and watches Pods, NADs, Subnets, IPs, IPPools,
ReplicaSets, StatefulSets, IPAMClaims and KubeVirt VirtualMachines (the last
two optional: a missing CRD reads as none), so a standby's caches are warm
when it takes over. Only the replica holding the etcd election acts; it carries the
fencing token into every store transaction. When the election reports the
lease lost, ``fence_value`` is cleared at once: workers stop taking work,
any in-flight store write fails its fence compare, and the queue is
dropped; the replica then campaigns again as a standby.

A replica campaigns once the caches planning reads are synced; the pod list
(the longest: 50,000 pods take seconds) may still be arriving. A new leader
drops whatever its store cache held from an earlier term, registers every
Subnet, queues each new pod (no ``allocated`` annotation) as its list page
arrives, loads the attachment index (one paged etcd range read), then, the
pod list complete, enqueues every pod: the workflow is idempotent, so
half-done work of the previous leader is finished, never duplicated.

Nothing here exits on a failure (DESIGN.md: a process never exits on a
temporary error). A failure while leading steps down and campaigns again
after a pause; a worker logs, counts and goes on; an informer relists. And
every loop says how it is doing: :meth:`Controller.ready` (``/readyz``) is
false while a worker thread or the leadership loop is dead or an informer
is stuck, so a silently broken replica is restarted, not trusted.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from reconciler import metrics
from reconciler.events import EventRecorder
from reconciler.gcsweep import GarbageCollector
from reconciler.handlers import Handlers, announced
from reconciler.kube.client import KubeClient
from reconciler.kube.informer import Informer, object_key
from reconciler.kube.optional import OptionalInformer
from reconciler.kube.resources import IPPOOLS, IPS, NODES, PODS, SUBNETS, VIPS
from reconciler.objects import meta, node_readiness
from reconciler.runtime import OPTIONAL, WATCHED, Key, Runtime, Settings
from reconciler.statuses import refresh
from reconciler.subnetsync import sync_subnet
from reconciler.views import Views
from reconciler.workers import work
from reconciler.workqueue import WorkQueue
from store.core.vips import is_vip_ref
from store.election import Election
from store.errors import FencedOut, TemporaryError
from store.etcd import EtcdClient
from store.leases import Ipam
from store.subnets import Subnets

log = logging.getLogger("nicpool.controller")
T = TypeVar("T")

CAMPAIGN_ROUND = 0.5
"""Seconds a standby waits on its predecessor before looking at ``stop`` again."""
RETRY_PAUSE = 1.0
"""Seconds between attempts after leading failed (the next campaign, a takeover step)."""


class Controller:
    def __init__(
        self, *, kube: KubeClient, etcd: EtcdClient, prefix: str, settings: Settings
    ) -> None:
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.wake = threading.Event()
        """Set when the leader's loop must look up at once (lease lost, shutdown)."""
        self.ready_to_allocate = threading.Event()
        self.took_over = threading.Event()
        """Set once a new leader has queued its revisit of every pod (cleared on step-down)."""
        queue: WorkQueue[Key] = WorkQueue()
        self.rt = Runtime(
            settings=settings,
            kube=kube,
            ipam=Ipam(etcd, prefix, cooldown=settings.address_cooldown),
            subnets=Subnets(etcd, prefix),
            recorder=EventRecorder(kube, instance=settings.identity),
            informers={},
            queue=queue,
            views=Views(keep_vm_ip=settings.keep_vm_ip),
        )
        handlers = Handlers(self.rt).by_resource()
        for resource in WATCHED:
            kind = OptionalInformer if resource.plural in OPTIONAL else Informer
            self.rt.informers[resource.plural] = kind(
                kube,
                resource,
                handler=handlers.get(resource.plural),
                stop=self.stop,
                watch_timeout=settings.watch_timeout,
                on_relist=self._ip_objects_listed if resource is IPS else None,
            )
        self.election = Election(
            etcd, prefix, identity=settings.identity, ttl=settings.election_ttl, on_lost=self._lost
        )
        self.gc = GarbageCollector(self.rt)
        self._threads: list[threading.Thread] = []
        """Workers and the leadership loop: each must stay alive (see :meth:`ready`)."""
        metrics.QUEUE_DEPTH.set_function(queue.depth)
        metrics.STUCK_PODS.set_function(lambda: len(self.rt.stuck))
        metrics.LEADER.set(0)
        metrics.publish_zeroes()

    # -- lifecycle -----------------------------------------------------------

    def synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self.rt.informers.values())

    def ready(self) -> bool:
        """``/readyz``: every informer healthy (synced, running, recently heard from)
        and every worker and the leadership loop alive."""
        return self.problems() == []

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``'s answer: ready, or the problems, one per line."""
        found = self.problems()
        return (not found, "ok" if not found else "\n".join(found))

    def problems(self) -> list[str]:
        """What keeps this replica from being ready, for ``/readyz`` and the log."""
        found = [
            f"informer {plural} stalled or not synced"
            for plural, informer in self.rt.informers.items()
            if not informer.healthy()
        ]
        found += [f"thread {t.name} died" for t in self._threads if not t.is_alive()]
        return found

    def synced_to_lead(self) -> bool:
        """Every cache planning reads. Pods may still be listing (each is queued as
        its page arrives, see :meth:`_lead`), and IP objects (a view, only checked
        for drift) may lag."""
        return self._synced_but(IPS.plural, PODS.plural)

    def _synced_but(self, *lagging: str) -> bool:
        return all(
            informer.synced.is_set()
            for plural, informer in self.rt.informers.items()
            if plural not in lagging
        )

    def start(self) -> None:
        for plural, informer in self.rt.informers.items():
            if plural != IPS.plural:
                informer.start()
        threading.Thread(target=self._start_ip_informer, name="ips-later", daemon=True).start()
        for n in range(self.rt.settings.workers):
            worker = threading.Thread(
                target=work, args=(self.rt, self.stop, self._lost), name=f"worker-{n}", daemon=True
            )
            worker.start()
            self._threads.append(worker)

    def run_in_thread(self) -> threading.Thread:
        """:meth:`run` on a thread of its own, watched by :meth:`ready` (tests, embedding)."""
        runner = threading.Thread(target=self.run, name="leadership", daemon=True)
        runner.start()
        self._threads.append(runner)
        return runner

    def _start_ip_informer(self) -> None:
        """List IP objects once every other cache is synced, Pods included.

        They are the largest list (one object per NIC) and only checked for
        drift, so listing them alongside Pods would only slow the list a
        new leader queues new pods from, and its index load.
        """
        while not self.stop.is_set() and not self._synced_but(IPS.plural):
            self.stop.wait(0.02)
        if not self.stop.is_set():
            self.rt.informer(IPS).start()

    def _ip_objects_listed(self) -> None:
        """Visit the pods whose IP objects waited for this list (on the leader)."""
        rt = self.rt
        with rt.ip_objects_lock:
            pending, rt.ip_objects_pending = rt.ip_objects_pending, set()
        if rt.leading:
            for key in pending:
                rt.queue.add(("pod", key))

    def run(self) -> None:
        """Campaign, lead until the lease is lost, campaign again; until ``stop``.

        On the way out the election is resigned (the lease revoked), leader or
        standby: a standby takes over at once instead of after the TTL, and no
        key of a dead replica stays in line ahead of live ones. It is done
        here, on the thread that campaigns, never from the signal handler,
        which could interleave with a campaign and join the election again.
        """
        try:
            self._campaign_and_lead()
        finally:
            self.election.resign()

    def _campaign_and_lead(self) -> None:
        while not self.stop.is_set() and not self.synced_to_lead():
            self.stop.wait(0.02)
        while not self.stop.is_set():
            try:
                # Short rounds: a standby notices ``stop`` between them (a
                # round is one range read and one watch on the predecessor).
                fence = self.election.campaign(timeout=CAMPAIGN_ROUND)
            except TimeoutError:
                continue
            except Exception as exc:  # etcd away, a bug: campaign again, never exit
                log.warning("campaign failed: %s; retrying", exc)
                self.stop.wait(RETRY_PAUSE)
                continue
            self.lost.clear()
            self.wake.clear()
            if self.stop.is_set():
                break
            self.rt.fence_value = fence
            metrics.LEADER.set(1)
            metrics.LEADER_CHANGES.inc()
            try:
                self._lead()
            except FencedOut:
                log.error("fenced out while leading; stepping down")
            except Exception:
                # A takeover step failed for good (retries exhausted) or a bug:
                # step down and campaign again rather than die, so no later
                # leader dies of the same thing either.
                log.exception("leading failed; stepping down and campaigning again")
                self.stop.wait(RETRY_PAUSE)
            finally:
                self._step_down()

    def shutdown(self) -> None:
        """Stop acting at once and wake ``run``, which resigns and returns.

        Safe from a signal handler: it only sets flags (no etcd call).
        """
        self.stop.set()
        self.rt.fence_value = None
        self.rt.queue.shutdown()
        self.wake.set()

    def _lost(self) -> None:
        # Called from the election's keep-alive thread: stop acting at once.
        self.rt.fence_value = None
        self.lost.set()
        self.wake.set()

    def _step_down(self) -> None:
        self.rt.fence_value = None
        self.rt.queue.clear()
        self.rt.stuck.clear()  # the next leader looks again (and reports again)
        self.ready_to_allocate.clear()
        self.took_over.clear()
        # A deposed replica must not keep exporting pool numbers it no longer
        # refreshes (the leader's are the truth; stale ones would be summed).
        metrics.SUBNET_ADDRESSES.clear()
        metrics.IPPOOL_ADDRESSES.clear()
        metrics.LEADER.set(0)
        metrics.LEADER_CHANGES.inc()

    # -- leading -------------------------------------------------------------

    def _lead(self) -> None:
        """Ready to allocate first, then load the index and revisit every pod.

        New pods (no ``allocated`` annotation yet) are queued before the pod
        list is complete and before the index is read: allocation is
        idempotent in the store, so they need no index, and each is queued as
        its page arrives (the pods cached so far here, later ones by the pod
        handler, as this replica leads by now). At 50,000 pods the list takes
        seconds; a new pod does not wait for it. Everything that trusts
        completeness waits for what it trusts: release and GC for the index
        (``AttachmentIndex.loaded``), the revisit of every pod, the stuck-pod
        check and GC for the whole pod list too.

        The index is read once the pod list is in: decoding 100,000
        attachments alongside 50,000 pods only slows both (one interpreter),
        and a new pod on the list's last page would wait for the two.
        """
        rt = self.rt
        rt.ipam.forget_all()  # nothing cached in an earlier term is trusted
        rt.index.begin_load()
        self._register()
        for pod in rt.informer(PODS).items():
            if not announced(pod):
                rt.queue.add(("pod", object_key(pod)), front=True)
        self.ready_to_allocate.set()
        log.info(
            "%s leads: ready to allocate %.2f s after start",
            rt.settings.identity,
            time.monotonic() - self.started,
        )
        self._refresh_usage()
        if not self._pods_listed():
            return
        # Let the new pods through first: decoding every attachment holds the
        # interpreter for a while, and they need no index (bounded wait).
        settle = time.monotonic() + 2.0
        while rt.queue.urgent() and time.monotonic() < settle and rt.leading:
            self.lost.wait(0.01)
        began = time.monotonic()
        attachments = self._while_leading("load the attachment index", rt.ipam.attachments)
        # Pod NICs only: a Vip's reservation has no pod to follow (vipsync owns it).
        rt.index.finish_load(a for a in attachments if not is_vip_ref(a.ref))
        log.info(
            "%d attachments indexed in %.2f s (%.2f s after start)",
            len(rt.index),
            time.monotonic() - began,
            time.monotonic() - self.started,
        )
        for pod in rt.informer(PODS).items():
            rt.queue.add(("pod", object_key(pod)))
        for att in rt.index.all():
            rt.queue.add(("pod", str(att.ref.pod)))
        for node in rt.informer(NODES).items():
            if not node_readiness(node).ready:
                rt.queue.add(("node", str(meta(node).get("name"))))
        self.took_over.set()
        self.gc.reset()
        next_gc = time.monotonic() + rt.settings.gc_interval
        while not self.stop.is_set() and rt.leading:
            self.wake.wait(rt.settings.status_interval)
            if not rt.leading:
                break
            self._refresh_usage()
            if time.monotonic() >= next_gc:
                self._guard(self.gc.run_once)
                next_gc = time.monotonic() + rt.settings.gc_interval

    def _pods_listed(self) -> bool:
        """Wait (while leading) until the pod list is complete; False when leading ended."""
        pods = self.rt.informer(PODS)
        while not pods.synced.wait(0.05):
            if self.stop.is_set() or not self.rt.leading:
                return False
        return True

    def _register(self) -> None:
        """Every Subnet registered (synchronously: planning needs them in the store);
        every IPPool and Vip queued (their status, finalizer, reservation)."""
        rt = self.rt
        for subnet in rt.informer(SUBNETS).items():
            name = str(meta(subnet).get("name"))
            self._while_leading(
                f"register subnet {name}", functools.partial(sync_subnet, rt, name, status=False)
            )
        for kind, resource in (("ippool", IPPOOLS), ("vip", VIPS)):
            for obj in rt.informer(resource).items():
                rt.queue.add((kind, str(meta(obj).get("name"))))

    def _while_leading(self, what: str, step: Callable[[], T]) -> T:
        """Run a takeover step, retrying temporary errors with backoff while this
        replica still leads (FencedOut and other errors go up: step down)."""
        delay = 0.2
        while True:
            try:
                return step()
            except TemporaryError as exc:
                if not self.rt.leading or self.stop.is_set():
                    raise
                log.warning("%s failed: %s; retrying in %.1f s", what, exc, delay)
                self.lost.wait(delay)
                delay = min(delay * 2, 10.0)

    def _refresh_usage(self) -> None:
        """Subnet and IPPool status and usage metrics from the bitmaps, every Subnet."""
        for subnet_name in list(self.rt.views.all_subnets):
            self._guard(lambda s=subnet_name: refresh(self.rt, s))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except FencedOut:
            raise
        except Exception as exc:  # a periodic task never ends the term
            log.warning("periodic task failed: %s", exc)
