"""Fixtures of the store tier: a client and an Ipam on the session's real etcd.

Tests share one etcd (``etcd_server``) and isolate themselves by key prefix
(``etcd_prefix``). Tests that restart etcd or run other processes against it
live in their own modules and leave the server healthy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.etcd import EtcdServer
from store.config import EtcdSettings
from store.etcd import EtcdClient
from store.leases import Ipam
from store.subnets import Subnets


@pytest.fixture
def client(etcd_server: EtcdServer) -> Iterator[EtcdClient]:
    connection = EtcdClient(EtcdSettings(endpoints=(etcd_server.endpoint,)))
    yield connection
    connection.close()


@pytest.fixture
def ipam(client: EtcdClient, etcd_prefix: str) -> Ipam:
    return Ipam(client, etcd_prefix)


@pytest.fixture
def subnets(client: EtcdClient, etcd_prefix: str) -> Subnets:
    return Subnets(client, etcd_prefix)
