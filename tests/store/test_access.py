"""etcd auth: one identity per component (issue 8, item 2).

A real etcd with TLS, client certificates and auth enabled by
``nicpoolctl access setup`` (as root). Each nicpool component connects with
its own certificate; etcd takes the certificate's CN as the user. The agent
runs on every node, so its credentials are read-only: a stolen agent
certificate cannot rewrite the cluster's IPAM state.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.lab.etcd import etcd_binary
from ops.lab.etcdcluster import EtcdCluster
from store.attachments import AttachmentReader
from store.config import EtcdSettings
from store.election import Election
from store.errors import PermissionDenied
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import ips, ref, register, request
from tests.support.components import missing

pytestmark = pytest.mark.store

PREFIX = "/nicpool/v1/"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    binary = etcd_binary()
    if binary is None:
        missing("etcd", "install etcd-server (make deps)")
        raise AssertionError("unreachable")
    with EtcdCluster(
        binary=binary,
        size=1,
        identities=("root", "nicpool-controller", "nicpool-agent", "nicpool-admin", "stranger"),
    ) as running:
        done = ctl(running, "root", "access", "setup")
        assert done.returncode == 0, done.stderr
        assert "auth enabled" in done.stdout
        yield running


def ctl(cluster: EtcdCluster, identity: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "reconciler.ctl.main",
        f"--etcd-endpoints={','.join(cluster.endpoints)}",
        f"--etcd-prefix={PREFIX}",
        *cluster.client_flags(identity),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


def connect_as(cluster: EtcdCluster, identity: str) -> EtcdClient:
    pair = cluster.client_pair(identity)
    return EtcdClient(
        EtcdSettings(
            endpoints=tuple(cluster.endpoints),
            prefix=PREFIX,
            cacert=str(cluster.ca.cert),
            cert=str(pair.cert),
            key=str(pair.key),
        )
    )


def test_the_controller_writes_and_the_agent_only_reads(cluster: EtcdCluster) -> None:
    controller = connect_as(cluster, "nicpool-controller")
    agent = connect_as(cluster, "nicpool-agent")
    try:
        register(controller, PREFIX, cidr_block="10.60.0.0/24")
        [address] = ips(Ipam(controller, PREFIX).allocate([request("a")], fence=UNFENCED))
        found = AttachmentReader(agent, PREFIX).get(ref("a"))
        assert found is not None and found.ip_csv() == address

        [refused] = Ipam(agent, PREFIX).allocate([request("b")], fence=UNFENCED)
        assert isinstance(refused, PermissionDenied)
        with pytest.raises(PermissionDenied):
            agent.put(f"{PREFIX}attachments/default/b/net1.default", b"{}")
        assert Ipam(controller, PREFIX).get(ref("b")) is None
    finally:
        controller.close()
        agent.close()


def test_a_certificate_without_a_user_is_refused(cluster: EtcdCluster) -> None:
    stranger = connect_as(cluster, "stranger")
    try:
        with pytest.raises(PermissionDenied):
            stranger.get(f"{PREFIX}format")
    finally:
        stranger.close()


def test_nicpoolctl_reads_with_the_admin_identity_and_setup_runs_again(
    cluster: EtcdCluster,
) -> None:
    assert ctl(cluster, "nicpool-admin", "usage").returncode == 0
    again = ctl(cluster, "root", "access", "setup")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout  # users and roles already there
    refused = ctl(cluster, "nicpool-agent", "access", "setup")
    assert refused.returncode != 0


def test_the_controller_can_lead_and_the_agent_can_watch(cluster: EtcdCluster) -> None:
    """The rights each component needs beyond plain reads and writes: leases and
    the election for the controller, watches for the agent's wait."""
    controller = connect_as(cluster, "nicpool-controller")
    agent = connect_as(cluster, "nicpool-agent")
    try:
        election = Election(controller, PREFIX, identity="c0", ttl=3)
        fence = election.campaign(timeout=10)
        register(controller, PREFIX, name="net2", cidr_block="10.61.0.0/24")
        ipam = Ipam(controller, PREFIX)
        assert ips(ipam.allocate([request("led", "net2")], fence=fence)) == ["10.61.0.2"]
        election.resign()
        assert AttachmentReader(agent, PREFIX).wait(ref("never"), timeout=1.0) is None
    finally:
        controller.close()
        agent.close()
