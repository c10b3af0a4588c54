"""A connection to etcd that went silent while the client was idle is left behind.

A black hole (a NAT or firewall that lost the flow: bytes dropped, no FIN,
no RST) kills a TCP connection without a word. A client with a watch open
notices through HTTP/2 keepalive pings (they run while a call is in
flight). A client that only makes short unary calls, such as a node agent
reading one lease per CNI ADD, may never have a call in flight when a ping
is due: each call ran into its deadline on the dead connection, and the
next one went the same way until the kernel gave the connection up (a
quarter of an hour). Now a call that ran into its deadline makes the client
open a new connection for the calls after it.

The proxy is ``ops.lab.faultproxy`` (the fault tier's): a connection caught
in its black hole stays dead after the fault heals; new ones work.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.controllers import wait_for
from ops.lab.etcd import EtcdServer
from ops.lab.faultproxy import ProxyEngine
from store.config import EtcdSettings
from store.errors import Unavailable
from store.etcd import EtcdClient, connect

pytestmark = pytest.mark.store


@pytest.fixture
def proxied(etcd_server: EtcdServer) -> Iterator[tuple[ProxyEngine, EtcdClient]]:
    engine = ProxyEngine().start()
    host, port = etcd_server.endpoint.removeprefix("http://").rsplit(":", 1)
    local = engine.add("etcd", (host, int(port)))
    client = connect(EtcdSettings(endpoints=(f"http://127.0.0.1:{local}",), timeout=1.0))
    yield engine, client
    client.close()
    engine.close()


def test_a_connection_that_went_silent_while_idle_is_replaced(
    proxied: tuple[ProxyEngine, EtcdClient],
) -> None:
    engine, client = proxied
    client.put("/silent-test/key", b"1")
    engine.set(["etcd"], blackhole=True)  # the idle connection dies without a word...
    engine.set(["etcd"], blackhole=False)  # ...and stays dead; a new one would work

    def read() -> bool:
        try:
            found, _ = client.get("/silent-test/key")
        except Unavailable:
            return False
        return found is not None and found.value == b"1"

    # One call runs into its 1 s deadline; the next ones go over a new connection.
    # (Before, every call ran into its deadline until keepalive or the kernel
    # noticed: 15 s at best, a quarter of an hour at worst.)
    wait_for("a read over a new connection", read, timeout=12)  # under keepalive's 15 s
