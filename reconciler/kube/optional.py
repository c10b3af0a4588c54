"""An informer for a resource whose CRD may not be installed.

nicpool reads KubeVirt's VirtualMachines (keep-vm-ip) and IPAMClaims, but a
cluster without KubeVirt has no VirtualMachine CRD, and one installed
without nicpool's CRDs may lack IPAMClaims. Their absence must not keep the
controller from leading (it waits for every informer to sync), nor flood
the log. So a 404 on the list reads as "no such objects": the cache is
emptied (what a removed CRD took away is reported as deleted), the informer
counts as synced and healthy, and the list is tried again every
``recheck`` seconds, quietly, until the CRD appears.
"""

from __future__ import annotations

import logging

from reconciler.kube.errors import NotFound
from reconciler.kube.informer import Informer

log = logging.getLogger("nicpool.informer")

RECHECK = 30.0
"""Seconds between looks for a CRD that is not installed."""


class OptionalInformer(Informer):
    recheck: float = RECHECK
    absent: bool = False
    """True while the apiserver does not serve the resource."""

    def healthy(self) -> bool:
        """While the resource is absent there is no watch to go silent: alive is enough."""
        if self.absent:
            running = self._thread is None or self._thread.is_alive()
            return self.synced.is_set() and running
        return super().healthy()

    def relist(self) -> str:
        while True:
            try:
                version = super().relist()
            except NotFound:
                self._absent()
                if self.stop.wait(self.recheck):
                    raise
                continue
            if self.absent:
                log.info("%s: now served by the apiserver", self.resource.plural)
            self.absent = False
            return version

    def _watch(self) -> None:
        try:
            super()._watch()
        except NotFound:
            self.version = None  # the CRD went away: relist (and wait for it)
            raise

    def _absent(self) -> None:
        if not self.absent:
            log.info(
                "%s: not served by the apiserver (CRD not installed); treated as none, "
                "looking again every %.0f s",
                self.resource.plural,
                self.recheck,
            )
        self.absent = True
        with self._lock:
            gone, self._cache = list(self._cache.values()), {}
        for obj in gone:
            self._emit(obj, None)
        self.last_contact = self._clock()
        self.synced.set()
