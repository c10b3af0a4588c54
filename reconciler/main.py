"""``nicpool-controller``: flags (each with an environment variable), logging, signals.

See DESIGN.md "Configuration". Several replicas run at once; one leads
(etcd election), the others keep warm caches and take over within the
election TTL.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from reconciler.controller import Controller
from reconciler.kube.config import kube_client
from reconciler.runtime import Settings
from store.config import ConfigError, add_etcd_arguments, add_flag, etcd_settings_from_args
from store.core.cooldown import DEFAULT_COOLDOWN, check_cooldown
from store.endpoints import ProbeServer, parse_address
from store.etcd import connect


def _positive(convert: Callable[[str], float]) -> Callable[[str], float]:
    def positive(value: str) -> float:
        number = convert(value)
        if number <= 0:
            raise ValueError("must be greater than 0")
        return number

    positive.__name__ = convert.__name__
    return positive


def _cooldown(value: str) -> float:
    try:
        return check_cooldown(float(value))
    except ValueError as exc:  # argparse prints this message (a ValueError's it drops)
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(value: str) -> float:
    """A duration in seconds: finite and not negative."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (0 or more)")
    return number


def _boolean(value: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, in any case); anything else is
    refused, never guessed."""
    text = value.strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nicpool-controller", description=__doc__)
    add_etcd_arguments(p)
    add_flag(p, "--kubeconfig", env="KUBECONFIG", default=None, help="kubeconfig")
    add_flag(
        p,
        "--metrics-addr",
        env="NICPOOL_METRICS_ADDR",
        default=":10665",
        help="host:port for /metrics, /healthz, /readyz",
    )
    add_flag(
        p,
        "--election-ttl",
        env="NICPOOL_ELECTION_TTL",
        default="10",
        type=_positive(int),
        help="leader lease TTL in seconds",
    )
    add_flag(
        p,
        "--workers",
        env="NICPOOL_WORKERS",
        default="32",
        type=_positive(int),
        help="pods processed in parallel",
    )
    add_flag(
        p,
        "--gc-interval",
        env="NICPOOL_GC_INTERVAL",
        default="60",
        type=_positive(float),
        help="seconds between GC sweeps",
    )
    add_flag(
        p,
        "--gc-grace",
        env="NICPOOL_GC_GRACE",
        default="60",
        type=float,
        help="seconds an orphan must stay orphaned before GC frees it",
    )
    add_flag(
        p,
        "--address-cooldown",
        env="NICPOOL_ADDRESS_COOLDOWN",
        default=f"{DEFAULT_COOLDOWN:g}",
        type=_cooldown,
        help="seconds a freed address waits before it is handed out again (0: off)",
    )
    add_flag(
        p,
        "--node-not-ready-grace",
        env="NICPOOL_NODE_NOT_READY_GRACE",
        default="300",
        type=_seconds,
        help="seconds a node is NotReady before pods whose deletion is stuck on it are reported",
    )
    add_flag(
        p,
        "--release-stuck-pods",
        env="NICPOOL_RELEASE_STUCK_PODS",
        default="false",
        type=_boolean,
        help="also release those pods' addresses (a partitioned node may still use them)",
    )
    add_flag(
        p,
        "--identity",
        env="POD_NAME",
        default=f"{socket.gethostname()}/{os.getpid()}",
        help="this replica's name in the election",
    )
    add_flag(
        p,
        "--keep-vm-ip",
        env="NICPOOL_KEEP_VM_IP",
        default="true",
        type=_boolean,
        help="a KubeVirt VM's pods keep its addresses until the VM is gone (Kube-OVN's flag)",
    )
    add_flag(p, "--log-level", env="NICPOOL_LOG_LEVEL", default="INFO", help="log level")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    try:
        etcd_settings = etcd_settings_from_args(args)
    except ConfigError as exc:
        cli.error(str(exc))
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
        keep_vm_ip=args.keep_vm_ip,
        address_cooldown=args.address_cooldown,
        node_not_ready_grace=args.node_not_ready_grace,
        release_stuck_pods=args.release_stuck_pods,
    )
    controller = Controller(
        kube=kube_client(args.kubeconfig, pool_size=max(16, args.workers * 2)),
        etcd=connect(etcd_settings),
        prefix=etcd_settings.prefix,
        settings=settings,
    )
    server = ProbeServer(parse_address(args.metrics_addr, 10665), ready=controller.readiness)
    server.start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("nicpool").info("signal %d: shutting down", signum)
        controller.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    # The leadership loop runs on a thread /readyz watches; the main thread
    # only waits (in short joins, so signal handlers run at once).
    runner = controller.run_in_thread()
    while runner.is_alive():
        runner.join(0.5)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
