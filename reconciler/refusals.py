"""A pod nicpool cannot allocate for: how it is told, counted and tried again.

Every refusal (bad input, a full subnet, an address held by another pod)
becomes a Kubernetes Event on the pod (reason = the error's reason), a
metric (``nicpool_allocation_errors_total{reason}``, and
``nicpool_nad_errors_total`` for NAD problems) and a log line; the pod is
remembered among the refused, to be tried again early when something it may
have waited for changes (a NAD, Subnet or IPPool, a release), else after its
refusal backoff.

One refusal is routine rather than a problem with the pod: every free
address is only cooling down (``store.core.cooldown``). Its Event is Normal,
and the pod is tried again the moment the addresses it needs may be handed
out (:func:`retry_when_cooled`), not after a backoff that may be minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler import metrics
from reconciler.core.errors import NAD_REFUSALS
from reconciler.events import Involved
from reconciler.objects import meta, pod_ref
from reconciler.runtime import Runtime
from store.errors import PermanentError, SubnetCoolingDown

log = logging.getLogger("nicpool.pods")

COOLED_MARGIN = 0.05
"""Seconds past the end of a cool-down before the pod is tried again (clock granularity)."""


def involved(pod: Mapping[str, Any]) -> Involved:
    m = meta(pod)
    return Involved("Pod", "v1", str(m.get("namespace")), str(m.get("name")), str(m.get("uid")))


def refuse(
    rt: Runtime,
    key: str,
    pod: Mapping[str, Any],
    errors: Sequence[PermanentError],
) -> None:
    rt.refused.add(key)
    for error in errors:
        metrics.ALLOCATION_ERRORS.labels(error.reason).inc()
        if isinstance(error, NAD_REFUSALS):
            metrics.NAD_ERRORS.labels(error.reason).inc()
        log.warning("%s: refused (%s): %s", pod_ref(pod), error.reason, error)
        kind = "Normal" if isinstance(error, SubnetCoolingDown) else "Warning"
        rt.recorder.record(involved(pod), error.reason, str(error), kind=kind)


def retry_when_cooled(rt: Runtime, key: str, errors: Sequence[PermanentError]) -> None:
    """A pod refused only because every free address is cooling down is tried again
    once the addresses it needs may be handed out."""
    waits = [e.retry_after for e in errors if isinstance(e, SubnetCoolingDown)]
    if waits and len(waits) == len(errors):
        rt.queue.add_after(("pod", key), max(waits) + COOLED_MARGIN)
