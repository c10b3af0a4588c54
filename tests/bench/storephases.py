"""The measuring phases of ``python -m tests.bench.store`` (the driver and its output
live there): raw single-key CAS rounds, allocation rounds at a given caller
count with the client's and etcd's CPU, latency by subnet size, and bytes
stored per lease. Each phase only measures; which phases run, interleaved
how, and what the ratios mean is the driver's business.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import os
import pstats
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.core.cooldown import DEFAULT_COOLDOWN
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, Revision, SubnetName
from store.core.ops import ModRevisionIs, Put
from store.core.subnetspec import parse_subnet_spec
from store.errors import PermanentError
from store.etcd import EtcdClient
from store.leases import UNFENCED, AllocationRequest, Ipam
from store.subnets import Subnets

PREFIX = "/nicpool-bench/store/"
PROVIDER = Provider("bench.default")
SIZES = {
    "ipv4_24": "10.24.0.0/24",
    "ipv4_16": "10.16.0.0/16",
    "ipv4_8": "10.0.0.0/8",
    "ipv6_64": "fd00:64::/64",
}
THROUGHPUT_SUBNET = "10.32.0.0/12"
"""Big enough that no throughput phase fills it (1M addresses)."""


def progress(message: str) -> None:
    print(f"[bench-store {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, in the samples' unit."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def store_revision(client: EtcdClient) -> int:
    _, revision = client.get(f"{PREFIX}revision-probe")
    return int(revision)


# -- 1. raw CAS ---------------------------------------------------------------


@dataclass
class Samples:
    """Latencies (ms) and the wall time they were taken in, summed over rounds."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


class RawCas:
    """Sequential single-key CAS transactions, the unit the store is measured in."""

    def __init__(self, client: EtcdClient, etcd_pid: int) -> None:
        self.client = client
        self.etcd_pid = etcd_pid
        self.key = f"{PREFIX}raw-cas"
        self.revision = Revision(client.put(self.key, b"0"))
        self.samples = Samples()
        self.cpu = 0.0
        self.etcd_cpu = 0.0

    def round(self, seconds: float) -> float:
        """Run for ``seconds``; returns this round's rate."""
        count = len(self.samples.latencies)
        cpu_before, etcd_cpu_before = time.process_time(), etcd_cpu_seconds(self.etcd_pid)
        started = time.perf_counter()
        deadline = started + seconds
        while (now := time.perf_counter()) < deadline:
            outcome = self.client.txn(
                [ModRevisionIs(self.key, self.revision)], [Put(self.key, str(now).encode())]
            )
            if not outcome.succeeded:
                raise RuntimeError("raw CAS lost a race on a key nobody else writes")
            self.revision = outcome.revision
            self.samples.latencies.append((time.perf_counter() - now) * 1000)
        elapsed = time.perf_counter() - started
        self.cpu += time.process_time() - cpu_before
        self.etcd_cpu += etcd_cpu_seconds(self.etcd_pid) - etcd_cpu_before
        self.samples.elapsed += elapsed
        return (len(self.samples.latencies) - count) / elapsed

    def result(self) -> dict[str, float]:
        count = len(self.samples.latencies)
        return {
            "raw_cas_per_s": self.samples.rate(),
            "raw_cas_p50_ms": percentile(self.samples.latencies, 50),
            "raw_cas_p99_ms": percentile(self.samples.latencies, 99),
            "raw_cas_txns": count,
            # CPU per CAS, client and etcd: on a loaded machine the ratio tends to
            # the ratio of CPU per operation, not of latencies.
            "raw_cas_client_cpu_ms": self.cpu / count * 1000,
            "raw_cas_etcd_cpu_ms": self.etcd_cpu / count * 1000,
        }


# -- 2. allocations with group commit -------------------------------------------


def register(client: EtcdClient, prefix: str, name: str, cidr: str) -> None:
    spec = parse_subnet_spec(name, cidr_block=cidr, provider=PROVIDER)
    Subnets(client, prefix).put(spec, fence=UNFENCED)


class Names:
    """Unique pod names across threads."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.lock = threading.Lock()
        self.serial = 0

    def request(self, subnet: str) -> AllocationRequest:
        with self.lock:
            self.serial += 1
            n = self.serial
        pod = f"{self.tag}-{n}"
        return AllocationRequest(
            ref=AttachmentRef(PodRef("bench", pod), PROVIDER),
            uid=PodUID(f"uid-{pod}"),
            subnet=SubnetName(subnet),
            interface="net1",
        )


def allocate_one(ipam: Ipam, request: AllocationRequest) -> float:
    """One allocation call; its latency in ms. A refusal stops the benchmark."""
    started = time.perf_counter()
    [result] = ipam.allocate([request], fence=UNFENCED)
    if isinstance(result, PermanentError):
        raise RuntimeError(f"allocation refused: {result}")
    return (time.perf_counter() - started) * 1000


class ConcurrentAllocations:
    """``threads`` allocator threads sharing one Ipam on one /16, run in rounds."""

    subnet = "bench12"
    runs = itertools.count(1)

    def __init__(self, client: EtcdClient, etcd_pid: int, threads: int, profile: bool) -> None:
        # A fresh prefix per phase: a second phase at the same caller count must not
        # re-request the pods of the first (they exist, so every optimistic commit
        # would conflict and the phase would measure retries).
        self.prefix = f"{PREFIX}alloc-{threads}-{next(self.runs)}/"
        self.client = client
        self.etcd_pid = etcd_pid
        self.threads = threads
        self.profile = profile
        register(client, self.prefix, self.subnet, THROUGHPUT_SUBNET)
        # As the controller runs it: with its default cool-down (store.core.cooldown).
        self.ipam = Ipam(client, self.prefix, cooldown=DEFAULT_COOLDOWN)
        self.names = Names("pod")
        for _ in range(20):  # warm-up: channel, spec and chunk caches
            allocate_one(self.ipam, self.names.request(self.subnet))
        self.samples = Samples()
        self.txns = 0
        self.cpu = 0.0
        self.etcd_cpu = 0.0
        self.profilers: list[cProfile.Profile] = []
        self.failures: list[BaseException] = []

    def _work(self, latencies: list[float], stop: threading.Event) -> None:
        # cProfile sees only the thread that enables it: one profiler per thread,
        # timing CPU (thread_time) so waits for etcd and the subnet lock do not show.
        profiler = cProfile.Profile(time.thread_time) if self.profile else None
        if profiler is not None:
            self.profilers.append(profiler)
            profiler.enable()
        try:
            while not stop.is_set():
                latencies.append(allocate_one(self.ipam, self.names.request(self.subnet)))
        except BaseException as exc:  # re-raised by round(): a silent thread skews the rate
            self.failures.append(exc)
            stop.set()
        if profiler is not None:
            profiler.disable()

    def round(self, seconds: float) -> float:
        """Run the threads for ``seconds``; returns this round's allocation rate."""
        per_thread: list[list[float]] = [[] for _ in range(self.threads)]
        stop = threading.Event()
        revision_before = store_revision(self.client)
        cpu_before, etcd_cpu_before = time.process_time(), etcd_cpu_seconds(self.etcd_pid)
        started = time.perf_counter()
        workers = [
            threading.Thread(target=self._work, args=(mine, stop), daemon=True)
            for mine in per_thread
        ]
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        stop.set()
        for worker in workers:
            worker.join()
        if self.failures:
            raise RuntimeError(f"an allocator thread failed: {self.failures[0]!r}")
        elapsed = time.perf_counter() - started
        self.cpu += time.process_time() - cpu_before
        self.etcd_cpu += etcd_cpu_seconds(self.etcd_pid) - etcd_cpu_before
        self.txns += store_revision(self.client) - revision_before
        self.samples.elapsed += elapsed
        done = [sample for mine in per_thread for sample in mine]
        self.samples.latencies += done
        return len(done) / elapsed

    def result(self) -> dict[str, Any]:
        samples = self.samples
        count = len(samples.latencies)
        result: dict[str, Any] = {
            "allocs_per_s": samples.rate(),
            "p50_ms": percentile(samples.latencies, 50),
            "p99_ms": percentile(samples.latencies, 99),
            "allocations": count,
            "allocation_txns": self.txns,
            "allocs_per_txn": count / self.txns if self.txns else None,
            "threads": self.threads,
            "subnet": THROUGHPUT_SUBNET,
            "bytes_per_1000_leases": bytes_per_1000_leases(self.client, self.prefix, self.subnet),
            # Where the time goes: CPU seconds per wall second (2.0 = both cores busy).
            "client_cpu_per_wall_s": self.cpu / samples.elapsed,
            "etcd_cpu_per_wall_s": self.etcd_cpu / samples.elapsed,
            "client_cpu_ms_per_alloc": self.cpu / count * 1000,
            "etcd_cpu_ms_per_alloc": self.etcd_cpu / count * 1000,
        }
        if self.profilers:
            result["profile"] = profile_text(self.profilers)
        return result


def etcd_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds etcd has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def profile_text(profilers: list[cProfile.Profile]) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profilers[0], stream=out)
    for more in profilers[1:]:
        stats.add(more)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(35)
    return out.getvalue()


def bytes_per_1000_leases(client: EtcdClient, prefix: str, subnet: str) -> float:
    total = 0
    for kv in client.iter_prefix(prefix):
        total += len(kv.key.encode()) + len(kv.value)
    leases = client.count_prefix(f"{prefix}subnets/{subnet}/leases/")
    return total / leases * 1000 if leases else 0.0


# -- 3. latency by subnet size ----------------------------------------------------


def latency_by_size(client: EtcdClient, count: int) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for label, cidr in SIZES.items():
        prefix = f"{PREFIX}size-{label}/"
        register(client, prefix, "sized", cidr)
        ipam = Ipam(client, prefix)
        names = Names(label)
        for _ in range(10):
            allocate_one(ipam, names.request("sized"))
        samples = [allocate_one(ipam, names.request("sized")) for _ in range(count)]
        chunks = client.count_prefix(f"{prefix}subnets/sized/bitmap/")
        found[label] = {
            "cidr": cidr,  # type: ignore[dict-item]
            "p50_ms": percentile(samples, 50),
            "p99_ms": percentile(samples, 99),
            "bitmap_chunks": chunks,
        }
        progress(f"latency on {cidr}: p50 {found[label]['p50_ms']:.2f} ms")
    return found
