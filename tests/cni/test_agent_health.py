"""The agent's probes (kubelet's view of it): /healthz, /readyz and /metrics on its metrics port.

Readiness follows etcd by the agent's own periodic read, not by the outcome
of the last CNI request: no request is sent here while etcd is down, yet
/readyz turns 503, and 200 again once etcd is back. Liveness stays 200
throughout (restarting the agent would not bring etcd back).
"""

from __future__ import annotations

import pytest

from ops.lab.cni import AgentProcess
from ops.lab.controllers import wait_for
from ops.lab.etcd import EtcdServer

pytestmark = pytest.mark.cni


def test_each_path_answers_for_itself(agent: AgentProcess) -> None:
    wait_for("/readyz 200", lambda: agent.http("/readyz")[0] == 200, timeout=30)
    status, body = agent.http("/healthz")
    assert (status, body.strip()) == (200, "ok")
    status, body = agent.http("/metrics")
    assert status == 200 and "nicpool_cni_request_seconds" in body
    assert agent.http("/no-such-path")[0] == 404


def test_readiness_is_false_while_etcd_is_down_and_true_after(
    agent: AgentProcess, etcd_server: EtcdServer
) -> None:
    wait_for("/readyz 200 with etcd up", lambda: agent.http("/readyz")[0] == 200, timeout=30)
    etcd_server.stop()
    try:
        wait_for("/readyz 503 with etcd stopped", lambda: agent.http("/readyz")[0] == 503, 30)
        assert "etcd" in agent.http("/readyz")[1]
        assert agent.http("/healthz")[0] == 200, "liveness must not follow etcd"
    finally:
        etcd_server.start()
    wait_for("/readyz 200 after etcd restarted", lambda: agent.http("/readyz")[0] == 200, 30)
