"""``nicpool-controller``: flags (each with an environment variable), logging, signals.

See DESIGN.md "Configuration". Several replicas run at once; one leads
(etcd election), the others keep warm caches and take over within the
election TTL.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

from reconciler.controller import Controller
from reconciler.kube.config import kube_client
from reconciler.metrics import MetricsServer
from reconciler.runtime import Settings
from store.config import add_etcd_arguments, etcd_settings_from_args
from store.etcd import connect


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="nicpool-controller", description=__doc__)
    add_etcd_arguments(p)
    p.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="kubeconfig (KUBECONFIG)")
    p.add_argument(
        "--metrics-addr",
        default=env("NICPOOL_METRICS_ADDR", ":10665"),
        help="host:port for /metrics, /healthz, /readyz (NICPOOL_METRICS_ADDR)",
    )
    p.add_argument(
        "--election-ttl",
        type=int,
        default=int(env("NICPOOL_ELECTION_TTL", "10")),
        help="leader lease TTL in seconds (NICPOOL_ELECTION_TTL)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(env("NICPOOL_WORKERS", "32")),
        help="pods processed in parallel (NICPOOL_WORKERS)",
    )
    p.add_argument(
        "--gc-interval",
        type=float,
        default=float(env("NICPOOL_GC_INTERVAL", "60")),
        help="seconds between GC sweeps (NICPOOL_GC_INTERVAL)",
    )
    p.add_argument(
        "--gc-grace",
        type=float,
        default=float(env("NICPOOL_GC_GRACE", "60")),
        help="seconds an orphan must stay orphaned before GC frees it (NICPOOL_GC_GRACE)",
    )
    p.add_argument(
        "--identity",
        default=env("POD_NAME") or f"{socket.gethostname()}/{os.getpid()}",
        help="this replica's name in the election (POD_NAME; default host/pid)",
    )
    p.add_argument("--log-level", default=env("NICPOOL_LOG_LEVEL", "INFO"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    settings = Settings(
        identity=args.identity,
        workers=args.workers,
        election_ttl=args.election_ttl,
        gc_interval=args.gc_interval,
        gc_grace=args.gc_grace,
    )
    etcd_settings = etcd_settings_from_args(args)
    controller = Controller(
        kube=kube_client(args.kubeconfig, pool_size=max(16, args.workers * 2)),
        etcd=connect(etcd_settings),
        prefix=etcd_settings.prefix,
        settings=settings,
    )
    server = MetricsServer(args.metrics_addr, ready=controller.synced)
    server.start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("nicpool").info("signal %d: shutting down", signum)
        controller.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    controller.run()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
