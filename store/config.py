"""etcd connection settings, shared by every nicpool process.

Each flag has an environment variable (DESIGN.md "Configuration"), so
operators and tests drive the controller, the agent and nicpoolctl alike.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_ENDPOINTS = "http://127.0.0.1:2379"
DEFAULT_PREFIX = "/nicpool/v1/"


@dataclass(frozen=True)
class EtcdSettings:
    endpoints: tuple[str, ...] = (DEFAULT_ENDPOINTS,)
    """Client URLs, ``http://`` or ``https://``."""
    prefix: str = DEFAULT_PREFIX
    """Every key nicpool writes lives under this; the version is part of it."""
    cacert: str | None = None
    """CA bundle; TLS is used when given."""
    cert: str | None = None
    """Client certificate (with ``key``) for mutual TLS."""
    key: str | None = None
    timeout: float = 5.0
    """Per-request deadline in seconds; a request past it is a temporary error."""

    def hosts(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for endpoint in self.endpoints:
            parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
            if not parts.hostname:
                raise ValueError(f"etcd endpoint {endpoint!r} has no host")
            found.append((parts.hostname, parts.port or 2379))
        return found


def add_etcd_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--etcd-endpoints",
        default=env("NICPOOL_ETCD_ENDPOINTS", DEFAULT_ENDPOINTS),
        help="comma-separated etcd client URLs (NICPOOL_ETCD_ENDPOINTS)",
    )
    parser.add_argument(
        "--etcd-prefix",
        default=env("NICPOOL_ETCD_PREFIX", DEFAULT_PREFIX),
        help="key prefix for all nicpool state (NICPOOL_ETCD_PREFIX)",
    )
    parser.add_argument("--etcd-cacert", default=env("NICPOOL_ETCD_CACERT"), help="CA file")
    parser.add_argument("--etcd-cert", default=env("NICPOOL_ETCD_CERT"), help="client cert")
    parser.add_argument("--etcd-key", default=env("NICPOOL_ETCD_KEY"), help="client key")


def etcd_settings_from_args(args: argparse.Namespace) -> EtcdSettings:
    endpoints = tuple(e.strip() for e in args.etcd_endpoints.split(",") if e.strip())
    prefix = args.etcd_prefix if args.etcd_prefix.endswith("/") else f"{args.etcd_prefix}/"
    return EtcdSettings(
        endpoints=endpoints,
        prefix=prefix,
        cacert=args.etcd_cacert or None,
        cert=args.etcd_cert or None,
        key=args.etcd_key or None,
    )
