"""The fault proxy does to a connection what the fault tier says it does.

Against a real echo server on loopback: bytes pass both ways; a reset
reaches the client as a RST; a black hole is silent (no reply, no FIN, no
RST) and a connection caught in it stays dead after the fault heals while
new connections work; latency and the bandwidth cap slow traffic down; a
target that is down looks like a refused connection. The last test drives
the same engine as a separate process (``ops.lab.faultproxyd``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ops.lab.faultproxy import ProxyEngine
from ops.lab.faultproxyd import ProxyDaemon
from ops.lab.ports import free_port

pytestmark = pytest.mark.faults


class EchoServer:
    """Echoes every byte; ``hang_up`` closes every connection it holds (FIN)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass

    def hang_up(self) -> None:
        for conn in self.conns:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        self.hang_up()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def engine() -> Iterator[ProxyEngine]:
    started = ProxyEngine().start()
    yield started
    started.close()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def silent(sock: socket.socket, wait: float = 1.0) -> bool:
    """True when nothing at all (no byte, no FIN, no RST) arrives within ``wait`` s."""
    sock.settimeout(wait)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    except OSError:
        return False
    return False


def test_bytes_pass_both_ways(echo: EchoServer, engine: ProxyEngine) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    with connect(port) as sock:
        assert roundtrip(sock, b"x" * 200_000) == b"x" * 200_000


def test_reset_aborts_open_connections_with_rst_and_new_ones_work(
    echo: EchoServer, engine: ProxyEngine
) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    with connect(port) as sock:
        assert roundtrip(sock) == b"ping"
        assert engine.reset(["p"]) == 1
        with pytest.raises(ConnectionResetError):
            roundtrip(sock)
    with connect(port) as again:
        assert roundtrip(again) == b"ping"


def test_black_hole_is_silent_and_its_connections_stay_dead_after_healing(
    echo: EchoServer, engine: ProxyEngine
) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    before = connect(port)
    assert roundtrip(before) == b"ping"
    engine.set(["p"], blackhole=True)
    before.sendall(b"lost")
    assert silent(before)
    during = connect(port)  # accepted, then nothing
    during.sendall(b"lost too")
    assert silent(during)
    engine.set(["p"])  # healed
    before.sendall(b"still lost")
    assert silent(before) and silent(during)
    with connect(port) as after:
        assert roundtrip(after) == b"ping"
    assert engine.stats()["p"]["blackholed"] == 2
    before.close()
    during.close()


def test_a_server_hanging_up_on_a_dead_connection_is_not_told_to_the_client(
    echo: EchoServer, engine: ProxyEngine
) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    with connect(port) as sock:
        assert roundtrip(sock) == b"ping"
        engine.set(["p"], blackhole=True)
        echo.hang_up()
        assert silent(sock)


def test_latency_delays_every_chunk(echo: EchoServer, engine: ProxyEngine) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    engine.set(["p"], latency=0.3)
    with connect(port) as sock:
        began = time.monotonic()
        assert roundtrip(sock) == b"ping"
        assert time.monotonic() - began >= 0.6  # once each way


def test_bandwidth_cap_slows_a_transfer(echo: EchoServer, engine: ProxyEngine) -> None:
    port = engine.add("p", ("127.0.0.1", echo.port))
    engine.set(["p"], bandwidth=200_000)
    with connect(port, timeout=30) as sock:
        began = time.monotonic()
        assert roundtrip(sock, b"y" * 400_000) == b"y" * 400_000
        assert time.monotonic() - began >= 1.5


def test_a_target_that_is_down_looks_like_a_refused_connection(engine: ProxyEngine) -> None:
    port = engine.add("p", ("127.0.0.1", free_port()))
    with pytest.raises((ConnectionResetError, BrokenPipeError)), connect(port) as sock:
        roundtrip(sock)
        roundtrip(sock)  # the first send may land before the reset


def test_the_proxy_process_is_driven_over_its_control_socket(echo: EchoServer) -> None:
    daemon = ProxyDaemon().start()
    try:
        port = daemon.add("p", "127.0.0.1", echo.port)
        with connect(port) as sock:
            assert roundtrip(sock) == b"ping"
            assert daemon.reset(["p"]) == 1
        daemon.set(["p"], blackhole=True)
        with connect(port) as sock:
            sock.sendall(b"lost")
            assert silent(sock)
        daemon.heal(["p"])
        with connect(port) as sock:
            assert roundtrip(sock) == b"ping"
        stats = daemon.stats()["p"]
        assert stats["reset"] == 1 and stats["blackholed"] == 1 and stats["accepted"] == 3
    finally:
        daemon.stop()
    assert not daemon.workdir.exists()
