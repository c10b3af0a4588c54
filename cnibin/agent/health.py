"""The agent's readiness: can it read etcd now?

Served by :class:`store.endpoints.ProbeServer` (``/metrics``, ``/healthz``,
``/readyz``). prometheus_client's ``start_http_server`` used to answer every
path with the metrics page, so the probes got 200 whatever the agent's state.

* ``/healthz`` (liveness) does not look at etcd: restarting the agent would
  not bring etcd back, and kubelet would only kill an agent that answers the
  plugin with a clean 503;
* ``/readyz`` (readiness) is 200 only while :class:`EtcdCheck`'s latest read
  succeeded and is recent, else 503 with the reason. The check is a cheap
  read of one key every :data:`CHECK_INTERVAL` seconds, on its own thread,
  so readiness follows etcd even when no CNI request arrives (the outcome of
  the last request alone would say nothing on a quiet node).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0
"""Seconds between two etcd reads (each bounded by the client's request deadline)."""
STALE_AFTER = 3 * CHECK_INTERVAL
"""A success older than this (say, a read stuck past its deadline) is not ready."""


class EtcdCheck:
    """Reads etcd every ``interval`` s; :meth:`status` says whether the latest read worked."""

    def __init__(self, read: Callable[[], object], *, interval: float = CHECK_INTERVAL) -> None:
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self._ok_at: float | None = None
        self._error = "no etcd read yet"
        self._healthy: bool | None = None
        """The latest outcome, to log transitions only."""
        self._thread = threading.Thread(target=self._run, name="etcd-check", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> tuple[bool, str]:
        ok_at = self._ok_at
        if ok_at is not None and time.monotonic() - ok_at <= max(STALE_AFTER, 3 * self._interval):
            return True, "ok"
        return False, f"etcd: {self._error}"

    def check_once(self) -> None:
        try:
            self._read()
        except Exception as error:  # any failure means "not ready"; the reason is reported
            if self._healthy is not False:
                log.warning("not ready: etcd read failed: %s", error)
            self._healthy, self._ok_at = False, None
            self._error = str(error) or type(error).__name__
            return
        if self._healthy is not True:
            log.info("ready: etcd answers")
        self._healthy, self._ok_at = True, time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self._interval)
