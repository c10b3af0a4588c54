"""Fixtures of the store tier: an Ipam and Subnets over the shared client (tests/conftest.py).

Tests share one etcd (``etcd_server``) and isolate themselves by key prefix
(``etcd_prefix``). Tests that restart etcd or run other processes against it
live in their own modules and leave the server healthy.
"""

from __future__ import annotations

import pytest

from store.etcd import EtcdClient
from store.leases import Ipam
from store.subnets import Subnets


@pytest.fixture
def ipam(client: EtcdClient, etcd_prefix: str) -> Ipam:
    return Ipam(client, etcd_prefix)


@pytest.fixture
def subnets(client: EtcdClient, etcd_prefix: str) -> Subnets:
    return Subnets(client, etcd_prefix)
