"""Retry policies, defined once.

Temporary errors (a lost compare-and-swap, etcd unreachable) are retried
with jittered exponential backoff, logged as "attempt N failed; will retry
in S s" and counted in ``nicpool_retries_total{operation}``. Permanent
errors and ``FencedOut`` are never retried: retrying cannot help the first,
and must not happen after the second.
"""

from __future__ import annotations

import functools
import logging

import tenacity
from prometheus_client import Counter

from store.errors import TemporaryError

log = logging.getLogger("nicpool.retry")

STORE_OPERATIONS = ("allocate", "release", "put_subnet", "delete_subnet")
"""The ``operation`` label values the store's own policies use."""

RETRIES = Counter(
    "nicpool_retries_total",
    "Operations retried after a temporary error (lost CAS race, etcd unavailable).",
    ["operation"],
)


def retrying(
    operation: str, *, subject: object = "", deadline: float = 30.0, max_wait: float = 1.0
) -> tenacity.Retrying:
    """A policy for one ``operation``: temporary errors retried until ``deadline`` seconds.

    ``operation`` is a fixed word (it is a metric label, so it must not grow
    with the cluster); ``subject`` (a subnet, a pod NIC) goes to the log only.
    Policies are cheap to use but not to build, so they are built once per
    operation and subject and reused (tenacity keeps per-call state in a
    thread-local).
    """
    return _policy(operation, str(subject), deadline, max_wait)


@functools.lru_cache(maxsize=1024)
def _policy(operation: str, subject: str, deadline: float, max_wait: float) -> tenacity.Retrying:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        RETRIES.labels(operation).inc()
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "%s %s: attempt %d failed (%s); will retry in %.3f s",
            operation,
            subject,
            state.attempt_number,
            error,
            delay,
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TemporaryError),
        stop=tenacity.stop_after_delay(deadline),
        wait=tenacity.wait_exponential_jitter(multiplier=0.005, max=max_wait),
        before_sleep=before_sleep,
        reraise=True,
    )
