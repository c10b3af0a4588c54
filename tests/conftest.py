"""Fixtures shared by every tier. Tier-specific ones live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from ops.lab.etcd import EtcdServer, docker_available, etcd_binary
from store.config import EtcdSettings
from store.etcd import EtcdClient
from tests.support.components import missing
from tests.support.ctl import Ctl

# Property tests check outcomes, never time: on a shared 2-core machine a
# slow example is load, not a failure (hypothesis's default deadline is 200 ms).
settings.register_profile("nicpool", deadline=None)
settings.load_profile("nicpool")


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EtcdServer]:
    """One real etcd for the session; tests isolate themselves by key prefix."""
    binary = etcd_binary()
    if binary is None:
        hint = "install etcd-server (make deps) or set KUBEBUILDER_ASSETS"
        if docker_available():
            hint += "; a Docker engine answers, see ops/lab/etcd.py:start_in_docker"
        missing("etcd", hint)
        raise AssertionError("unreachable")
    server = EtcdServer(binary=binary)
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def etcd_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of the test's own, so tests sharing one etcd never collide."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return f"/nicpool-test/{safe}/{id(request)}/v1/"


@pytest.fixture
def client(etcd_server: EtcdServer) -> Iterator[EtcdClient]:
    """A store client on the session's etcd (every tier's one definition)."""
    connection = EtcdClient(EtcdSettings(endpoints=(etcd_server.endpoint,)))
    yield connection
    connection.close()


@pytest.fixture
def ctl(etcd_server: EtcdServer, etcd_prefix: str) -> Ctl:
    """nicpoolctl against the test's own prefix of the session's etcd."""
    return Ctl(etcd_server.endpoint, etcd_prefix)
