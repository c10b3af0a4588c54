"""``ip_pool`` allocation reads etcd a bounded number of times per pod (issue 8, item 13).

Each held pool entry used to cost one etcd GET (to name its holder in an
error message nobody would read), so the n-th pod of a Deployment read n
leases: 300 pool allocations made 44,853 GETs. Now a pod costs a few reads
whatever the pool's size.
"""

from __future__ import annotations

import pytest

from store.config import EtcdSettings
from store.core.identity import Revision
from store.core.ops import KeyValue
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import ips, register, request

pytestmark = pytest.mark.store

PODS = 200


class CountingClient(EtcdClient):
    """The real client, counting single-key reads."""

    gets = 0

    def get(self, key: str) -> tuple[KeyValue | None, Revision]:
        self.gets += 1
        return super().get(key)


def test_pool_allocation_reads_do_not_grow_with_the_pods_already_placed(
    client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/22")
    counting = CountingClient(EtcdSettings(endpoints=client.settings.endpoints))
    try:
        ipam = Ipam(counting, etcd_prefix)
        pool = tuple((f"10.0.{1 + n // 250}.{n % 250 + 2}",) for n in range(PODS))
        placed = [
            ips(ipam.allocate([request(f"p{n}", pool=pool)], fence=UNFENCED))[0]
            for n in range(PODS)
        ]
    finally:
        counting.close()
    assert sorted(placed) == sorted(entry[0] for entry in pool)
    # Quadratic would be ~PODS**2 / 2 = 20,000 reads; a few per pod is linear.
    assert counting.gets <= 5 * PODS
