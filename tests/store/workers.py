"""Code that runs in other OS processes during store-tier tests.

* :func:`allocate_until_exhausted` is a ``multiprocessing`` (spawn) target:
  one process, its own ``EtcdClient`` and ``Ipam``, allocating until the
  subnet is full.
* ``python -m tests.store.workers leader ENDPOINT PREFIX IDENTITY TTL`` is a
  controller stand-in: it campaigns, prints ``LEADER <key> <revision>``, then
  serves one command per stdin line (``alloc <pod>``, ``quit``) and prints the
  outcome on stdout (``OK <pod> <ip>``, ``FENCEDOUT <message>``,
  ``ERROR <type> <message>``). It prints ``LOST`` when its election says
  leadership was lost. Tests SIGSTOP, SIGCONT or SIGKILL it.
"""

from __future__ import annotations

import sys
import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from store.config import EtcdSettings
from store.election import Election
from store.errors import FencedOut, NicpoolError, PermanentError
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import request


def allocate_until_exhausted(
    endpoint: str, prefix: str, worker: int, start: Barrier, results: Queue[object]
) -> None:
    """Allocate in batches of 1-3 until the subnet is full; report what was handed out."""
    client = EtcdClient(EtcdSettings(endpoints=(endpoint,)))
    ipam = Ipam(client, prefix)
    got: list[tuple[str, str]] = []
    final: tuple[str, bool, str] | None = None
    start.wait()
    try:
        serial = 0
        while final is None:
            batch = [request(f"w{worker}-{serial + i}") for i in range(serial % 3 + 1)]
            serial += len(batch)
            for outcome in ipam.allocate(batch, fence=UNFENCED):
                if isinstance(outcome, PermanentError):
                    final = (type(outcome).__name__, True, str(outcome))
                else:
                    got.append((outcome.ref.pod.name, outcome.ip_csv()))
            if serial == 1:
                # Every process holds an address before any goes on, so all of them
                # really race for the rest (a process that started first on a loaded
                # machine could otherwise fill the /24 before the others began).
                start.wait(timeout=120)
    except Exception as exc:  # reported to the test, which fails on it
        final = (type(exc).__name__, isinstance(exc, PermanentError), str(exc))
    finally:
        client.close()
    results.put((worker, got, final))


def take_from_pool(
    endpoint: str, prefix: str, worker: int, start: Barrier, results: Queue[object]
) -> None:
    """Five pods, one at a time, each asking for the same shared ip_pool."""
    pool = tuple((f"10.24.0.{i}",) for i in range(100, 120))
    client = EtcdClient(EtcdSettings(endpoints=(endpoint,)))
    ipam = Ipam(client, prefix)
    outcomes: list[tuple[str, str]] = []
    start.wait()
    try:
        for n in range(5):
            [outcome] = ipam.allocate([request(f"w{worker}-{n}", pool=pool)], fence=UNFENCED)
            if isinstance(outcome, PermanentError):
                outcomes.append((type(outcome).__name__, ""))
            else:
                outcomes.append(("ok", outcome.ip_csv()))
    except Exception as exc:  # reported to the test, which fails on it
        outcomes.append((type(exc).__name__, str(exc)))
    finally:
        client.close()
    results.put((worker, outcomes, None))


_STDOUT = threading.Lock()


def _say(*words: object) -> None:
    """One whole line: the election's keeper thread prints too (LOST)."""
    line = " ".join(str(word) for word in words) + "\n"
    with _STDOUT:
        sys.stdout.write(line)
        sys.stdout.flush()


def leader(endpoint: str, prefix: str, identity: str, ttl: int) -> None:
    client = EtcdClient(EtcdSettings(endpoints=(endpoint,)))
    election = Election(client, prefix, identity=identity, ttl=ttl, on_lost=lambda: _say("LOST"))
    fence = election.campaign()
    _say("LEADER", fence.key, fence.revision)
    ipam = Ipam(client, prefix)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "quit":
            break
        if command != "alloc":
            _say("ERROR", "UnknownCommand", command)
            continue
        try:
            [outcome] = ipam.allocate([request(argument)], fence=fence)
        except FencedOut as exc:
            _say("FENCEDOUT", exc)
            continue
        except NicpoolError as exc:
            _say("ERROR", type(exc).__name__, exc)
            continue
        if isinstance(outcome, PermanentError):
            _say("ERROR", type(outcome).__name__, outcome)
        else:
            _say("OK", argument, outcome.ip_csv())
    election.resign()
    client.close()


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "leader":
        sys.exit("usage: python -m tests.store.workers leader ENDPOINT PREFIX IDENTITY TTL")
    leader(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
