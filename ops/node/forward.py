"""Loopback ports on this machine that lead into the node's network namespace.

``python -m ops.node.forward --netns /run/netns/nicpool-node
127.0.0.1:PORT=127.0.0.1:443 ...`` binds every listening socket first, in the
namespace it was started in (the machine's, on loopback only), then moves
itself into the node's namespace with ``setns(2)``. A socket keeps the
namespace it was created in, so from then on it accepts on the machine's
loopback and connects inside the node: kubectl, the tests and ``nicpoolctl``
on this machine reach the apiserver and nicpool's etcd without any link or
route between the two namespaces. TLS passes through untouched (the
certificates name 127.0.0.1).

One thread per direction per connection; watches are long-lived, and the
lab opens a few dozen connections at most.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({path}): {os.strerror(error)}")
    finally:
        os.close(fd)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _serve(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError as error:
            print(f"forward: connect {target}: {error}", file=sys.stderr, flush=True)
            client.close()
            continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.node.forward", description=__doc__)
    parser.add_argument("--netns", required=True, help="network namespace file to connect in")
    parser.add_argument("mappings", nargs="+", metavar="LISTEN=TARGET", help="host:port=host:port")
    args = parser.parse_args(argv)
    listeners = []
    for mapping in args.mappings:
        listen, _, target = mapping.partition("=")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(_address(listen))
        sock.listen(64)
        listeners.append((sock, _address(target)))
    enter_netns(args.netns)
    threads = [
        threading.Thread(target=_serve, args=(sock, target), daemon=True)
        for sock, target in listeners
    ]
    for thread in threads:
        thread.start()
    print(f"forward: {' '.join(args.mappings)} into {args.netns}", flush=True)
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
