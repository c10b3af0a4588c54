"""nicpool's etcd connections respect etcd's keepalive policy.

etcd enforces gRPC's ping policy with ``PermitWithoutStream: false``: a
client that pings while it has no call in flight collects strikes and, after
three, etcd answers ``GOAWAY ENHANCE_YOUR_CALM too_many_pings`` and closes
the connection. An idle node agent (it reads only when a CNI ADD comes) was
losing its connection that way every half minute, paying a reconnect on the
next ADD. Pings belong to calls in flight: a watch is one for as long as it
runs, which is what keeps a silent connection noticed.

The test runs a client in a child process with the keepalive shortened to
one second (the policy is the same at ten) and reads what gRPC logs there.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ops.lab.etcd import EtcdServer

pytestmark = pytest.mark.store

_IDLE_CLIENT = textwrap.dedent(
    """
    import sys, time
    import store.etcd as etcd
    etcd.CHANNEL_OPTIONS = tuple(
        (name, 1000 if name == "grpc.keepalive_time_ms" else value)
        for name, value in etcd.CHANNEL_OPTIONS
    )
    from store.config import EtcdSettings
    client = etcd.connect(EtcdSettings(endpoints=(sys.argv[1],)))
    client.put("/keepalive-test/a", b"1")
    time.sleep(6)  # idle: the scenario itself (six pings' worth), not a wait for a condition
    client.put("/keepalive-test/a", b"2")
    print("done")
    """
)


def test_an_idle_client_is_not_sent_away_for_pinging(etcd_server: EtcdServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IDLE_CLIENT, etcd_server.endpoint],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"GRPC_VERBOSITY": "ERROR", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "done", done.stderr
    assert "too_many_pings" not in done.stderr
