"""Every field of a plugin request, parsed into its type before it is used.

DESIGN.md "Trust boundaries": a request comes from whatever reaches the
agent's socket, and most of its values were written by a namespace user
(the NAD's ``provider``, ``routes`` and ``dns``; the interface name, from
the pod's networks annotation). The agent echoes ``routes`` and ``dns`` into
its reply, which a main plugin hands to ``ip`` as root, and the names select
etcd keys. So each value is checked against the rule of what it names (a
Kubernetes name, a kernel link name, an address, a CIDR) and echoed only in
canonical form; a value that fails is a 400 naming the field. The plugin
applies the same rules again (``cnibin/plugin.py``), because an older
plugin, or Kube-OVN's own, may send anything.

Each function takes the JSON value and returns the parsed one, or raises
``ValueError`` saying what is wrong; ``protocol`` adds the field's name.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any

MAX_ROUTES = 64
"""Routes one NAD may add (a main plugin runs one ``ip`` per route)."""
MAX_DNS_ITEMS = 32

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
"""libcni's ValidateContainerID."""
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_WORD = re.compile(r"[!-~]{0,253}")
"""A resolv.conf word (search domain, option): printable ASCII, no space."""
_DNS_KEYS = frozenset(("nameservers", "domain", "search", "options"))


def _matching(pattern: re.Pattern[str], limit: int, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit or not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


pod_name = _matching(_DNS_SUBDOMAIN, 253, "a pod name (a DNS-1123 subdomain)")
namespace = _matching(_DNS_LABEL, 63, "a namespace (a DNS-1123 label)")
provider = _matching(
    _DNS_SUBDOMAIN, 253, "a provider: <nad>.<namespace>[.ovn], lower-case DNS labels"
)
container_id = _matching(_CONTAINER_ID, 1024, "a container ID")
pod_uid = _matching(_UID, 128, "a pod UID")


def if_name(value: str) -> str:
    """The kernel's rule for a link name (and libcni's), without ``%``."""
    if (
        not 0 < len(value.encode()) <= 15
        or value in (".", "..")
        or not value.isprintable()
        or any(c in value for c in " /:%")
    ):
        raise ValueError(f"{value!r} is not an interface name")
    return value


def net_ns(value: str) -> str:
    parts = value.split("/")
    if (
        not value.startswith("/")
        or len(value) > 4095
        or not value.isprintable()
        or " " in value
        or "." in parts
        or ".." in parts
    ):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


def wait_seconds(value: Any) -> float | None:
    """A finite, non-negative number (Python's json also reads NaN and Infinity)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a non-negative number")
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a non-negative number")
    return float(value)


def address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address without a zone (``%eth0`` means nothing to another netns)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an IP address")
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if getattr(parsed, "scope_id", None):
        raise ValueError(f"{value!r} has a zone")
    return parsed


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str) or "%" in value:
        raise ValueError(f"{value!r} is not a CIDR")
    try:
        # strict=False: Kube-OVN's own example writes 192.168.0.101/24.
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR") from None


def _route(route: Any) -> tuple[str, str]:
    if not isinstance(route, dict) or not set(route) <= {"dst", "gw"}:
        raise ValueError(f'{route!r} is not a {{"dst", "gw"}} object')
    dst = None if route.get("dst") in (None, "") else _network(route["dst"])
    gw = None if route.get("gw") in (None, "") else address(route["gw"])
    if dst is None and gw is None:
        raise ValueError(f"{route!r} has neither dst nor gw")
    if dst is not None and gw is not None and dst.version != gw.version:
        raise ValueError(f"{route!r} mixes address families")
    return ("" if dst is None else str(dst), "" if gw is None else str(gw))


def routes(value: Any) -> tuple[tuple[str, str], ...]:
    """``(dst, gw)`` in canonical form: ``dst`` with host bits cleared, either may be empty."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError('must be a list of {"dst", "gw"} objects')
    if len(value) > MAX_ROUTES:
        raise ValueError(f"has {len(value)} routes; at most {MAX_ROUTES}")
    return tuple(_route(route) for route in value)


def _words(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_DNS_ITEMS:
        raise ValueError(f"{value!r} is not a list of at most {MAX_DNS_ITEMS} words")
    return [_word(item) for item in value]


def _word(value: Any) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value):
        raise ValueError(f"{value!r} is not a resolv.conf word")
    return value


def dns(value: Any) -> dict[str, Any]:
    """CNI's DNS object: ``nameservers`` (addresses), ``domain``, ``search``, ``options``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not set(value) <= _DNS_KEYS:
        raise ValueError("must be an object with nameservers, domain, search and options")
    parsed: dict[str, Any] = {}
    if "nameservers" in value:
        servers = value["nameservers"]
        if not isinstance(servers, list) or len(servers) > MAX_DNS_ITEMS:
            raise ValueError(f"nameservers {servers!r} is not a list of addresses")
        parsed["nameservers"] = [str(address(server)) for server in servers]
    if "domain" in value:
        parsed["domain"] = _word(value["domain"])
    for key in ("search", "options"):
        if key in value:
            parsed[key] = _words(value[key])
    return parsed
