"""The leader's workers: take a key from the queue, run its sync, schedule what comes next.

One sync function per kind of key (:data:`SYNCS`). The outcome decides the
key's future: done (its backoff forgotten), a temporary failure (retried
soon, counted by reason in ``nicpool_sync_retries_total``), a refusal
(retried with long backoff), or ``FencedOut`` (leadership is gone: stop
acting at once). Nothing a key does can end a worker's loop: an unexpected
exception is logged, counted in ``nicpool_worker_errors_total`` and the
worker goes on (``/readyz`` watches that the threads stay alive).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from reconciler import metrics
from reconciler.claimsync import sync_claim, sync_vm
from reconciler.ippoolsync import sync_ippool
from reconciler.podflow import settle_statefulset, sync_pod
from reconciler.runtime import Key, Runtime
from reconciler.stuckpods import sync_node
from reconciler.subnetsync import sync_subnet
from reconciler.vipsync import sync_vip
from store.errors import FencedOut, PermanentError, TemporaryError

log = logging.getLogger("nicpool.workers")

SYNCS: dict[str, Callable[[Runtime, str], bool]] = {
    "pod": sync_pod,
    "subnet": sync_subnet,
    "sts": settle_statefulset,
    "claim": sync_claim,
    "vm": sync_vm,
    "node": sync_node,
    "ippool": sync_ippool,
    "vip": sync_vip,
}
"""Key kind -> its sync; True when done, False when it must be retried later."""


def work(rt: Runtime, stop: threading.Event, on_fenced_out: Callable[[], None]) -> None:
    """Process keys until ``stop``; nothing a key does can end this loop."""
    while not stop.is_set():
        try:
            key = rt.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                if rt.leading:
                    process(rt, key, on_fenced_out)
            finally:
                rt.queue.done(key)
        except Exception:
            metrics.WORKER_ERRORS.inc()
            log.exception("worker survived an unexpected failure")


def process(rt: Runtime, key: Key, on_fenced_out: Callable[[], None]) -> None:
    kind, name = key
    try:
        ok = SYNCS[kind](rt, name)
    except FencedOut:
        log.error("fenced out while processing %s; stopping at once", key)
        on_fenced_out()
        return
    except TemporaryError as exc:
        metrics.SYNC_RETRIES.labels(exc.reason).inc()
        delay = rt.queue.backoff(key, base=rt.settings.retry_base, cap=30.0)
        log.info("%s %s: %s; retrying in %.2f s", kind, name, exc, delay)
        return
    except PermanentError as exc:
        delay = rt.queue.backoff(key, base=rt.settings.refusal_base, cap=300.0)
        log.warning("%s %s: %s (%s); retrying in %.0f s", kind, name, exc, exc.reason, delay)
        return
    except Exception:
        metrics.WORKER_ERRORS.inc()
        log.exception("%s %s: unexpected failure", kind, name)
        rt.queue.backoff(key, base=rt.settings.refusal_base, cap=300.0)
        return
    if ok:
        rt.queue.forget(key)
    else:
        rt.queue.backoff(key, base=rt.settings.refusal_base, cap=300.0)
