"""SIGTERM (a rolling update, a node drain): the replica resigns and exits, leader or standby.

The election TTL here is 30 s, so "a standby leads" before it could have
lapsed can only mean the stopped replicas gave their place up: the leader
resigns, and a stopped standby removes its own key, which would otherwise
stay in line ahead of the live standby until its lease expired.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import pytest

from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from store.config import EtcdSettings
from store.core.keys import Keys
from store.etcd import connect

pytestmark = pytest.mark.controller

TTL = 30


@pytest.fixture
def trio(control_plane: ControlPlane) -> Iterator[list[ControllerProcess]]:
    assert control_plane.etcd is not None
    prefix = f"/nicpool-sigterm-{uuid.uuid4().hex[:6]}/v1/"
    etcd = connect(EtcdSettings(endpoints=(control_plane.etcd.endpoint,)))
    election = Keys(prefix).election
    processes: list[ControllerProcess] = []
    try:
        for n in range(3):
            processes.append(
                ControllerProcess(
                    control_plane.kubeconfig,
                    control_plane.etcd.endpoint,
                    prefix,
                    identity=f"s{n}",
                    extra_args=[f"--election-ttl={TTL}"],
                ).start()
            )
            # One at a time, so the line is s0 (leader), s1, s2.
            wait_for(
                f"s{n} in the election", lambda n=n: len(etcd.get_prefix(election)[0]) == n + 1
            )
        yield processes
    finally:
        for process in processes:
            process.stop()
        etcd.close()


def terminate(process: ControllerProcess) -> int:
    assert process.popen is not None
    process.popen.send_signal(signal.SIGTERM)
    return process.popen.wait(TTL / 2)


def test_sigterm_hands_leadership_over_without_waiting_for_the_ttl(
    trio: list[ControllerProcess],
) -> None:
    leader, next_in_line, last = trio
    leader.wait_leader()
    assert terminate(next_in_line) == 0, next_in_line.log_tail()
    assert terminate(leader) == 0, leader.log_tail()
    wait_for("the last standby to lead", last.is_leader, TTL / 2, every=0.05)
    assert last.alive()
