"""Many OS processes allocating from one subnet at once.

Eight processes (spawned, each with its own etcd client and Ipam, so no
in-process lock or cache is shared) allocate from one /24 until it is full.
Only etcd's transactions keep them apart.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from ops.lab.etcd import EtcdServer
from store.etcd import EtcdClient
from tests.store.helpers import (
    attachment_addresses,
    bitmap_addresses,
    lease_addresses,
    register,
)
from tests.store.workers import allocate_until_exhausted, take_from_pool

pytestmark = pytest.mark.store

PROCESSES = 8


def run_processes(endpoint: str, prefix: str, target: Callable[..., None]) -> list[Any]:
    """``PROCESSES`` spawned processes running ``target``, released together; their reports."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=target, args=(endpoint, prefix, n, start, results))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return reports


def test_eight_processes_fill_a_slash_24_handing_each_address_out_once(
    etcd_server: EtcdServer, client: EtcdClient, etcd_prefix: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.24.0.0/24")
    usable = {spec.layouts[0].address_at(o) for o in range(256) if o not in (0, 1, 255)}

    reports = run_processes(etcd_server.endpoint, etcd_prefix, allocate_until_exhausted)

    handed_out: list[str] = []
    for _, got, final in reports:
        handed_out += [ip for _, ip in got]
        # Each process stops because the subnet is full, told so as a permanent error.
        assert final is not None
        assert final[:2] == ("SubnetExhausted", True), final
    duplicates = [ip for ip, n in Counter(handed_out).items() if n > 1]
    assert duplicates == []
    assert set(handed_out) == usable
    # Every process won addresses (each took its first before any went on), so they
    # really ran against each other; shares past the first are uneven (a process with
    # a fresh cache commits while the others re-read) and correctness needs no fairness.
    shares = sorted(len(got) for _, got, _ in reports)
    assert all(shares), shares

    # What etcd holds agrees with itself and with what the processes were told.
    stored = attachment_addresses(client, etcd_prefix)
    assert sorted(stored) == sorted(handed_out)
    assert lease_addresses(client, etcd_prefix, "net1") == usable
    assert bitmap_addresses(client, etcd_prefix, spec) == usable


def test_eight_processes_sharing_one_ip_pool_get_each_entry_once(
    etcd_server: EtcdServer, client: EtcdClient, etcd_prefix: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.24.0.0/24")
    reports = run_processes(etcd_server.endpoint, etcd_prefix, take_from_pool)
    outcomes = [outcome for _, got, _ in reports for outcome in got]
    assert len(outcomes) == 40
    granted = [ip for kind, ip in outcomes if kind == "ok"]
    # 20 entries for 40 pods: each entry once, everyone else told the pool is exhausted.
    assert sorted(granted) == sorted(f"10.24.0.{i}" for i in range(100, 120))
    assert Counter(kind for kind, _ in outcomes) == {"ok": 20, "PoolExhausted": 20}
    assert bitmap_addresses(client, etcd_prefix, spec) == set(granted)
    assert lease_addresses(client, etcd_prefix, "net1") == set(granted)
