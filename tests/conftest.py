"""Fixtures shared by every tier. Tier-specific ones live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.etcd import EtcdServer, docker_available, etcd_binary
from tests.support.components import missing


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
