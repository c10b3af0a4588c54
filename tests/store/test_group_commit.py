"""Group commit (``store.groupcommit``): callers queued behind a batch in flight.

A client whose allocation transactions wait at gates the test opens lets each
test put batch k in flight, have other callers queue behind it, and then
decide what happens: k commits and the queue is handed to one of them, k
fails, another writer moves the chunk between k and k+1, k commits but its
answer is lost, the writer was deposed, the queue does not fit in one
transaction. Each test checks what a user would notice: every caller
answered, each with an address of its own, and etcd agreeing with itself
(bits, leases, attachments) and with what the callers were told.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from ops.lab.controllers import wait_for
from ops.lab.etcd import EtcdServer
from store import groupcommit
from store.config import EtcdSettings
from store.core.identity import Revision, SubnetName
from store.core.ops import Put, TxnResult
from store.errors import FencedOut, SubnetExhausted, Unavailable
from store.etcd import EtcdClient
from store.leases import UNFENCED, Fence, Fencing, Ipam, Result
from tests.store.helpers import (
    NET1,
    attachment,
    attachment_addresses,
    bitmap_addresses,
    ips,
    lease_addresses,
    ref,
    register,
    request,
)

pytestmark = pytest.mark.store


class Gate:
    """One allocation transaction held until :meth:`open` (and how it then ends)."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._opened = threading.Event()
        self.fail: str | None = None

    def open(self, fail: str | None = None) -> None:
        """Let it go: sent as it is, or ``fail`` "before" it reaches etcd, or "after"
        it committed (its answer lost)."""
        self.fail = fail
        self._opened.set()

    def wait(self) -> None:
        self.reached.set()
        assert self._opened.wait(60), "a gate was never opened"


class GatedClient(EtcdClient):
    """The real client; each allocation transaction (one that writes an attachment)
    waits at the next gate queued by :meth:`hold_next`, if any."""

    def __init__(self, settings: EtcdSettings) -> None:
        super().__init__(settings)
        self.gates: deque[Gate] = deque()
        self.allocations = 0
        self._lock = threading.Lock()

    def hold_next(self) -> Gate:
        gate = Gate()
        self.gates.append(gate)
        return gate

    def txn(self, compares: Any, success: Any, failure: Any = ()) -> TxnResult:
        if not any(isinstance(op, Put) and "/attachments/" in op.key for op in success):
            return super().txn(compares, success, failure)
        with self._lock:
            gate = self.gates.popleft() if self.gates else None
            self.allocations += 1
        if gate is not None:
            gate.wait()
            if gate.fail == "before":
                raise Unavailable("injected: etcd unreachable")
            if gate.fail == "after":
                super().txn(compares, success, failure)
                raise Unavailable("injected: the answer was lost")
        return super().txn(compares, success, failure)


@pytest.fixture
def gated(etcd_server: EtcdServer) -> Iterator[GatedClient]:
    connection = GatedClient(EtcdSettings(endpoints=(etcd_server.endpoint,)))
    yield connection
    connection.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(64)
    yield executor
    # A caller never answered fails its test (result() times out); do not hang here too.
    executor.shutdown(wait=False, cancel_futures=True)


def allocate(ipam: Ipam, pod: str, fence: Fencing = UNFENCED) -> Callable[[], list[Result]]:
    return lambda: ipam.allocate([request(pod)], fence=fence)


class Held:
    """Pod a's batch held in flight at ``gate``; pods b and c queued behind it."""

    def __init__(
        self, gated: GatedClient, ipam: Ipam, pool: ThreadPoolExecutor, fence: Fencing
    ) -> None:
        self.gate = gated.hold_next()
        self.a = pool.submit(allocate(ipam, "a", fence))
        assert self.gate.reached.wait(30)
        self.later = [pool.submit(allocate(ipam, pod, fence)) for pod in "bc"]
        queued(ipam, 2)
        self.sent = gated.allocations

    def answers(self) -> list[list[Result]]:
        """Every caller's answer (each call returns, or raises here)."""
        return [self.a.result(60)] + [f.result(60) for f in self.later]


def queued(ipam: Ipam, count: int, subnet: SubnetName = NET1) -> None:
    """Wait until ``count`` requests wait behind the commit in flight."""
    state = ipam.state(subnet)
    wait_for(f"{count} requests queued", lambda: len(state.pending) == count, timeout=30)


def hold(
    gated: GatedClient, ipam: Ipam, pool: ThreadPoolExecutor, fence: Fencing = UNFENCED
) -> Held:
    return Held(gated, ipam, pool, fence)


def consistent(client: EtcdClient, prefix: str, spec: Any, told: Sequence[str]) -> None:
    """etcd agrees with itself and with what the callers were told."""
    stored = attachment_addresses(client, prefix)
    assert len(stored) == len(set(stored)), stored  # no address held twice
    assert sorted(stored) == sorted(told)
    assert lease_addresses(client, prefix, NET1) == set(stored)
    assert bitmap_addresses(client, prefix, spec) == set(stored)


def warm(client: EtcdClient, prefix: str) -> tuple[Any, Ipam]:
    """A /24 and an Ipam whose cache holds its spec, chunk and cursor (.2 taken)."""
    spec = register(client, prefix, cidr_block="10.0.0.0/24")
    ipam = Ipam(client, prefix)
    assert ips(ipam.allocate([request("warm")], fence=UNFENCED)) == ["10.0.0.2"]
    return spec, ipam


def test_callers_queued_behind_a_batch_in_flight_commit_together_in_the_next(
    gated: GatedClient, etcd_prefix: str, pool: ThreadPoolExecutor
) -> None:
    spec, ipam = warm(gated, etcd_prefix)
    held = hold(gated, ipam, pool)

    held.gate.open()

    a, b, c = (ips(answer) for answer in held.answers())
    assert a == ["10.0.0.3"]  # first come, first committed
    assert sorted(b + c) == ["10.0.0.4", "10.0.0.5"]
    assert gated.allocations == held.sent + 1  # b and c together, in one transaction
    consistent(gated, etcd_prefix, spec, ["10.0.0.2", *a, *b, *c])


def test_a_writer_between_batch_k_and_k_plus_1_makes_k_plus_1_retry_from_etcd(
    gated: GatedClient, client: EtcdClient, etcd_prefix: str, pool: ThreadPoolExecutor
) -> None:
    spec, ipam = warm(gated, etcd_prefix)
    held = hold(gated, ipam, pool)
    next_batch = gated.hold_next()

    held.gate.open()  # a commits; b and c's batch is planned on the cache and sent...
    assert next_batch.reached.wait(30)
    # ...and before it reaches etcd another writer (nicpoolctl, an earlier leader)
    # takes the address the batch planned for b.
    [other] = Ipam(client, etcd_prefix).allocate([request("other")], fence=UNFENCED)
    assert attachment(other).ip_csv() == "10.0.0.4"
    next_batch.open()

    a, b, c = (ips(answer) for answer in held.answers())
    assert a == ["10.0.0.3"]
    assert sorted(b + c) == ["10.0.0.5", "10.0.0.6"]  # re-read, never 10.0.0.4 twice
    consistent(gated, etcd_prefix, spec, ["10.0.0.2", "10.0.0.4", *a, *b, *c])


@pytest.mark.parametrize("fail", ["before", "after"], ids=["unreachable", "answer lost"])
def test_a_failed_batch_k_is_retried_and_the_queue_behind_it_answered(
    gated: GatedClient, etcd_prefix: str, pool: ThreadPoolExecutor, fail: str
) -> None:
    spec, ipam = warm(gated, etcd_prefix)
    held = hold(gated, ipam, pool)

    # a's transaction fails: before etcd saw it, or after it committed (the caller
    # cannot tell which); b and c wait behind its retry.
    held.gate.open(fail=fail)

    a, b, c = (ips(answer) for answer in held.answers())
    told = ["10.0.0.2", *a, *b, *c]
    assert len(set(told)) == 4  # each caller its own address, a's never handed out twice
    if fail == "after":
        assert a == ["10.0.0.3"]  # what committed is what a is told (read back, not redone)
    consistent(gated, etcd_prefix, spec, told)
    assert ipam.get(ref("a")) == attachment(held.a.result()[0])


def test_a_deposed_writer_s_queued_callers_are_all_told_and_nothing_is_written(
    gated: GatedClient, client: EtcdClient, etcd_prefix: str, pool: ThreadPoolExecutor
) -> None:
    spec, ipam = warm(gated, etcd_prefix)
    stale = Fence(f"{etcd_prefix}election/gone", Revision(10**9))  # no such leader key
    held = hold(gated, ipam, pool, fence=stale)

    held.gate.open()

    for answer in [held.a, *held.later]:
        with pytest.raises(FencedOut):
            answer.result(60)
    consistent(gated, etcd_prefix, spec, ["10.0.0.2"])


@pytest.mark.parametrize("fail", [None, "before"], ids=["sent", "failed"])
def test_a_queue_larger_than_one_transaction_is_committed_in_several(
    gated: GatedClient, etcd_prefix: str, pool: ThreadPoolExecutor, fail: str | None
) -> None:
    """40 dual-stack NICs do not fit in one transaction (etcd's 128 ops): the one
    handed the queue commits it in as many as it takes."""
    spec = register(gated, etcd_prefix, cidr_block="10.0.0.0/24,fd00::/120")
    ipam = Ipam(gated, etcd_prefix)
    ipam.allocate([request("warm")], fence=UNFENCED)
    gate = gated.hold_next()
    first = pool.submit(allocate(ipam, "first"))
    assert gate.reached.wait(30)
    rest = [pool.submit(allocate(ipam, f"p{n}")) for n in range(40)]
    queued(ipam, 40)
    sent = gated.allocations

    gate.open(fail=fail)

    answers = [first.result(60)] + [f.result(60) for f in rest]
    told = [ip for answer in answers for ip in ips(answer)[0].split(",")]
    assert len(told) == len(set(told)) == 82
    assert gated.allocations >= sent + 2  # the queue did not fit in one
    stored = attachment_addresses(gated, etcd_prefix)
    assert len(stored) == len(set(stored)) == 84  # 41 pods and the warm one, two each
    assert bitmap_addresses(gated, etcd_prefix, spec) == set(stored)


def test_callers_of_two_subnets_are_all_answered(
    gated: GatedClient, etcd_prefix: str, pool: ThreadPoolExecutor
) -> None:
    """Each call asks for a NIC in two subnets: a caller waits in one subnet's queue,
    then the other's, and may be handed either's commit."""
    register(gated, etcd_prefix, cidr_block="10.0.0.0/24,fd00::/120")
    register(gated, etcd_prefix, "net2", cidr_block="10.0.1.0/24,fd00:1::/120")
    ipam = Ipam(gated, etcd_prefix)

    def both(pod: str) -> list[Result]:
        second = replace(request(pod, "net2"), ref=ref(pod, provider="net2.default"))
        return ipam.allocate([request(pod), second], fence=UNFENCED)

    answers = [f.result(120) for f in [pool.submit(both, f"p{n}") for n in range(60)]]
    told = [ip for answer in answers for ip in ips(answer)]
    assert len(told) == len(set(told)) == 120
    assert sorted(attachment_addresses(gated, etcd_prefix)) == sorted(
        part for pair in told for part in pair.split(",")
    )


def test_many_callers_beside_another_writer_hand_each_address_out_once(
    gated: GatedClient, client: EtcdClient, etcd_prefix: str, pool: ThreadPoolExecutor
) -> None:
    """No gate: 16 callers fill a /24 while another Ipam allocates and releases in it,
    moving chunks under the batches in flight at whatever moments the machine decides."""
    spec = register(gated, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam = Ipam(gated, etcd_prefix)
    other = Ipam(client, etcd_prefix)
    stop = threading.Event()

    def fill(worker: int) -> list[str]:
        got: list[str] = []
        for n in range(1000):
            [result] = ipam.allocate([request(f"w{worker}-{n}")], fence=UNFENCED)
            if isinstance(result, SubnetExhausted):
                return got
            got.append(attachment(result).ip_csv())
        raise AssertionError("a /24 never filled")

    def meddle() -> int:
        n = 0
        while not stop.is_set():
            other.allocate([request(f"other-{n}")], fence=UNFENCED)
            other.release(ref(f"other-{n}"), fence=UNFENCED)
            n += 1
        return n

    meddler = pool.submit(meddle)
    fillers = [pool.submit(fill, worker) for worker in range(16)]
    handed = [ip for f in fillers for ip in f.result(120)]
    stop.set()
    assert meddler.result(60) > 0
    assert len(handed) == len(set(handed))  # no address handed out twice
    consistent(gated, etcd_prefix, spec, handed)


class Interrupted(BaseException):
    """What a KeyboardInterrupt or a signal handler's SystemExit is to a thread."""


def test_a_caller_interrupted_while_queued_does_not_stall_the_subnet(
    gated: GatedClient, etcd_prefix: str, pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, ipam = warm(gated, etcd_prefix)
    gate = gated.hold_next()
    a = pool.submit(allocate(ipam, "a"))
    assert gate.reached.wait(30)

    def interrupted(self: groupcommit.Caller, ready: Callable[[], bool]) -> None:
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(groupcommit.Caller, "wait_until", interrupted)
        b = pool.submit(allocate(ipam, "b"))  # queued behind a, then interrupted
        with pytest.raises(Interrupted):
            b.result(30)
    gate.open()

    assert ips(a.result(60)) == ["10.0.0.3"]
    # Left queued, b's request would have been handed the next commit, and every
    # later caller in the subnet would have waited for it forever.
    assert ips(pool.submit(allocate(ipam, "c")).result(20)) == ["10.0.0.4"]
    consistent(gated, etcd_prefix, spec, ["10.0.0.2", "10.0.0.3", "10.0.0.4"])
