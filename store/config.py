"""Flags with environment variables, and the etcd connection settings every process shares.

Each flag has an environment variable (DESIGN.md "Configuration"), so
operators and tests drive the controller, the agent and nicpoolctl alike.
:func:`add_flag` is the one way a flag is declared: the environment value
becomes argparse's default *string*, which argparse converts with the flag's
``type`` exactly like a value typed on the command line, so
``NICPOOL_WORKERS=abc`` is a usage error naming the variable, not a traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """Settings that cannot work together (reported as a usage error)."""


def add_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    env: str,
    default: str | None,
    help: str,
    type: Callable[[str], Any] = str,
) -> None:
    """``flag``, defaulting to ``$env``, else ``default``; both converted by ``type``."""
    from_env = os.environ.get(env)
    parser.add_argument(
        flag,
        default=from_env if from_env is not None else default,
        type=_named(type, env) if from_env is not None else type,
        help=f"{help} (env {env}; default {default})",
    )


def _named(convert: Callable[[str], Any], env: str) -> Callable[[str], Any]:
    """``convert`` whose failure names the environment variable the value came from."""

    def converted(value: str) -> Any:
        try:
            return convert(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise argparse.ArgumentTypeError(f"{value!r} (from {env}): {exc}") from None

    converted.__name__ = getattr(convert, "__name__", "value")
    return converted


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

    def __post_init__(self) -> None:
        secure = [e for e in self.endpoints if e.strip().lower().startswith("https://")]
        if secure and self.cacert is None:
            raise ConfigError(
                f"etcd endpoint {secure[0]} is https:// but no --etcd-cacert "
                "(NICPOOL_ETCD_CACERT) is given: refusing to talk to it in plaintext"
            )
        if self.cacert is not None and any(
            e.strip().lower().startswith("http://") for e in self.endpoints
        ):
            raise ConfigError(
                "--etcd-cacert is given but an etcd endpoint is http://: use https:// "
                "endpoints for TLS"
            )
        if (self.cert is None) != (self.key is None):
            raise ConfigError("--etcd-cert and --etcd-key must be given together")

    def hosts(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for endpoint in self.endpoints:
            parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
            if not parts.hostname:
                raise ValueError(f"etcd endpoint {endpoint!r} has no host")
            found.append((parts.hostname, parts.port or 2379))
        return found


def add_etcd_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--etcd-endpoints",
        env="NICPOOL_ETCD_ENDPOINTS",
        default=DEFAULT_ENDPOINTS,
        help="comma-separated etcd client URLs",
    )
    add_flag(
        parser,
        "--etcd-prefix",
        env="NICPOOL_ETCD_PREFIX",
        default=DEFAULT_PREFIX,
        help="key prefix for all nicpool state",
    )
    add_flag(parser, "--etcd-cacert", env="NICPOOL_ETCD_CACERT", default=None, help="CA file")
    add_flag(parser, "--etcd-cert", env="NICPOOL_ETCD_CERT", default=None, help="client cert")
    add_flag(parser, "--etcd-key", env="NICPOOL_ETCD_KEY", default=None, help="client key")


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
