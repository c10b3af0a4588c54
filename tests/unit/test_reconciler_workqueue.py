"""The per-pod work queue: one worker per key at a time, repeated adds collapse."""

from __future__ import annotations

import threading

import pytest

from reconciler.workqueue import WorkQueue

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_adds_while_queued_collapse_into_one_run() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("pod-a")
    queue.add("pod-b")
    assert [queue.get(0), queue.get(0), queue.get(0)] == ["pod-a", "pod-b", None]


def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("pod-a")
    assert queue.get(0) == "pod-a"
    queue.add("pod-a")  # an event arrives while a worker holds the pod
    assert queue.get(0) is None
    queue.done("pod-a")
    assert queue.get(0) == "pod-a"
    queue.done("pod-a")
    assert queue.pending() == 0


def test_delayed_retries_become_due_with_the_clock() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    assert queue.backoff("pod-a", base=1.0, cap=8.0) == 1.0
    assert queue.backoff("pod-a", base=1.0, cap=8.0) == 2.0
    assert queue.get(0) is None
    clock.now = 1.5
    assert queue.get(0) == "pod-a"
    queue.done("pod-a")
    queue.forget("pod-a")
    assert queue.backoff("pod-a", base=1.0, cap=8.0) == 1.0


def test_clear_drops_everything_and_shutdown_wakes_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add_after("b", 100)
    queue.clear()
    assert queue.pending() == 0
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(queue.get()))
    worker.start()
    queue.shutdown()
    worker.join(10)
    assert got == [None]


def test_many_workers_never_run_one_key_concurrently() -> None:
    queue: WorkQueue[int] = WorkQueue()
    running: set[int] = set()
    overlaps: list[int] = []
    runs: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get(0.2)) is not None:
            with lock:
                if key in running:
                    overlaps.append(key)
                running.add(key)
            for _ in range(200):
                pass
            with lock:
                running.discard(key)
                runs.append(key)
            queue.done(key)

    for i in range(400):
        queue.add(i % 7)
    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for i in range(400):
        queue.add(i % 7)
    for t in threads:
        t.join(30)
    assert overlaps == []
    assert set(runs) == set(range(7))


def test_urgent_keys_are_served_first_and_in_their_own_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("recheck-1")
    queue.add("new-1", front=True)
    queue.add("recheck-2")
    queue.add("new-2", front=True)
    order = [queue.get(0) for _ in range(4)]
    assert order == ["new-1", "new-2", "recheck-1", "recheck-2"]


def test_a_key_refused_for_days_keeps_its_capped_backoff() -> None:
    """Issue 8 item 4: 2.0**1024 overflowed after ~85 hours of one refused pod and
    killed the worker that computed it."""
    queue: WorkQueue[str] = WorkQueue(clock=FakeClock())
    delays = [queue.backoff("pod-a", base=5.0, cap=300.0) for _ in range(5000)]
    assert delays[:3] == [5.0, 10.0, 20.0]
    assert delays[-1] == 300.0
    assert max(delays) == 300.0
