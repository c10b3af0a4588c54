"""TCP proxies that break connections on command: RST, black hole, latency, bandwidth.

One :class:`FaultProxy` listens on a loopback port and forwards each
accepted connection to one target (an etcd member, the apiserver); the fault
tier gives every (process, server) pair a proxy of its own, so one replica's
connections can be broken while the others' are left alone. Faults are
TCP-level and the proxy never looks inside the bytes, so TLS and HTTP/2 pass
through untouched.

The faults, as a network would produce them:

* **reset**: every open connection is aborted with a RST to both ends
  (``SO_LINGER`` 0, then close), as a middlebox dropping its state does;
  the next connection works.
* **black hole**: bytes are dropped both ways and no FIN or RST is ever
  sent. A connection caught in it stays dead after the fault heals, as a
  TCP flow whose state a NAT or firewall lost does (its bytes are gone,
  though each sender believes them delivered): only a client that notices
  the silence (HTTP/2 or gRPC pings, a read timeout) gets out, by opening
  a new connection, and new connections work once the fault is off. While
  it is on, new connections are accepted and dead too. When the server
  end of a dead connection closes, the client is not told.
* **latency**: every chunk is delivered that many seconds late, in order.
* **bandwidth**: each direction of each connection is capped to so many
  bytes per second.

:class:`ProxyEngine` runs any number of proxies on one asyncio loop in a
thread of its own; :mod:`ops.lab.faultproxyd` runs an engine as a separate
process, so the test's own work never stalls the traffic it proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


@dataclass
class Faults:
    """What a proxy currently does to its traffic."""

    blackhole: bool = False
    latency: float = 0.0
    """Seconds added to every chunk, each direction."""
    bandwidth: int = 0
    """Bytes per second per direction per connection; 0 is unlimited."""


@dataclass
class Stats:
    accepted: int = 0
    open: int = 0
    reset: int = 0
    """Connections aborted with RST by :meth:`FaultProxy.reset`."""
    blackholed: int = 0
    """Connections caught in a black hole (they stay dead)."""
    refused: int = 0
    """Connections closed because the target did not answer."""
    bytes: int = 0


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a RST rather than a FIN (linger on, timeout 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One accepted client connection and its connection to the target."""

    proxy: FaultProxy
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    dead: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def kill(self) -> None:
        """Into the black hole: from now on every byte is dropped, both ways, for good."""
        if not self.dead:
            self.dead = True
            self.proxy.stats.blackholed += 1

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _rst(writer)
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """127.0.0.1:``port`` -> ``target``; faults apply to existing and new connections."""

    def __init__(self, name: str, target: tuple[str, int], port: int = 0) -> None:
        self.name = name
        self.target = target
        self.port = port
        self.faults = Faults()
        self.stats = Stats()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        self._links.clear()

    def set(self, *, blackhole: bool, latency: float, bandwidth: int) -> None:
        self.faults = Faults(blackhole=blackhole, latency=latency, bandwidth=bandwidth)
        if blackhole:
            for link in self._links:
                link.kill()

    def reset(self) -> int:
        """Abort every open connection with a RST; returns how many."""
        links = list(self._links)
        for link in links:
            link.abort()
        self._links.difference_update(links)
        self.stats.reset += len(links)
        self.stats.open = len(self._links)
        return len(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(self, writer)
        self.stats.accepted += 1
        self._links.add(link)
        self.stats.open = len(self._links)
        if self.faults.blackhole:
            link.kill()
        try:
            await self._serve(link, reader)
        finally:
            self._links.discard(link)
            self.stats.open = len(self._links)

    async def _serve(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        try:
            up_reader, link.upstream = await asyncio.open_connection(*self.target)
        except OSError:
            # What the client would see from the server itself: a refused connection.
            self.stats.refused += 1
            if not link.dead:
                _rst(link.client)
                return
            up_reader = None
        inbound = asyncio.ensure_future(self._pump(link, client_reader, link.upstream, up=True))
        link.tasks.append(inbound)
        if up_reader is not None:
            assert link.upstream is not None
            link.tasks.append(asyncio.ensure_future(self._pump(link, up_reader, link.client)))
        await asyncio.gather(*link.tasks, return_exceptions=True)
        for writer in (link.client, link.upstream):
            if writer is not None:
                writer.close()

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter | None,
        *,
        up: bool = False,
    ) -> None:
        """Copy one direction, applying the faults; a reset on one side resets the other."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        writer = asyncio.ensure_future(self._deliver(link, queue, sink))
        try:
            while True:
                try:
                    data = await source.read(CHUNK)
                except OSError:
                    data = b""
                    if not link.dead:
                        link.abort()  # a reset on one side resets the other
                        return
                if not data:
                    break
                if not link.dead:
                    queue.put_nowait((time.monotonic() + self.faults.latency, data))
            if link.dead:
                await self._dead_end(link, up=up)
                return
            queue.put_nowait(None)
            await writer
        finally:
            writer.cancel()

    @staticmethod
    async def _dead_end(link: _Link, *, up: bool) -> None:
        """One side of a dead connection hung up.

        The client: the connection is over (the server may learn it, nobody
        cares). The server: the client must not learn it, so this direction
        stays open and silent until the client gives up or a reset.
        """
        if not up:
            await asyncio.Event().wait()
        current = asyncio.current_task()
        for task in link.tasks:
            if task is not current:
                task.cancel()

    async def _deliver(
        self,
        link: _Link,
        queue: asyncio.Queue[tuple[float, bytes] | None],
        sink: asyncio.StreamWriter | None,
    ) -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            if link.dead or sink is None:
                continue
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if link.dead:
                continue
            sink.write(data)
            self.stats.bytes += len(data)
            try:
                await sink.drain()
            except OSError:
                link.abort()
                return
            if self.faults.bandwidth > 0:
                await asyncio.sleep(len(data) / self.faults.bandwidth)
        if sink is not None and not link.dead and sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()


class ProxyEngine:
    """Proxies by name on one asyncio loop in a daemon thread; every method is thread safe."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxies: dict[str, FaultProxy] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxies")

    def start(self) -> ProxyEngine:
        self._thread.start()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        async def wrapped() -> Any:
            return function(*args, **kwargs)

        return self.run(wrapped())

    def add(self, name: str, target: tuple[str, int], port: int = 0) -> int:
        """Start a proxy to ``target``; returns its port."""
        proxy = FaultProxy(name, target, port)
        self.run(proxy.start())
        self.proxies[name] = proxy
        return proxy.port

    def set(
        self, names: list[str], *, blackhole: bool = False, latency: float = 0.0, bandwidth: int = 0
    ) -> None:
        for name in names:
            self.call(
                self.proxies[name].set, blackhole=blackhole, latency=latency, bandwidth=bandwidth
            )

    def reset(self, names: list[str]) -> int:
        return sum(int(self.call(self.proxies[name].reset)) for name in names)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            name: {**asdict(proxy.stats), "port": proxy.port, "faults": asdict(proxy.faults)}
            for name, proxy in self.proxies.items()
        }

    def close(self) -> None:
        for proxy in self.proxies.values():
            self.run(proxy.close())
        self.proxies.clear()
        self.run(self._drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _drain(self) -> None:
        """Let every connection's task finish its cancellation before the loop stops."""
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
