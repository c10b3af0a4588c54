"""``nicpool-agent`` entry point: flags, etcd, metrics endpoint, signals.

Every flag has an environment variable (DESIGN.md "Configuration"). The agent
keeps serving through etcd outages: a request during one gets 503 (the
plugin reports "try again later") and the etcd client reconnects on its own.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

from cnibin.agent.health import EtcdCheck
from cnibin.agent.metrics import publish_zeroes
from cnibin.agent.server import AgentServer
from cnibin.agent.service import AgentService
from store.attachments import AttachmentReader
from store.config import ConfigError, add_etcd_arguments, add_flag, etcd_settings_from_args
from store.endpoints import ProbeServer, parse_address
from store.etcd import connect

log = logging.getLogger("nicpool.agent")
DEFAULT_SOCKET = "/run/openvswitch/kube-ovn-daemon.sock"


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("must be >= 0")
    return seconds


def _patterns(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nicpool-agent", description=__doc__)
    add_flag(
        parser,
        "--socket",
        env="NICPOOL_SOCKET",
        default=DEFAULT_SOCKET,
        help="unix socket the kube-ovn plugin calls",
    )
    add_flag(
        parser,
        "--node-name",
        env="NODE_NAME",
        default=socket.gethostname(),
        help="this node's name, for logs",
    )
    add_flag(
        parser,
        "--metrics-addr",
        env="NICPOOL_METRICS_ADDR",
        default=":10666",
        help="host:port for /metrics, /healthz, /readyz; empty disables",
    )
    add_flag(
        parser,
        "--lease-wait",
        env="NICPOOL_LEASE_WAIT",
        default="20",
        type=_seconds,
        help="seconds ADD waits for the controller's lease",
    )
    add_flag(
        parser,
        "--bridges",
        env="NICPOOL_BRIDGES",
        default="",
        type=_patterns,
        help="comma-separated bridge names (fnmatch patterns) a kube-ovn main-plugin NIC may "
        "join; empty: none",
    )
    add_flag(parser, "--log-level", env="NICPOOL_LOG_LEVEL", default="INFO", help="log level")
    add_etcd_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.etcd = etcd_settings_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    return args


def metrics_address(value: str) -> tuple[str, int] | None:
    """``:10666`` -> ("0.0.0.0", 10666); ``host:port`` as given; empty -> None."""
    return parse_address(value, 10666) if value else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s"
    )
    settings = args.etcd
    client = connect(settings)
    service = AgentService(
        source=AttachmentReader(client, settings.prefix),
        lease_wait=args.lease_wait,
        bridges=args.bridges,
    )
    address = metrics_address(args.metrics_addr)
    health = None
    if address is not None:
        publish_zeroes()
        # Readiness reads one key (the prefix itself): cheap, and allowed to
        # the agent's read-only etcd role.
        check = EtcdCheck(lambda: client.get(settings.prefix))
        check.start()
        health = ProbeServer(address, ready=check.status)
        health.start()
    server = AgentServer(Path(args.socket), service)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "nicpool-agent on node %s serving %s (etcd %s, prefix %s)",
        args.node_name,
        args.socket,
        ",".join(settings.endpoints),
        settings.prefix,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if health is not None:
            health.stop()
            check.stop()
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
