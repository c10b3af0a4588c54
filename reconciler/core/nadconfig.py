"""A NetworkAttachmentDefinition's ``spec.config`` -> the provider nicpool allocates for.

The provider is the name both sides agree on: the controller keys leases and
annotations by it, and the CNI plugin sends it to the node agent. So it is
read from the config exactly where the plugin reads it:

* ``ipam.type == "kube-ovn"`` (IPAM for macvlan, bridge, ...): ``ipam.provider``;
* ``type == "kube-ovn"`` (a Kube-OVN attachment NIC): the top-level ``provider``;
* a conflist (``plugins: [...]``): the first plugin that is either of those.

What Kube-OVN does when ``provider`` is missing (checked in its sources):
its controller ignores the config's provider altogether and keys an
attachment by ``<nad>.<ns>`` (``<nad>.<ns>.ovn`` for ``type: kube-ovn``),
while its CNI plugin falls back to ``ovn``, the cluster network; the two only
agree when the user writes the provider Kube-OVN's docs tell them to write.
nicpool defaults to the controller's name (``<nad>.<ns>`` / ``<nad>.<ns>.ovn``)
and marks the result ``defaulted`` so the controller can warn; it never
falls back to ``ovn``, which belongs to the primary CNI (DESIGN.md), and a
config that names ``ovn`` explicitly is refused for the same reason.

An empty ``spec`` (Multus then reads a file on each node) has no provider
the controller can know: :class:`NadNoProvider`. A config that never uses
``kube-ovn`` is not nicpool's business: :func:`nad_provider` returns None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.core.errors import InvalidNadConfig, NadNoProvider
from store.core.identity import Provider

CNI_TYPE = "kube-ovn"
OVN_PROVIDER = Provider("ovn")


@dataclass(frozen=True)
class NadNetwork:
    """What nicpool needs from one NAD."""

    namespace: str
    name: str
    provider: Provider
    kind: Literal["ipam", "ovn"]
    """``ipam``: kube-ovn is the IPAM of another plugin; ``ovn``: a kube-ovn NIC."""
    defaulted: bool = False
    """True when the config gave no provider and the default name was used."""


def nad_provider(namespace: str, name: str, config: str | None) -> NadNetwork | None:
    """The NAD's provider, None when it does not use kube-ovn, or a PermanentError."""
    if config is None or not config.strip():
        raise NadNoProvider(
            f"NetworkAttachmentDefinition {namespace}/{name} has an empty spec: "
            "its CNI config lives on each node, so no provider can be known; "
            "put the config (with ipam.provider) in spec.config"
        )
    doc = _decode(namespace, name, config)
    plugins = doc.get("plugins")
    if plugins is not None:
        if not isinstance(plugins, list) or not all(isinstance(p, dict) for p in plugins):
            raise InvalidNadConfig(f"{namespace}/{name}: 'plugins' must be a list of objects")
        candidates: list[dict[str, Any]] = plugins
    else:
        candidates = [doc]
    for plugin in candidates:
        found = _from_plugin(namespace, name, plugin)
        if found is not None:
            return found
    return None


def _decode(namespace: str, name: str, config: str) -> dict[str, Any]:
    try:
        doc = json.loads(config)
    except ValueError as exc:
        raise InvalidNadConfig(
            f"NetworkAttachmentDefinition {namespace}/{name}: spec.config is not JSON ({exc})"
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidNadConfig(
            f"NetworkAttachmentDefinition {namespace}/{name}: spec.config must be a JSON object"
        )
    return doc


def _from_plugin(namespace: str, name: str, plugin: dict[str, Any]) -> NadNetwork | None:
    if plugin.get("type") == CNI_TYPE:
        given = _provider_field(namespace, name, plugin, "provider")
        default = f"{name}.{namespace}.ovn"
        return _network(namespace, name, given, default, "ovn")
    ipam = plugin.get("ipam")
    if ipam is None:
        return None
    if not isinstance(ipam, dict):
        raise InvalidNadConfig(f"{namespace}/{name}: 'ipam' must be an object")
    if ipam.get("type") != CNI_TYPE:
        return None
    given = _provider_field(namespace, name, ipam, "ipam.provider")
    return _network(namespace, name, given, f"{name}.{namespace}", "ipam")


def _provider_field(namespace: str, name: str, obj: dict[str, Any], label: str) -> str:
    value = obj.get("provider", "")
    if not isinstance(value, str):
        raise InvalidNadConfig(f"{namespace}/{name}: {label} must be a string, got {value!r}")
    return value.strip()


def _network(
    namespace: str, name: str, given: str, default: str, kind: Literal["ipam", "ovn"]
) -> NadNetwork:
    if given == OVN_PROVIDER:
        raise InvalidNadConfig(
            f"{namespace}/{name}: provider 'ovn' is the cluster network's (primary CNI); "
            f"an attachment needs its own provider, e.g. {default!r}"
        )
    if given and any(ch.isspace() or ch == "/" for ch in given):
        raise InvalidNadConfig(f"{namespace}/{name}: provider {given!r} has spaces or '/'")
    provider = Provider(given or default)
    return NadNetwork(namespace, name, provider, kind, defaulted=not given)
