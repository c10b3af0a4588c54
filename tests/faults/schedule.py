"""Which faults, in which order: each alone (the CI schedule), or mixed at random (chaos).

*Alone*: every fault of :data:`ALONE` once, in a seeded order, with a calm
gap before each, so a finding points at one fault. *Mixed*: for a duration,
faults drawn at random with random gaps; about a third of them start while
the previous one still holds, provided they break different things
(:data:`nemesis.RESOURCES`), so faults also meet each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.faults.history import FaultWindow, Probe
from tests.faults.nemesis import FAULTS, RESOURCES, Context, run_fault

ALONE = (
    "leader-kill",
    "leader-pause",
    "etcd-member-kill",
    "etcd-leader-kill",
    "quorum-loss",
    "apiserver-restart",
    "apiserver-resets",
    "controller-blackhole",
    "agent-restart-during-add",
    "partition-etcd",
    "partition-apiserver",
)
MIXED = (*ALONE, "etcd-slow")


class Nemesis:
    def __init__(self, ctx: Context, *, calm: float, out: Callable[[str], None]) -> None:
        self.ctx, self.calm, self.out = ctx, calm, out
        self.windows: list[FaultWindow] = []
        self.started = time.time()
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.failures: list[Probe] = []
        """Faults that could not be injected or healed (the run reports each)."""

    def alone(self, names: tuple[str, ...]) -> list[FaultWindow]:
        order = list(names)
        self.ctx.rng.shuffle(order)
        for name in order:
            if self.ctx.stop.wait(self.calm):
                break
            self._run(name)
        return self.windows

    def mixed(self, duration: float) -> list[FaultWindow]:
        rng, until = self.ctx.rng, time.monotonic() + duration
        while time.monotonic() < until and not self.ctx.stop.is_set():
            overlap = rng.random() < 0.35
            if not overlap:
                self._join()
                if self.ctx.stop.wait(rng.uniform(1.0, self.calm)):
                    break
            with self.lock:
                free = [n for n in MIXED if RESOURCES[n] not in self.busy]
                name = rng.choice(free) if free else None
                if name is not None:
                    self.busy.add(RESOURCES[name])
            if name is None:
                self._join()
                continue
            thread = threading.Thread(target=self._run, args=(name,), daemon=True)
            self.threads.append(thread)
            thread.start()
            self.ctx.stop.wait(rng.uniform(0.5, 3.0))  # let the first fault bite before the next
        self._join()
        return self.windows

    def _join(self) -> None:
        for thread in self.threads:
            thread.join()
        self.threads.clear()

    def _run(self, name: str) -> None:
        start = time.time()
        try:
            window = run_fault(self.ctx, name)
        except Exception as exc:  # the run must say so, and count the time as faulty
            window = FaultWindow(name, start, time.time(), f"failed: {type(exc).__name__}: {exc}")
            self.failures.append(Probe(f"fault {name} ran", False, window.detail))
        finally:
            with self.lock:
                self.busy.discard(RESOURCES[name])
        self.windows.append(window)
        self.out(
            f"  t+{window.start - self.started:6.1f} s  {name:<25} {window.detail} "
            f"({window.end - window.start:.1f} s)"
        )


__all__ = ["ALONE", "FAULTS", "MIXED", "Nemesis"]
